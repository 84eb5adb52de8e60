"""The metrics record and the line splitting both measurements share."""

from __future__ import annotations

import re

import msgspec


class CodeMetrics(msgspec.Struct, frozen=True):
    """Metrics of one piece of code; the module docstring defines each rule."""

    language: str
    method: str
    lines: int
    code_lines: int
    functions: int
    classes: int
    cyclomatic_complexity: int
    max_function_complexity: int
    type_hint_coverage: float | None
    docstring_coverage: float | None
    parse_error: bool


def split_lines(code: str) -> list[str]:
    # The line breaks Python's tokenizer knows, so numbers agree with ast's line numbers.
    return re.split(r"\r\n|\r|\n", code)
