"""Offline tools: simulation, replay (off-policy evaluation), training, import/export,
promotion, retention; the benchmarks in :mod:`offline.bench` (source checkout only).

``offline`` reaches the service only through :mod:`router.public`.
"""
