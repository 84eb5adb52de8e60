"""How the heuristic reads each language: token and decision patterns (rules:
:mod:`learners.code_metrics`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
class Rules:
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

C_LIKE = Rules(
    tokens=_C_TOKENS,
    decisions=_C_DECISIONS,
    functions=(_keywords("function|func|fn"),),
    classes=_types("class|struct|interface|trait"),
    signatures=True,
)
RULES: dict[str, Rules] = {
    "javascript": Rules(
        tokens=_JS_TOKENS, decisions=_C_DECISIONS, functions=(_keywords("function"),),
        classes=_types("class"), signatures=True, arrows=True, doc_groups=_JS_DOC,
    ),
    "typescript": Rules(
        tokens=_JS_TOKENS, decisions=_C_DECISIONS, functions=(_keywords("function"),),
        classes=_types("class|interface"), signatures=True, arrows=True, doc_groups=_JS_DOC,
        typed_params=True,
    ),
    "java": Rules(
        tokens=_C_TOKENS, decisions=_C_DECISIONS, classes=_types("class|interface"),
        signatures=True, doc_groups=_RUST_DOC,
    ),
    "csharp": Rules(
        tokens=_C_TOKENS, decisions=_C_DECISIONS, classes=_types("class|struct|interface|record"),
        signatures=True, doc_groups=_RUST_DOC,
    ),
    "c": Rules(
        tokens=_C_TOKENS, decisions=_C_DECISIONS, signatures=True,
        classes=re.compile(r"(?<![\w$.:])struct[ \t]+[A-Za-z_]\w*[^;{}()]{0,200}\{"),
    ),
    "cpp": Rules(
        tokens=_C_TOKENS, decisions=_C_DECISIONS, signatures=True,
        classes=re.compile(
            _BRACE_CLASS + r"(?<![\w$.:])(?:class|struct)[ \t]+[A-Za-z_]\w*[^;{}()]{0,200}\{"
        ),
    ),
    "go": Rules(
        tokens=_C_TOKENS, decisions=_decisions(_C_KEYWORDS + "|select"),
        functions=(_keywords("func"),),
        classes=re.compile(r"\btype[ \t]+\w+[ \t]+(?:struct|interface)\b"),
    ),
    "rust": Rules(
        tokens=_C_TOKENS, decisions=_decisions("if|for|while", r"|&&|\|\||=>"),
        functions=(_keywords("fn"),), classes=_types("struct|trait"), doc_groups=_RUST_DOC,
    ),
    "kotlin": Rules(
        tokens=_C_TOKENS, decisions=_decisions(_C_KEYWORDS + "|when"),
        functions=(_keywords("fun"),), classes=_types("class|interface"),
    ),
    "swift": Rules(
        tokens=_C_TOKENS, decisions=_decisions(_C_KEYWORDS + "|guard", r"|&&|\|\|" + _TERNARY),
        functions=(_keywords("func"),),
        classes=re.compile(r"(?<![\w$.:])(?:class|struct|protocol)[ \t]+(?!func\b|var\b|let\b)\w"),
    ),
    "php": Rules(
        tokens=_JS_TOKENS, decisions=_C_DECISIONS, functions=(_keywords("function|fn"),),
        classes=_types("class|interface|trait"),
    ),
    "ruby": Rules(
        tokens=_HASH_TOKENS, braces=False, functions=(_keywords("def"),),
        decisions=_decisions(
            "if|elsif|unless|while|until|for|when|rescue|and|or", r"|&&|\|\||(?<=\s)\?(?=\s)"
        ),
        classes=re.compile(r"(?<![\w$.:])(?:class|module)[ \t]+[A-Z]"),
    ),
    "shell": Rules(
        tokens=_HASH_TOKENS, decisions=_decisions("if|elif|while|until|for", r"|&&|\|\||;;"),
        functions=(
            re.compile(r"^[ \t]*(?:function[ \t]+[\w.:-]+|[\w.:-]+[ \t]*\([ \t]*\))", re.MULTILINE),
        ),
    ),
    "r": Rules(
        tokens=_HASH_TOKENS, decisions=_decisions("if|for|while"),
        functions=(re.compile(r"(?<![\w.])function[ \t]*(?=\()"),),
        classes=re.compile(r"\b(?:setRefClass|setClass|R6Class)[ \t]*\("),
    ),
    "sql": Rules(
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
PYTHON_FALLBACK = Rules(
    tokens=_PYTHON_TOKENS, braces=False, functions=(_keywords("def"),),
    classes=re.compile(r"^[ \t]*class[ \t]+\w", re.MULTILINE),
    decisions=_decisions(
        "if|elif|for|while|except|and|or", r"|(?m:^[ \t]*case\b)"
    ),
)  # fmt: skip
