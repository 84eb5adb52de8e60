"""Package boundaries: ``router`` imports ``offline`` only in its command line; ``offline``
(benchmarks included) reaches ``router`` only through :mod:`router.public`, which offers nothing
``offline`` does not use; the wheel leaves the benchmarks out, and a ``router bench*`` command
without them says so in one line.
"""

from __future__ import annotations

import ast
import importlib.abc
import sys
import tomllib
from collections.abc import Iterator, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

import pytest
import setuptools

import offline
import router.public
from router.cli import BENCHMARK_COMMANDS, main

ROOT = Path(__file__).resolve().parents[2]


def _imports(package: str) -> Iterator[tuple[Path, int, str, list[str]]]:
    """(file, line, imported module, imported names) of every import in ``package``."""
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, node.lineno, alias.name, []
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield path, node.lineno, node.module, [alias.name for alias in node.names]


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_router_imports_offline_only_in_its_command_line() -> None:
    found = [f"{path.relative_to(ROOT)}:{line} imports {module}"
             for path, line, module, _ in _imports("router")
             if _in(module, "offline") and path != ROOT / "router" / "cli.py"]
    assert found == []


def test_offline_uses_router_only_through_router_public() -> None:
    found = [f"{path.relative_to(ROOT)}:{line} imports {module} {names}"
             for path, line, module, names in _imports("offline")
             if _in(module, "router") and (module != "router.public" or "*" in names)]
    assert found == []


def test_router_public_offers_only_what_offline_uses() -> None:
    used = {name for _, _, module, names in _imports("offline") if module == "router.public"
            for name in names}
    offered = set(router.public.__all__)
    assert offered - used == set(), "offered by router.public, used nowhere in offline"
    assert used - offered == set(), "used by offline, not in router.public.__all__"
    for name in offered:
        assert getattr(router.public, name) is not None


def test_the_wheel_leaves_the_benchmarks_out() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    find = config["tool"]["setuptools"]["packages"]["find"]
    packages = set(setuptools.find_packages(str(ROOT), include=find["include"],
                                            exclude=find.get("exclude", ())))
    assert {"router", "router.storage", "learners", "offline", "offline.replay"} <= packages
    assert {package for package in packages if _in(package, "offline.bench")} == set()
    assert (ROOT / "offline" / "bench" / "suite" / "__init__.py").exists()


class _WithoutBenchmarks(importlib.abc.MetaPathFinder):
    """Finds no ``offline.bench`` module, as an install from the wheel."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if _in(fullname, "offline.bench"):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


@pytest.mark.parametrize("command", [command.name for command in BENCHMARK_COMMANDS])
def test_a_benchmark_command_without_the_benchmarks_says_so(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [name for name in sys.modules if _in(name, "offline.bench")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delattr(offline, "bench", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_WithoutBenchmarks(), *sys.meta_path])
    assert main([command, "--seed", "1"]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith(f"router {command}: the benchmarks are not installed")
    assert "\n" not in message
