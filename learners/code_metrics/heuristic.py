"""Metrics of every other language, and of Python that does not parse, through regular
expressions (rules: :mod:`learners.code_metrics`)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

from learners.code_metrics.base import CodeMetrics, split_lines
from learners.code_metrics.rules import C_LIKE, PYTHON_FALLBACK, RULES, Rules

_NOT_LINE_BREAK = re.compile(r"[^\r\n]")
_WHITESPACE = re.compile(r"\s*")
# What may stand between a function keyword and its "(": a name, a generator star, generics.
_NAME_BEFORE_PARAMS = re.compile(
    r"[ \t]*\*?[ \t]*(?:<[^<>(){};\n]{0,200}>[ \t]*)?[\w$.:]*[ \t]*(?:<[^<>(){};\n]{0,200}>)?[ \t]*"
)
_BRACKETS = re.compile(r"[(){}]")
_STOPS = re.compile(r"[{;}]")
_NESTED_GROUP = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|\{[^{}]*\}|<[^<>]*>")
_DECLARATION_PREFIX = re.compile(r"[\w$\s=:<>,.*&\[\]?@\"]*")
_SIGNATURE_TAIL = re.compile(r"[^;{}()=]{0,300}\{")
_PAREN_ARROW = re.compile(r"\)(?:[ \t]*:[^=;{}()\n]{0,200}?)?[ \t]*=>")
_BARE_ARROW = re.compile(r"(?<![\w$.])[A-Za-z_$][\w$]*[ \t]*=>")
# C/Java-style "modifiers type name(params) ... {": the "(" must follow on the same line.
_SIGNATURE = re.compile(
    r"^[ \t]*(?P<prefix>(?:[\w$<>\[\],.*&:?~]+[ \t]+)*?)[*&]*"
    r"(?P<name>[A-Za-z_$~][\w$]*(?:::~?[A-Za-z_]\w*)*)[ \t]*(?:<[^<>(){};\n]{0,200}>)?[ \t]*(?=\()",
    re.MULTILINE,
)
_NOT_SIGNATURE_NAMES = frozenset({
    "if", "elif", "elseif", "else", "for", "foreach", "while", "switch", "catch", "return", "do",
    "with", "new", "sizeof", "typeof", "synchronized", "using", "lock", "fixed", "until",
    "function", "fn", "func", "fun", "def", "case", "throw", "await", "yield", "delete", "in",
    "of", "match", "loop", "when", "select", "defer", "go", "assert", "decltype", "static_assert",
})  # fmt: skip
_NOT_SIGNATURE_PREFIX = frozenset({
    "new", "return", "throw", "else", "await", "yield", "case", "function", "fn", "func", "fun",
    "def", "delete", "typeof", "in", "of", "do", "&&", "?", ":", ",",
})  # fmt: skip
_PARAMS_LIMIT = 1_000  # longer parameter lists are garbage or generated; skip, stay linear
_DOC_DISTANCE_LIMIT = 2_000


@dataclass(slots=True)
class _Header:
    """Where a function starts, where its body search starts, and its parameter text span."""

    start: int
    search_from: int
    params: tuple[int, int] | None = None
    bare_param: bool = False
    arrow: bool = False
    end: int = -1


def heuristic_metrics(code: str, lang: str, *, parse_error: bool) -> CodeMetrics:
    rules = PYTHON_FALLBACK if lang == "python" else RULES.get(lang, C_LIKE)
    masked, doc_ends = _mask(code, rules)
    pairs = _match_brackets(masked)
    headers = _find_headers(masked, rules, pairs)
    _set_body_ends(masked, rules, pairs, headers)
    decisions = [m.start() for m in rules.decisions.finditer(masked)]
    own = _own_decisions([(h.start, h.end) for h in headers], decisions)
    classes = 0 if rules.classes is None else sum(1 for _ in rules.classes.finditer(masked))
    docstring_coverage = None
    if rules.doc_groups and headers:
        documented = sum(_has_doc_comment(masked, doc_ends, h.start) for h in headers)
        docstring_coverage = documented / len(headers)
    return CodeMetrics(
        language=lang,
        method="heuristic",
        lines=sum(1 for line in split_lines(code) if line.strip()),
        code_lines=sum(1 for line in split_lines(masked) if line.strip()),
        functions=len(headers),
        classes=classes,
        cyclomatic_complexity=1 + len(decisions),
        max_function_complexity=1 + max(own) if own else 0,
        type_hint_coverage=_typed_share(masked, headers) if rules.typed_params else None,
        docstring_coverage=docstring_coverage,
        parse_error=parse_error,
    )


def _mask(code: str, rules: Rules) -> tuple[str, list[int]]:
    """Blank out comments (spaces) and strings (quotes), keeping every offset and line break.

    Also returns the end offsets of the doc comments the language's rules recognise.
    """
    parts: list[str] = []
    doc_ends: list[int] = []
    last = 0
    for match in rules.tokens.finditer(code):
        parts.append(code[last : match.start()])
        filler = '"' if match.lastgroup == "string" else " "
        parts.append(_NOT_LINE_BREAK.sub(filler, match.group()))
        if match.lastgroup in rules.doc_groups:
            doc_ends.append(match.end())
        last = match.end()
    parts.append(code[last:])
    return "".join(parts), doc_ends


def _match_brackets(masked: str) -> dict[int, int]:
    """Offsets of matched brackets, both ways: "(" -> ")" and ")" -> "(", same for braces."""
    pairs: dict[int, int] = {}
    stacks: dict[str, list[int]] = {"(": [], "{": []}
    closer = {")": "(", "}": "{"}
    for match in _BRACKETS.finditer(masked):
        char, position = match.group(), match.start()
        if char in stacks:
            stacks[char].append(position)
        elif stacks[closer[char]]:
            opening = stacks[closer[char]].pop()
            pairs[opening], pairs[position] = position, opening
    return pairs


def _find_headers(masked: str, rules: Rules, pairs: dict[int, int]) -> list[_Header]:
    headers: list[_Header] = []
    for pattern in rules.functions:
        for match in pattern.finditer(masked):
            name = _NAME_BEFORE_PARAMS.match(masked, match.end())
            position = match.end() if name is None else name.end()
            if masked.startswith("(", position) and position in pairs:
                close = pairs[position]
                headers.append(_Header(match.start(), close + 1, (position + 1, close)))
            else:
                headers.append(_Header(match.start(), match.end()))
    if rules.signatures:
        headers.extend(_signature_headers(masked, pairs))
    if rules.arrows:
        headers.extend(_arrow_headers(masked, pairs))
    headers.sort(key=lambda header: header.start)
    return headers


def _signature_headers(masked: str, pairs: dict[int, int]) -> Iterator[_Header]:
    for match in _SIGNATURE.finditer(masked):
        name = match.group("name")
        if name in _NOT_SIGNATURE_NAMES:
            continue
        if any(word in _NOT_SIGNATURE_PREFIX for word in match.group("prefix").split()):
            continue
        close = pairs.get(match.end())
        if close is None or not _SIGNATURE_TAIL.match(masked, close + 1):
            continue
        yield _Header(match.start(), close + 1, (match.end() + 1, close))


def _arrow_headers(masked: str, pairs: dict[int, int]) -> Iterator[_Header]:
    for match in _PAREN_ARROW.finditer(masked):
        opening = pairs.get(match.start())
        if opening is not None and not _in_type_position(masked, opening):
            yield _Header(opening, match.end(), (opening + 1, match.start()), arrow=True)
    for match in _BARE_ARROW.finditer(masked):
        if not _in_type_position(masked, match.start()):
            yield _Header(match.start(), match.end(), bare_param=True, arrow=True)


def _in_type_position(masked: str, position: int) -> bool:
    """Whether an arrow starting at ``position`` follows ":" (a function type or return type)."""
    index = position - 1
    while index >= 0 and masked[index] in " \t":
        index -= 1
    return index >= 0 and masked[index] == ":"


def _set_body_ends(
    masked: str, rules: Rules, pairs: dict[int, int], headers: list[_Header]
) -> None:
    """Set each header's body end; the module docstring gives the rule."""
    stops = [match.start() for match in _STOPS.finditer(masked)] if rules.braces else []
    for index, header in enumerate(headers):
        following = headers[index + 1].start if index + 1 < len(headers) else len(masked)
        header.end = following
        if header.arrow:
            after = _WHITESPACE.match(masked, header.search_from)
            position = header.search_from if after is None else after.end()
            if masked.startswith("{", position):
                header.end = pairs.get(position, len(masked))
            else:
                line_end = masked.find("\n", position)
                header.end = len(masked) if line_end < 0 else line_end
            continue
        stop_index = bisect.bisect_left(stops, header.search_from)
        if stop_index < len(stops):
            stop = stops[stop_index]
            if masked[stop] == "{":
                header.end = pairs.get(stop, len(masked))
            elif masked[stop] == ";":
                header.end = stop


