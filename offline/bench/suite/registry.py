"""Every environment of the suite, and the selection a command line asks for.

Simulated worlds come from :mod:`offline.bench.suite.worlds` (and
:mod:`offline.bench.suite.simulator_env` through it), classification sets from
:mod:`offline.bench.suite.datasets`, real-outcome replays from
:mod:`offline.bench.suite.realdata`. Each module exposes ``environments() -> list[Environment]``.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
from collections.abc import Sequence

from offline.bench.suite.environment import Environment

MODULES = (
    "offline.bench.suite.worlds", "offline.bench.suite.datasets", "offline.bench.suite.realdata",
)


class UnknownEnvironmentError(ValueError):
    """A name or pattern that matches no environment."""


@functools.lru_cache(maxsize=1)
def all_environments() -> tuple[Environment, ...]:
    """Every environment, in module order (built once per process)."""
    found: list[Environment] = []
    for name in MODULES:
        found.extend(importlib.import_module(name).environments())
    names = [env.name for env in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"environments named twice: {', '.join(duplicates)}")
    return tuple(found)


def select(environments: Sequence[Environment], patterns: str | None) -> list[Environment]:
    """The environments whose name matches one of the comma-separated names or shell
    patterns (``world-*,cls-wine``); all of them for None or an empty string."""
    if not patterns:
        return list(environments)
    wanted = [p.strip() for p in patterns.split(",") if p.strip()]
    for pattern in wanted:
        if not any(fnmatch.fnmatchcase(env.name, pattern) for env in environments):
            known = ", ".join(env.name for env in environments)
            raise UnknownEnvironmentError(f"--envs: {pattern!r} matches no environment; "
                                          f"known: {known}")
    return [env for env in environments
            if any(fnmatch.fnmatchcase(env.name, p) for p in wanted)]


def find(name: str) -> Environment:
    """The environment called ``name``."""
    for env in all_environments():
        if env.name == name:
            return env
    raise UnknownEnvironmentError(f"no environment {name!r}")
