"""One feature pipeline for serving, training and replay.

``extract_features`` is a pure function of a :class:`DecisionContext`; its result is logged with
every decision so that learning uses exactly what was known when the decision was made
(DESIGN.md rule 3). Features are grouped into namespaces (VW's notion, also convenient for
tabular models): ``task``, ``description`` (word tokens), ``caller`` and ``free``.

Categorical values become indicator features ``name=value`` with value 1.0; numeric values keep
their value. Names never contain whitespace, ``:`` or ``|``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from learners.context import DecisionContext, Task

MAX_DESCRIPTION_TOKENS = 64
_TOKEN = re.compile(r"[a-z][a-z0-9_+#.-]{1,29}")
_UNSAFE = re.compile(r"[^\w.=+#/@-]+")
_STOPWORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "for",
        "on",
        "with",
        "by",
        "is",
        "are",
        "be",
        "it",
        "this",
        "that",
        "as",
        "at",
        "from",
        "into",
        "using",
        "use",
        "should",
        "must",
        "will",
        "can",
        "we",
        "you",
        "i",
        "our",
        "your",
        "its",
        "their",
        "has",
        "have",
    ]
)
# Words that signal harder engineering work; the complexity heuristic counts them.
TECHNICAL_TERMS = frozenset(
    [
        "async",
        "await",
        "concurrency",
        "concurrent",
        "thread",
        "threads",
        "lock",
        "mutex",
        "distributed",
        "cluster",
        "cache",
        "caching",
        "database",
        "sql",
        "transaction",
        "transactions",
        "migration",
        "migrations",
        "schema",
        "index",
        "queue",
        "stream",
        "streaming",
        "websocket",
        "oauth",
        "jwt",
        "auth",
        "authentication",
        "authorization",
        "encryption",
        "security",
        "crypto",
        "kubernetes",
        "docker",
        "microservice",
        "microservices",
        "grpc",
        "graphql",
        "rest",
        "api",
        "parser",
        "compiler",
        "recursion",
        "recursive",
        "algorithm",
        "optimize",
        "optimization",
        "performance",
        "realtime",
        "real-time",
        "retry",
        "idempotent",
        "consistency",
        "replication",
        "sharding",
        "pagination",
        "validation",
        "serialization",
        "protocol",
        "scheduler",
        "pipeline",
        "etl",
        "ml",
        "model",
        "inference",
    ]
)
_REQUIREMENT_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.MULTILINE)
_MODAL = re.compile(r"\b(?:must|should|shall|needs? to|has to|required)\b", re.IGNORECASE)
# For ASCII text, _MODAL on the lower-cased text without IGNORECASE finds the same clauses, and
# when none of these words occurs it finds none: a substring test is ~50x cheaper than the
# case-insensitive search (12.8 us on a 550-character description). Non-ASCII text keeps
# _MODAL, whose Unicode case folding also matches e.g. "MU\u017fT".
_MODAL_LOWER = re.compile(_MODAL.pattern)
_MODAL_WORDS = ("must", "should", "shall", "need", "has to", "required")

Namespaces = dict[str, dict[str, float]]


class ContextRecord(msgspec.Struct, frozen=True):
    """The decision context as named raw values: the input of the batch models' table
    (:mod:`learners.tabular`). Logged with every decision, with the history known then."""

    task_type: str
    language: str
    framework: str | None
    agent: str | None
    objective: str
    description_words: int
    requirements: int
    technical_terms: int
    complexity: float
    rag_examples: int | None
    rag_similarity: float | None
    rag_quality: float | None
    hour: int
    weekday: int


class ContextFeatures(msgspec.Struct, frozen=True):
    """Logged features of one decision, by namespace."""

    namespaces: Namespaces
    complexity: float


def sanitize(token: str) -> str:
    """A feature-name-safe version of ``token``: word characters and ``.=+#/@-`` only (no
    whitespace, ``:``, ``|`` or control characters, which VW's text parser treats specially)."""
    if token.isascii() and token.isalnum():  # the usual name: nothing to strip or replace
        return token.lower()[:96]
    return _UNSAFE.sub("_", token.strip().lower())[:96] or "_"


