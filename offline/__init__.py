"""Offline tools: simulation, replay (off-policy evaluation), training, import/export, bench."""
