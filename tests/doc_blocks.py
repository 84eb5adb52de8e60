"""The fenced code blocks of README.md and docs/, for the tests that execute or parse them.

A block may be tagged by an HTML comment on the line before its fence:
``<!-- example: NAME -->`` (a request body or shell session a test runs by name) or
``<!-- schema: NAME -->`` (a JSON answer that must decode into ``router.schemas.NAME``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

_BLOCK = re.compile(
    r"(?:<!--\s*(?P<tag>[a-z]+:\s*[A-Za-z0-9_-]+)\s*-->\n)?"
    r"^(?P<indent>[ \t]*)```(?P<lang>[a-z]*)\n(?P<body>.*?)^(?P=indent)```",
    re.DOTALL | re.MULTILINE,
)


class Block(NamedTuple):
    """One fenced block: where it is, its language, its tag (``kind: name``) and its text."""

    path: Path
    line: int
    lang: str
    tag: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_files() -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def code_blocks(path: Path) -> list[Block]:
    """The fenced blocks of one Markdown file, in order."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in _BLOCK.finditer(text):
        indent = match.group("indent")
        body = "".join(
            line[len(indent):] if line.startswith(indent) else line
            for line in match.group("body").splitlines(keepends=True)
        )
        tag = re.sub(r"\s+", "", match.group("tag") or "")
        line = text.count("\n", 0, match.start("lang")) + 1
        blocks.append(Block(path, line, match.group("lang"), tag, body))
    return blocks


def all_blocks(lang: str) -> list[Block]:
    """Every block of language ``lang`` in README.md and docs/."""
    return [block for path in doc_files() for block in code_blocks(path) if block.lang == lang]


def tagged_block(path: Path, tag: str) -> Block:
    """The block of ``path`` tagged ``tag`` (e.g. ``example:route``)."""
    found = [block for block in code_blocks(path) if block.tag == tag]
    assert len(found) == 1, f"{path.name} has {len(found)} blocks tagged {tag!r}, expected one"
    return found[0]