def squash(value: float) -> float:
    """sign(v)·ln(1 + |v|), rounded to 6 decimals: free-form numbers of any scale (1e9 bytes,
    1e-200 noise) become well-conditioned features for SGD learners."""
    return round(math.copysign(math.log1p(abs(value)), value), 6)


def description_tokens(text: str, *, after: Sequence[str] = ()) -> list[str]:
    """Distinct lower-case word tokens of ``text`` in order of first use, without stopwords
    (at most ``MAX_DESCRIPTION_TOKENS``). ``after``, the tokens of a text that came before, makes
    this the tokens of that text followed by ``text`` without tokenising the first again."""
    seen: dict[str, None] = dict.fromkeys(after)
    if len(seen) >= MAX_DESCRIPTION_TOKENS:
        return list(seen)
    # The stripped matches in order of first use, then filtered: the same as stripping and
    # filtering each match in turn (a stripped token's first use is its earliest match), in
    # three C-level passes instead of a Python loop over the matches.
    stripped = dict.fromkeys([token.rstrip(".-") for token in _TOKEN.findall(text.lower())])
    new = [t for t in stripped if len(t) > 1 and t not in _STOPWORDS and t not in seen]
    return [*seen, *new][:MAX_DESCRIPTION_TOKENS]


def count_requirements(task: Task) -> int:
    """Explicit requirements: listed ones, bullet or numbered lines, and must/should clauses."""
    text = task.description
    if "\n" in text:
        lines = len(_REQUIREMENT_LINE.findall(text))
    else:  # one line: only its start can match
        lines = 0 if _REQUIREMENT_LINE.match(text) is None else 1
    return len(task.requirements) + lines + count_modal(text)


def count_modal(text: str) -> int:
    """Must/should clauses of ``text`` (case-insensitive), as ``len(_MODAL.findall(text))``."""
    if not text.isascii():
        return len(_MODAL.findall(text))
    lower = text.lower()
    if not any(word in lower for word in _MODAL_WORDS):
        return 0
    return len(_MODAL_LOWER.findall(lower))


def count_technical_terms(text: str) -> int:
    return technical_terms_in(description_tokens(text))


def technical_terms_in(tokens: Sequence[str]) -> int:
    return sum(1 for token in tokens if token in TECHNICAL_TERMS)


def task_tokens(task: Task) -> tuple[list[str], list[str]]:
    """The description's tokens, and those of the description followed by the requirements
    (what :func:`count_technical_terms` counts), tokenising each text once."""
    tokens = description_tokens(task.description)
    if not task.requirements:
        return tokens, tokens
    return tokens, description_tokens(" ".join(task.requirements), after=tokens)


def complexity_score(words: int, requirements: int, terms: int) -> float:
    """The complexity heuristic of :func:`estimate_complexity` from its three counts."""
    score = 1.0 + 1.6 * math.log1p(words / 15.0) + 0.45 * min(requirements, 8)
    score += 0.6 * min(terms, 6)
    return round(min(max(score, 0.0), 10.0), 3)


def estimate_complexity(task: Task) -> float:
    """Heuristic task complexity in [0, 10].

    ``1 + 1.6·ln(1 + words/15) + 0.45·min(requirements, 8) + 0.6·min(technical terms, 6)``,
    clipped to [0, 10]: a one-line request scores about 1-2, a multi-paragraph spec with many
    requirements and technical terms 8-10. It is a prior for cold start; trained complexity
    models replace it as soon as there is history.
    """
    words = len(task.description.split()) + sum(len(r.split()) for r in task.requirements)
    requirements = count_requirements(task)
    terms = count_technical_terms(task.description + " " + " ".join(task.requirements))
    return complexity_score(words, requirements, terms)


