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
(:data:`learners.code_metrics.rules.RULES`). Comments and string literals are first blanked
out: ``//`` and ``/* */`` for the C-like family (javascript, typescript, java, go, rust, c,
cpp, csharp, kotlin, swift, php) and for unknown languages, ``#`` for ruby/shell/r/python,
``--`` and ``/* */`` for sql. Then, on what is left:

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
import warnings

from learners.code_metrics.base import CodeMetrics
from learners.code_metrics.heuristic import heuristic_metrics
from learners.code_metrics.python_ast import python_metrics

__all__ = ["PYTHON_NAMES", "CodeMetrics", "compute_code_metrics", "normalize_language"]

PYTHON_NAMES = frozenset({"python", "py", "python3"})

_ALIASES = {
    "js": "javascript", "jsx": "javascript", "node": "javascript",
    "ts": "typescript", "tsx": "typescript",
    "c++": "cpp", "cxx": "cpp", "c#": "csharp", "cs": "csharp",
    "golang": "go", "rs": "rust", "rb": "ruby", "kt": "kotlin",
    "sh": "shell", "bash": "shell", "zsh": "shell",
}  # fmt: skip


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
            return heuristic_metrics(code, lang, parse_error=True)
        return python_metrics(code, tree)
    return heuristic_metrics(code, lang, parse_error=False)


def normalize_language(language: str) -> str:
    """Lower-case ``language`` and map common aliases (``py``, ``ts``, ``c++``) to one name."""
    lang = language.strip().lower()
    if lang in PYTHON_NAMES:
        return "python"
    return _ALIASES.get(lang, lang)
