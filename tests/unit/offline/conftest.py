"""Fixtures of the offline tests: the default config's catalog, read without the service."""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec
import pytest

from learners.catalog import Catalog, ModelSpec, TemplateSpec

DEFAULT_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "default.toml"


def load_default_catalog() -> Catalog:
    raw = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    return Catalog(
        models=msgspec.convert(raw["models"], list[ModelSpec]),
        templates=msgspec.convert(raw["templates"], list[TemplateSpec]),
        temperatures=raw["temperatures"],
    )


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_default_catalog()
