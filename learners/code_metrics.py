"""Static metrics of generated code (the feedback's ``code``), used as features by batch models.

``compute_code_metrics(code, language)`` never raises: whatever the text, it returns a
``CodeMetrics``. Blank code has nothing to measure: every count and both complexities are 0 and
both coverages are ``None``.

Python (``python``, ``py``, ``python3``, any case) is analysed with the standard ``ast`` module,
following radon's McCabe rules. The module total is 1 plus every decision point in the file; a
function's number is 1 plus the decision points of its own body (nested functions are counted
separately; decorators, defaults and annotations belong to the enclosing scope; lambdas are not
functions, their decision points belong to the enclosing one). Decision points:

- ``if`` and each ``elif``, and each conditional expression: 1;
- ``for``, ``async for``, ``while``: 1, plus 1 for a loop ``else``;
- ``try``: 1 per ``except`` handler, plus 1 for a ``try`` ``else``;
- ``and`` / ``or``: 1 per operand after the first (``a and b or c`` is 2);
- each comprehension ``for`` clause and each of its ``if`` clauses: 1;
- ``match``: 1 per ``case``, except an unguarded irrefutable ``case _`` / ``case name``
  (it acts as an ``else``);
- ``with``, ``assert``, ``return``, ``break`` and ``continue``: 0.

Type-hint coverage is the share of annotatable slots that are annotated: every parameter
(positional-only, ordinary, ``*args``, keyword-only, ``**kwargs``) except a first ``self`` or
``cls`` of a function defined directly in a class body, plus one return slot per function.
Docstring coverage is the share of the module, its classes and its functions (public and
private) that have a docstring. A comment line is a line whose first non-blank character is
``#`` and that is not inside a multi-line string; docstrings are code lines. Python that does
not parse (``SyntaxError``, ``ValueError`` for null bytes, ``RecursionError`` or ``MemoryError``
for pathological nesting) is measured by the heuristic below with ``parse_error=True``.

Every other language, and Python that does not parse, gets a regular-expression heuristic
(``_RULES``). Comments and string literals are first blanked out: ``//`` and ``/* */`` for the
C-like family (javascript, typescript, java, go, rust, c, cpp, csharp, kotlin, swift, php) and
for unknown languages, ``#`` for ruby/shell/r/python, ``--`` and ``/* */`` for sql. Then, on
what is left:

- functions: keywords (``function``, ``fn``, ``func``, ``fun``, ``def``, ``CREATE FUNCTION``),
  C/Java-style signatures ``modifiers type name(params) ... {`` (java, c, cpp, csharp, JS/TS
  methods, unknown languages) and JS/TS arrows; an arrow right after ``:`` is a function type,
  not a function;
- classes: ``class``/``struct``/``interface``/``trait``/``record``/``protocol``/``module`` as
  the language has them, followed by a name (C/C++ ``struct``/``class`` only with a ``{`` body;
  Go ``type X struct|interface``); enums and Rust ``impl`` blocks are not counted, an ``impl``
  adds methods to a type counted already;
- decision points: ``if``, ``elif``, ``for``, ``foreach``, ``while``, ``case``, ``catch``, ``&&``,
  ``||`` and a ``?`` that looks like a ternary (not ``?.``, ``??``, ``?:`` nor a ``?`` before
  ``)``, ``;`` or a line end); Go, Rust and Kotlin have no ternary, Rust counts match arms
  ``=>``, Kotlin ``when``, Swift ``guard``, Ruby ``elsif``/``unless``/``until``/``when``/
  ``rescue``/``and``/``or``, shell ``;;`` case arms, SQL ``WHEN``/``IF``/``ELSIF``/``WHILE``/
  ``AND``/``OR`` (``IF [NOT] EXISTS`` excluded, ``BETWEEN ... AND`` miscounted), Python
  ``except``, ``and``/``or`` and ``case`` lines.

A function's body is its ``{ ... }`` block when a ``{`` follows its header before any ``;`` or
``}``, and ends at the ``;`` when that comes first (an arrow's body: its block, else the rest of
its line); otherwise, and always in ruby, sql and python, it runs to the next function header.
Decision points go to the innermost body holding them. Type-hint
coverage is ``None`` except for TypeScript: the share of parameters written ``name: type``,
``None`` without parameters. Docstring coverage is the share of functions preceded by a doc
comment, only attributes or modifiers in between (JSDoc ``/** */`` for JS/TS, ``///`` or ``/**``
for rust/csharp/java); ``None`` for other languages (Python that did not parse included) and
without functions. The heuristic miscounts unusual layouts; it is a fallback that keeps the
features defined, not a parser. Scans are linear in the text (bounded lookaheads), so even
200,000 characters of garbage take well under a second.
"""

