"""Benchmarks and experiments: the ``router bench*`` commands and the ``python -m
offline.bench.*`` scripts (chaos, checkpoint cost, feedback code load, vocabulary soak).

Tools of the team, not of the product: a source checkout has them, the wheel leaves them out
(``[tool.setuptools.packages.find]`` in pyproject.toml), and ``router serve`` never loads them.
"""