def _own_decisions(spans: list[tuple[int, int]], decisions: list[int]) -> list[int]:
    """Decision points per span, each given to the innermost span that contains it.

    ``spans`` are sorted by start; a span reaching past its enclosing span is cut at its end.
    """
    counts = [0] * len(spans)
    open_spans: list[tuple[int, int]] = []  # (span index, end), innermost last
    next_span = 0
    for position in decisions:
        while next_span < len(spans) and spans[next_span][0] <= position:
            start, end = spans[next_span]
            while open_spans and open_spans[-1][1] <= start:
                open_spans.pop()
            if open_spans:
                end = min(end, open_spans[-1][1])
            open_spans.append((next_span, end))
            next_span += 1
        while open_spans and open_spans[-1][1] <= position:
            open_spans.pop()
        if open_spans:
            counts[open_spans[-1][0]] += 1
    return counts


def _has_doc_comment(masked: str, doc_ends: list[int], start: int) -> bool:
    """Whether a doc comment precedes ``start`` with only attributes or modifiers in between."""
    index = bisect.bisect_right(doc_ends, start) - 1
    if index < 0 or start - doc_ends[index] > _DOC_DISTANCE_LIMIT:
        return False
    *full_lines, partial = masked[doc_ends[index] : start].split("\n")
    attributes = all(
        not line.strip() or line.lstrip().startswith(("@", "#[", "[")) for line in full_lines
    )
    return attributes and _DECLARATION_PREFIX.fullmatch(partial) is not None


def _typed_share(masked: str, headers: list[_Header]) -> float | None:
    """TypeScript: the share of parameters written ``name: type`` (``None`` without any)."""
    total = typed = 0
    for header in headers:
        if header.bare_param:
            total += 1
            continue
        if header.params is None or header.params[1] - header.params[0] > _PARAMS_LIMIT:
            continue
        text = masked[header.params[0] : header.params[1]].replace("=>", "  ")
        for _ in range(8):  # flatten nested brackets so that only top-level commas split
            text, replaced = _NESTED_GROUP.subn("0", text)
            if not replaced:
                break
        for param in text.split(","):
            if param.strip():
                total += 1
                typed += ":" in param
    return typed / total if total else None