from __future__ import annotations

import ast
import bisect
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

PYTHON_NAMES = frozenset({"python", "py", "python3"})

_ALIASES = {
    "js": "javascript", "jsx": "javascript", "node": "javascript",
    "ts": "typescript", "tsx": "typescript",
    "c++": "cpp", "cxx": "cpp", "c#": "csharp", "cs": "csharp",
    "golang": "go", "rs": "rust", "rb": "ruby", "kt": "kotlin",
    "sh": "shell", "bash": "shell", "zsh": "shell",
}  # fmt: skip


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


def compute_code_metrics(code: str, language: str) -> CodeMetrics:
    """Measure ``code`` written in ``language`` (case-insensitive; unknown ones count as C-like).

    Never raises: Python that does not parse falls back to the heuristic with
    ``parse_error=True``.
    """
    lang = normalize_language(language)
    is_python = lang == "python"
    if not code.strip():
        method = "python-ast" if is_python else "heuristic"
        return CodeMetrics(lang, method, 0, 0, 0, 0, 0, 0, None, None, False)
    if is_python:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes in the code are not our concern
                tree = ast.parse(code)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return _heuristic_metrics(code, lang, parse_error=True)
        return _python_metrics(code, tree)
    return _heuristic_metrics(code, lang, parse_error=False)


def normalize_language(language: str) -> str:
    """Lower-case ``language`` and map common aliases (``py``, ``ts``, ``c++``) to one name."""
    lang = language.strip().lower()
    if lang in PYTHON_NAMES:
        return "python"
    return _ALIASES.get(lang, lang)


# --- Python, through the ast module --------------------------------------------------------


def _loop_points(node: ast.For | ast.AsyncFor | ast.While) -> int:
    return 1 + bool(node.orelse)


def _try_points(node: ast.Try | ast.TryStar) -> int:
    return len(node.handlers) + bool(node.orelse)


def _bool_op_points(node: ast.BoolOp) -> int:
    return len(node.values) - 1


def _comprehension_points(node: ast.comprehension) -> int:
    return 1 + len(node.ifs)


def _match_points(node: ast.Match) -> int:
    return sum(not _is_else_case(case) for case in node.cases)


def _is_else_case(case: ast.match_case) -> bool:
    pattern = case.pattern
    return isinstance(pattern, ast.MatchAs) and pattern.pattern is None and case.guard is None


def _one_point(node: ast.If | ast.IfExp) -> int:
    return 1


# Decision points per node type; a dict lookup on the exact type keeps the walk fast.
_DECISION_POINTS: dict[type[ast.AST], Callable[[Any], int]] = {
    ast.If: _one_point,
    ast.IfExp: _one_point,
    ast.For: _loop_points,
    ast.AsyncFor: _loop_points,
    ast.While: _loop_points,
    ast.Try: _try_points,
    ast.TryStar: _try_points,
    ast.BoolOp: _bool_op_points,
    ast.comprehension: _comprehension_points,
    ast.Match: _match_points,
}
# Leaves that carry no metric; skipping them halves the walk.
_LEAF_TYPES = (ast.expr_context, ast.operator, ast.boolop, ast.unaryop, ast.cmpop)


def _hint_slots(func: ast.FunctionDef | ast.AsyncFunctionDef, is_method: bool) -> tuple[int, int]:
    """(annotated, annotatable) slots of one function: its parameters and its return."""
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    if is_method and positional and positional[0].arg in ("self", "cls"):
        positional = positional[1:]
    params = [*positional, *args.kwonlyargs]
    params += [extra for extra in (args.vararg, args.kwarg) if extra is not None]
    annotated = sum(p.annotation is not None for p in params) + (func.returns is not None)
    return annotated, len(params) + 1


