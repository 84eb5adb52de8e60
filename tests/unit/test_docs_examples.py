"""Every JSON, TOML and shell example in README.md and docs/ parses, and says something true.

JSON blocks are valid JSON, and those tagged ``schema: NAME`` decode into ``router.schemas.NAME``;
TOML blocks, laid over configs/default.toml, decode into ``Settings``; shell blocks pass
``bash -n``, each ``router ...`` command line parses with the CLI's own parser, each
``python -m MODULE`` names a module that exists and each ``ROUTER__...=value`` assignment loads
as a setting. Request bodies are posted to the service by
tests/service/test_readme_examples.py.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from router import schemas
from router.cli import build_parser
from router.settings import DEFAULT_CONFIG, Settings, SettingsError, inherit_bandit, load_settings
from tests.doc_blocks import ROOT, Block, all_blocks, doc_files

HISTORY_WORDS = re.compile(
    r"session [0-9]|this session|previous session|tried, not kept|\b[0-9a-f]{7,40}\b commit"
    r"|commit [0-9a-f]{7,40}\b",
    re.IGNORECASE,
)


def _ids(blocks: list[Block]) -> list[str]:
    return [block.where for block in blocks]


JSON_BLOCKS = all_blocks("json")
TOML_BLOCKS = all_blocks("toml")
SHELL_BLOCKS = all_blocks("sh")


def test_docs_have_examples_of_each_kind() -> None:
    assert len(JSON_BLOCKS) >= 6
    assert len(TOML_BLOCKS) >= 3
    assert len(SHELL_BLOCKS) >= 8


@pytest.mark.parametrize("block", JSON_BLOCKS, ids=_ids(JSON_BLOCKS))
def test_json_example_parses(block: Block) -> None:
    json.loads(block.text)
    if block.tag.startswith("schema:"):
        schema = getattr(schemas, block.tag.partition(":")[2])
        msgspec.json.decode(block.text.encode(), type=schema)


def settings_with(fragment: str) -> Settings:
    """The default config with the TOML ``fragment``'s tables laid over its own."""
    raw: dict[str, Any] = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    for key, value in tomllib.loads(fragment).items():
        current = raw.get(key)
        raw[key] = {**current, **value} if isinstance(current, dict) else value
    inherit_bandit(raw)
    settings = msgspec.convert(raw, Settings, strict=False)
    settings.catalog  # noqa: B018 - expanding the catalog validates it
    return settings


@pytest.mark.parametrize("block", TOML_BLOCKS, ids=_ids(TOML_BLOCKS))
def test_toml_example_is_a_valid_config(block: Block) -> None:
    settings_with(block.text)


def test_a_wrong_toml_example_would_fail() -> None:
    with pytest.raises(msgspec.ValidationError, match="epsilon"):
        settings_with("[bandit]\nepsilon = 2.0\n")


def _command_lines(script: str) -> list[list[str]]:
    """Each command of ``script`` as shell words, comments dropped; a command runs on over
    continuation lines and over newlines inside quotes."""
    commands, pending = [], ""
    for line in script.replace("\\\n", " ").splitlines():
        pending += line + "\n"
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # a quote still open: the command goes on
            continue
        pending = ""
        if words:
            commands.append(words)
    assert not pending, f"unterminated quote in {script!r}"
    return commands


def _python_module(words: list[str]) -> str | None:
    """The module of a ``python -m MODULE ...`` command, else None."""
    for index, word in enumerate(words[:-1]):
        if re.fullmatch(r"python3?", word.rsplit("/", 1)[-1]) and words[index + 1] == "-m":
            return words[index + 2] if index + 2 < len(words) else None
    return None


def _router_argv(words: list[str]) -> list[str] | None:
    for index, word in enumerate(words):
        if "=" not in word and word.rsplit("/", 1)[-1] == "router" and index + 1 < len(words):
            argv = words[index + 1:]
            return None if "--help" in argv else argv
    return None


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=_ids(SHELL_BLOCKS))
def test_shell_example_parses(block: Block) -> None:
    checked = subprocess.run(["bash", "-n"], input=block.text, text=True,
                             capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr
    parser = build_parser()
    for words in _command_lines(block.text):
        argv = _router_argv(words)
        if argv is not None:
            try:
                parser.parse_args(argv)
            except SystemExit as exc:
                raise AssertionError(f"{block.where}: `router {shlex.join(argv)}` does not "
                                     "parse") from exc
        module = _python_module(words)
        if module is not None:
            assert importlib.util.find_spec(module) is not None, (
                f"{block.where}: no module {module}")
        environ = {name: value for word in words
                   if word.startswith("ROUTER__") and "=" in word
                   for name, _, value in [word.partition("=")]}
        if environ:
            try:
                load_settings(None, environ)
            except SettingsError as exc:
                raise AssertionError(f"{block.where}: {exc}") from exc


def test_a_wrong_command_line_would_fail() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["replay", "--no-such-option"])


def test_python_module_commands_are_found() -> None:
    assert _python_module(["MALLOC_ARENA_MAX=2", "python", "-m", "offline.bench.chaos", "all"]) \
        == "offline.bench.chaos"
    assert _python_module([".venv/bin/python3", "-m", "pytest"]) == "pytest"
    assert _python_module(["router", "bench"]) is None


@pytest.mark.parametrize("path", doc_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_docs_tell_no_history(path: Path) -> None:
    """User docs state current facts; how a figure was reached lives in git."""
    found = HISTORY_WORDS.findall(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}: {found}"


LINK = re.compile(r"\]\((?!https?://)([^)#\s]*)(?:#([^)\s]+))?\)")


def _anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to '-'."""
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("path", doc_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_links_between_pages_resolve(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for target, anchor in LINK.findall(text):
        resolved = (path.parent / target).resolve() if target else path
        assert resolved.exists(), f"{path.relative_to(ROOT)}: no file {target}"
        if anchor:
            assert anchor in _anchors(resolved.read_text(encoding="utf-8")), (
                f"{path.relative_to(ROOT)}: {target}#{anchor} names no heading"
            )
