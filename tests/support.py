"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

from router.settings import Settings, load_settings


def make_settings(database_url: str, **environ: str) -> Settings:
    """Default-config settings on ``database_url`` with extra ``ROUTER__...`` overrides."""
    env = {"ROUTER__STORAGE__URL": database_url, **environ}
    return load_settings(None, env)