def _python_metrics(code: str, tree: ast.Module) -> CodeMetrics:
    decisions = 0
    func_decisions: list[int] = []  # own-body decision points, one entry per function
    classes = hinted = hint_slots = documented = 0
    methods: set[int] = set()  # ids of defs sitting directly in a class body
    in_string: set[int] = set()  # lines 2.. of multi-line string literals
    # Iterative walk, so that deep but valid trees cannot hit the recursion limit. Each entry is
    # (node, index in func_decisions of the function whose own body holds it, or -1).
    stack: list[tuple[ast.AST, int]] = [(tree, -1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, owner = pop()
        points_of = _DECISION_POINTS.get(type(node))
        if points_of is not None:
            points = points_of(node)
            decisions += points
            if owner >= 0:
                func_decisions[owner] += points
        elif isinstance(node, ast.Constant):
            if node.end_lineno is not None and node.end_lineno > node.lineno:
                in_string.update(range(node.lineno + 1, node.end_lineno + 1))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            annotated, slots = _hint_slots(node, id(node) in methods)
            hinted, hint_slots = hinted + annotated, hint_slots + slots
            documented += ast.get_docstring(node, clean=False) is not None
            func_decisions.append(0)
            body_owner = len(func_decisions) - 1
            for statement in node.body:
                push((statement, body_owner))
            # Decorators, defaults and annotations run in the enclosing scope.
            outer: list[ast.AST | None] = [*node.decorator_list, node.args, node.returns]
            for child in outer:
                if child is not None:
                    push((child, owner))
            continue
        elif isinstance(node, ast.ClassDef):
            classes += 1
            documented += ast.get_docstring(node, clean=False) is not None
            methods.update(id(statement) for statement in node.body)
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST) and not isinstance(item, _LEAF_TYPES):
                        push((item, owner))
            elif isinstance(value, ast.AST) and not isinstance(value, _LEAF_TYPES):
                push((value, owner))
    documented += ast.get_docstring(tree, clean=False) is not None

    lines = code_lines = 0
    for number, line in enumerate(_split_lines(code), start=1):
        stripped = line.strip()
        if stripped:
            lines += 1
            code_lines += not stripped.startswith("#") or number in in_string
    functions = len(func_decisions)
    return CodeMetrics(
        language="python",
        method="python-ast",
        lines=lines,
        code_lines=code_lines,
        functions=functions,
        classes=classes,
        cyclomatic_complexity=1 + decisions,
        max_function_complexity=1 + max(func_decisions) if func_decisions else 0,
        type_hint_coverage=hinted / hint_slots if functions else None,
        docstring_coverage=documented / (1 + classes + functions),
        parse_error=False,
    )


def _split_lines(code: str) -> list[str]:
    # The line breaks Python's tokenizer knows, so numbers agree with ast's line numbers.
    return re.split(r"\r\n|\r|\n", code)


# --- Every other language, through regular expressions ------------------------------------

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

_STRING_DQ = r'"(?:[^"\\\n]|\\[\s\S])*(?:"|(?=\n)|\Z)'
_STRING_SQ = r"'(?:[^'\\\n]|\\[\s\S])*(?:'|(?=\n)|\Z)"
_CHAR_LITERAL = r"'(?:\\[^\n]{1,10}?|[^'\\\n])'"
_BACKTICK = r"`(?:[^`\\]|\\[\s\S])*(?:`|\Z)"


def _c_tokens(single_quote_strings: bool) -> re.Pattern[str]:
    single = _STRING_SQ if single_quote_strings else _CHAR_LITERAL
    return re.compile(
        r"(?P<doc>/\*\*(?!/)[\s\S]*?(?:\*/|\Z))|(?P<ldoc>///(?!/)[^\n]*)"
        r"|(?P<comment>//[^\n]*|/\*[\s\S]*?(?:\*/|\Z))"
        rf"|(?P<string>{_STRING_DQ}|{_BACKTICK}|{single})"
    )


_C_TOKENS = _c_tokens(single_quote_strings=False)
_JS_TOKENS = _c_tokens(single_quote_strings=True)
_HASH_TOKENS = re.compile(
    r"(?P<comment>(?<![^\s;(|&])#[^\n]*)"
    r"|(?P<string>\"(?:[^\"\\]|\\[\s\S])*(?:\"|\Z)|'(?:[^'\\]|\\[\s\S])*(?:'|\Z))"
)
_PYTHON_TOKENS = re.compile(
    r"(?P<comment>#[^\n]*)"
    rf"|(?P<string>\"\"\"[\s\S]*?(?:\"\"\"|\Z)|'''[\s\S]*?(?:'''|\Z)|{_STRING_DQ}|{_STRING_SQ})"
)
_SQL_TOKENS = re.compile(
    r"(?P<comment>--[^\n]*|/\*[\s\S]*?(?:\*/|\Z))"
    r"|(?P<string>'(?:[^']|'')*(?:'|\Z)|\"(?:[^\"]|\"\")*(?:\"|\Z))"
)

# A "?" that looks like a ternary: not "?.", "??", "?:", nor a "?" closing a type or an expression.
_TERNARY = r"|(?<!\?)\?(?![?.:\]),;>=]|[ \t]*[\n\]),;>=:])"


def _decisions(keywords: str, extra: str = r"|&&|\|\|", flags: int = 0) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{keywords})\b{extra}", flags)