def context_record(
    context: DecisionContext, at: datetime, *, all_tokens: Sequence[str] | None = None
) -> ContextRecord:
    """Named raw values of ``context`` for a decision at ``at`` (hour and weekday in UTC).
    ``all_tokens``, the second list of :func:`task_tokens`, saves tokenising the text again."""
    task = context.task
    words = len(task.description.split())
    all_words = words + sum(len(r.split()) for r in task.requirements)
    requirements = count_requirements(task)
    if all_tokens is None:
        all_tokens = task_tokens(task)[1]
    terms = technical_terms_in(all_tokens)
    rag = context.caller.rag
    utc = at.astimezone(UTC) if at.tzinfo is not None else at
    return ContextRecord(
        task_type=task.type.lower(),
        language=task.language.lower(),
        framework=task.framework.lower() if task.framework else None,
        agent=context.caller.agent.lower() if context.caller.agent else None,
        objective=context.objective,
        description_words=words,
        requirements=requirements,
        technical_terms=terms,
        complexity=complexity_score(all_words, requirements, terms),
        rag_examples=None if rag is None else rag.examples,
        rag_similarity=None if rag is None else rag.avg_similarity,
        rag_quality=None if rag is None else rag.avg_quality,
        hour=utc.hour,
        weekday=utc.weekday(),
    )


def describe_context(
    context: DecisionContext, at: datetime
) -> tuple[ContextFeatures, ContextRecord]:
    """:func:`extract_features` and :func:`context_record` of one decision, sharing the text
    analysis (requirement and technical-term counts) instead of doing it twice."""
    tokens, all_tokens = task_tokens(context.task)
    record = context_record(context, at, all_tokens=all_tokens)
    return extract_features(context, record=record, tokens=tokens), record


def extract_features(
    context: DecisionContext,
    *,
    record: ContextRecord | None = None,
    tokens: Sequence[str] | None = None,
) -> ContextFeatures:
    """Features of ``context``; pure and independent of dict ordering. ``record``, the same
    context's :func:`context_record`, saves recounting requirements and technical terms;
    ``tokens``, its description's tokens, saves tokenising the description again."""
    task = context.task
    if record is None:
        complexity, requirements = estimate_complexity(task), count_requirements(task)
        words = len(task.description.split())
    else:
        complexity, requirements = record.complexity, record.requirements
        words = record.description_words
    task_ns: dict[str, float] = {
        f"type={sanitize(task.type)}": 1.0,
        f"lang={sanitize(task.language)}": 1.0,
        f"objective={sanitize(context.objective)}": 1.0,
        "complexity": complexity / 10.0,
        "log_words": math.log1p(words) / 8.0,
        "requirements": math.log1p(requirements) / 3.0,
    }
    if task.framework:
        task_ns[f"framework={sanitize(task.framework)}"] = 1.0
    caller_ns: dict[str, float] = {}
    caller = context.caller
    if caller.project_id:
        caller_ns[f"project={sanitize(caller.project_id)}"] = 1.0
    if caller.user_id:
        caller_ns[f"user={sanitize(caller.user_id)}"] = 1.0
    if caller.agent:
        caller_ns[f"agent={sanitize(caller.agent)}"] = 1.0
    if caller.rag is not None:
        rag = caller.rag
        caller_ns["rag_examples"] = math.log1p(rag.examples) / 3.0
        if rag.avg_similarity is not None:
            caller_ns["rag_similarity"] = rag.avg_similarity
        if rag.avg_quality is not None:
            caller_ns["rag_quality"] = rag.avg_quality / 10.0
    free_ns: dict[str, float] = {}
    for name, value in context.features.items():
        key = sanitize(name)
        if isinstance(value, bool):
            if value:
                free_ns[key] = 1.0
        elif isinstance(value, int | float):
            squashed = squash(float(value))
            if squashed != 0.0:
                free_ns[key] = squashed
        else:
            free_ns[f"{key}={sanitize(value)}"] = 1.0
    namespaces: Namespaces = {
        "task": task_ns,
        "description": dict.fromkeys(
            description_tokens(task.description) if tokens is None else tokens, 1.0
        ),
        "caller": caller_ns,
        "free": free_ns,
    }
    return ContextFeatures(
        namespaces={name: feats for name, feats in namespaces.items() if feats},
        complexity=complexity,
    )