def _keywords(words: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w$.:])(?:{words})\b", flags)


def _types(words: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w$.:])(?:{words})[ \t]+[A-Za-z_$]")


_C_KEYWORDS = "if|elif|elseif|for|foreach|while|case|catch"


@dataclass(frozen=True, slots=True)
class _Rules:
    """How the heuristic reads one language; see the module docstring."""

    tokens: re.Pattern[str]
    decisions: re.Pattern[str]
    functions: tuple[re.Pattern[str], ...] = ()
    classes: re.Pattern[str] | None = None
    signatures: bool = False
    arrows: bool = False
    braces: bool = True
    doc_groups: frozenset[str] = frozenset()
    typed_params: bool = False


_C_DECISIONS = _decisions(_C_KEYWORDS, r"|&&|\|\|" + _TERNARY)
_JS_DOC = frozenset({"doc"})
_RUST_DOC = frozenset({"doc", "ldoc"})
_BRACE_CLASS = r"(?<![<,])(?<![<,] )(?<!enum )"  # not "template <class T>" nor "enum class"

_C_LIKE = _Rules(
    tokens=_C_TOKENS,
    decisions=_C_DECISIONS,
    functions=(_keywords("function|func|fn"),),
    classes=_types("class|struct|interface|trait"),
    signatures=True,
)
_RULES: dict[str, _Rules] = {
    "javascript": _Rules(
        tokens=_JS_TOKENS, decisions=_C_DECISIONS, functions=(_keywords("function"),),
        classes=_types("class"), signatures=True, arrows=True, doc_groups=_JS_DOC,
    ),
    "typescript": _Rules(
        tokens=_JS_TOKENS, decisions=_C_DECISIONS, functions=(_keywords("function"),),
        classes=_types("class|interface"), signatures=True, arrows=True, doc_groups=_JS_DOC,
        typed_params=True,
    ),
    "java": _Rules(
        tokens=_C_TOKENS, decisions=_C_DECISIONS, classes=_types("class|interface"),
        signatures=True, doc_groups=_RUST_DOC,
    ),
    "csharp": _Rules(
        tokens=_C_TOKENS, decisions=_C_DECISIONS, classes=_types("class|struct|interface|record"),
        signatures=True, doc_groups=_RUST_DOC,
    ),
    "c": _Rules(
        tokens=_C_TOKENS, decisions=_C_DECISIONS, signatures=True,
        classes=re.compile(r"(?<![\w$.:])struct[ \t]+[A-Za-z_]\w*[^;{}()]{0,200}\{"),
    ),
    "cpp": _Rules(
        tokens=_C_TOKENS, decisions=_C_DECISIONS, signatures=True,
        classes=re.compile(
            _BRACE_CLASS + r"(?<![\w$.:])(?:class|struct)[ \t]+[A-Za-z_]\w*[^;{}()]{0,200}\{"
        ),
    ),
    "go": _Rules(
        tokens=_C_TOKENS, decisions=_decisions(_C_KEYWORDS + "|select"),
        functions=(_keywords("func"),),
        classes=re.compile(r"\btype[ \t]+\w+[ \t]+(?:struct|interface)\b"),
    ),
    "rust": _Rules(
        tokens=_C_TOKENS, decisions=_decisions("if|for|while", r"|&&|\|\||=>"),
        functions=(_keywords("fn"),), classes=_types("struct|trait"), doc_groups=_RUST_DOC,
    ),
    "kotlin": _Rules(
        tokens=_C_TOKENS, decisions=_decisions(_C_KEYWORDS + "|when"),
        functions=(_keywords("fun"),), classes=_types("class|interface"),
    ),
    "swift": _Rules(
        tokens=_C_TOKENS, decisions=_decisions(_C_KEYWORDS + "|guard", r"|&&|\|\|" + _TERNARY),
        functions=(_keywords("func"),),
        classes=re.compile(r"(?<![\w$.:])(?:class|struct|protocol)[ \t]+(?!func\b|var\b|let\b)\w"),
    ),
    "php": _Rules(
        tokens=_JS_TOKENS, decisions=_C_DECISIONS, functions=(_keywords("function|fn"),),
        classes=_types("class|interface|trait"),
    ),
    "ruby": _Rules(
        tokens=_HASH_TOKENS, braces=False, functions=(_keywords("def"),),
        decisions=_decisions(
            "if|elsif|unless|while|until|for|when|rescue|and|or", r"|&&|\|\||(?<=\s)\?(?=\s)"
        ),
        classes=re.compile(r"(?<![\w$.:])(?:class|module)[ \t]+[A-Z]"),
    ),
    "shell": _Rules(
        tokens=_HASH_TOKENS, decisions=_decisions("if|elif|while|until|for", r"|&&|\|\||;;"),
        functions=(
            re.compile(r"^[ \t]*(?:function[ \t]+[\w.:-]+|[\w.:-]+[ \t]*\([ \t]*\))", re.MULTILINE),
        ),
    ),
    "r": _Rules(
        tokens=_HASH_TOKENS, decisions=_decisions("if|for|while"),
        functions=(re.compile(r"(?<![\w.])function[ \t]*(?=\()"),),
        classes=re.compile(r"\b(?:setRefClass|setClass|R6Class)[ \t]*\("),
    ),
    "sql": _Rules(
        tokens=_SQL_TOKENS, braces=False,
        decisions=_decisions(
            r"when|elsif|while|and|or|if(?![ \t\n]+(?:not[ \t\n]+)?exists\b)", "", re.IGNORECASE
        ),
        functions=(
            re.compile(
                r"\bcreate[ \t\n]+(?:or[ \t\n]+replace[ \t\n]+)?(?:function|procedure)\b",
                re.IGNORECASE,
            ),
        ),
    ),
}  # fmt: skip
_PYTHON_FALLBACK = _Rules(
    tokens=_PYTHON_TOKENS, braces=False, functions=(_keywords("def"),),
    classes=re.compile(r"^[ \t]*class[ \t]+\w", re.MULTILINE),
    decisions=_decisions(
        "if|elif|for|while|except|and|or", r"|(?m:^[ \t]*case\b)"
    ),
)  # fmt: skip


@dataclass(slots=True)
class _Header:
    """Where a function starts, where its body search starts, and its parameter text span."""

    start: int
    search_from: int
    params: tuple[int, int] | None = None
    bare_param: bool = False
    arrow: bool = False
    end: int = -1


def _heuristic_metrics(code: str, lang: str, *, parse_error: bool) -> CodeMetrics:
    rules = _PYTHON_FALLBACK if lang == "python" else _RULES.get(lang, _C_LIKE)
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
        lines=sum(1 for line in _split_lines(code) if line.strip()),
        code_lines=sum(1 for line in _split_lines(masked) if line.strip()),
        functions=len(headers),
        classes=classes,
        cyclomatic_complexity=1 + len(decisions),
        max_function_complexity=1 + max(own) if own else 0,
        type_hint_coverage=_typed_share(masked, headers) if rules.typed_params else None,
        docstring_coverage=docstring_coverage,
        parse_error=parse_error,
    )


def _mask(code: str, rules: _Rules) -> tuple[str, list[int]]:
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


def _find_headers(masked: str, rules: _Rules, pairs: dict[int, int]) -> list[_Header]:
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
    masked: str, rules: _Rules, pairs: dict[int, int], headers: list[_Header]
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
