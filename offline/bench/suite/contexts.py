"""Requests as a real caller sends them, with the attributes the suite's worlds reward on.

Every context carries a task (type, language, a description that varies in wording and
length, sometimes a framework and requirements), a caller (project, user, agent, sometimes RAG
signals) and free ``features``: numeric (``files_touched``, ``diff_lines``), categorical
(``repo_tier``), boolean (``has_ci``) and, in a small share of requests, the rare flag
``legacy_mainframe``. The worlds (:mod:`offline.bench.suite.worlds`) compute expected rewards
from the same attributes, kept here as arrays so that a whole stream is scored at once.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import numpy.typing as npt

from learners.context import CallerContext, DecisionContext, Rag, Task

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

TASK_TYPES = ("backend", "frontend", "data", "devops", "algorithm", "testing", "refactor")
LANGUAGES = ("python", "typescript", "go", "java", "sql", "rust")
REPO_TIERS = ("startup", "enterprise", "open-source")
AGENTS = ("implementation", "review", "testing", "migration")
RARE_FEATURE = "legacy_mainframe"
_FRAMEWORKS = {"python": ("fastapi", "django", "pandas"), "typescript": ("react", "nestjs"),
               "go": ("gin", "grpc-go"), "java": ("spring", "quarkus"), "sql": ("dbt",),
               "rust": ("tokio", "axum")}
_OBJECTS = ("the billing service", "a customer export", "the login form", "an audit log",
            "a retry policy", "the search index", "a pagination helper", "the config loader",
            "a metrics exporter", "the upload handler", "a date parser", "the cache layer")
_VERBS = {"backend": "Implement", "frontend": "Build", "data": "Write a pipeline for",
          "devops": "Automate", "algorithm": "Design an algorithm for",
          "testing": "Write tests for", "refactor": "Refactor"}
_DETAILS = ("It must handle concurrent requests.", "Keep the public interface stable.",
            "Errors should be reported with context.", "Large inputs must stream.",
            "Follow the existing naming conventions.", "It should be idempotent.",
            "Add structured logging.", "Support pagination and filtering.")
_REQUIREMENTS = ("validate all inputs", "cover edge cases with tests", "avoid global state",
                 "keep latency under 100 ms", "be backwards compatible")


class ContextDraws(msgspec.Struct, frozen=True):
    """A stream of contexts and, aligned with it, the attributes worlds reward on."""

    contexts: list[DecisionContext]
    task_type: IntArray  # index into TASK_TYPES
    language: IntArray  # index into LANGUAGES
    tier: IntArray  # index into REPO_TIERS
    size: FloatArray  # in [0, 1]: how big the change is (from files_touched and diff_lines)
    rare: BoolArray  # the rare flag is set

    def __len__(self) -> int:
        return len(self.contexts)


def draw_contexts(n: int, rng: np.random.Generator, *, rare_rate: float = 0.05) -> ContextDraws:
    """``n`` contexts drawn with ``rng``; about ``rare_rate`` of them carry the rare flag."""
    type_weights = np.array([0.24, 0.17, 0.14, 0.08, 0.12, 0.11, 0.14])
    task_type = rng.choice(len(TASK_TYPES), size=n, p=type_weights / type_weights.sum())
    language = rng.choice(len(LANGUAGES), size=n, p=[0.35, 0.25, 0.12, 0.12, 0.1, 0.06])
    tier = rng.choice(len(REPO_TIERS), size=n, p=[0.45, 0.35, 0.2])
    files = 1 + rng.poisson(2.5, size=n)
    lines = np.round(rng.lognormal(4.0, 1.0, size=n), 0)
    # Change size: half from files, half from diff lines, each squashed into [0, 1].
    size = 0.5 * np.minimum(np.log(files) / math.log(12.0), 1.0) + 0.5 * np.minimum(
        np.log1p(lines) / math.log(2000.0), 1.0)
    rare = rng.random(n) < rare_rate
    has_ci = rng.random(n) < 0.6
    contexts = [
        _context(rng, TASK_TYPES[int(task_type[i])], LANGUAGES[int(language[i])],
                 REPO_TIERS[int(tier[i])], int(files[i]), float(lines[i]), bool(has_ci[i]),
                 bool(rare[i]))
        for i in range(n)
    ]
    return ContextDraws(contexts=contexts, task_type=task_type.astype(np.int64),
                        language=language.astype(np.int64), tier=tier.astype(np.int64),
                        size=size.astype(np.float64), rare=rare)


def _context(rng: np.random.Generator, kind: str, language: str, tier: str, files: int,
             lines: float, has_ci: bool, rare: bool) -> DecisionContext:
    frameworks = _FRAMEWORKS[language]
    framework = frameworks[int(rng.integers(len(frameworks)))] if rng.random() < 0.7 else None
    subject = _OBJECTS[int(rng.integers(len(_OBJECTS)))]
    sentences = [f"{_VERBS[kind]} {subject} in {language}."]
    for j in rng.choice(len(_DETAILS), size=int(rng.integers(0, 4)), replace=False):
        sentences.append(_DETAILS[int(j)])
    requirements = [_REQUIREMENTS[int(j)] for j in
                    rng.choice(len(_REQUIREMENTS), size=int(rng.integers(0, 3)), replace=False)]
    features: dict[str, bool | float | str] = {
        "files_touched": float(files), "diff_lines": lines, "repo_tier": tier, "has_ci": has_ci}
    if rare:
        features[RARE_FEATURE] = True
    examples = int(rng.poisson(2.0))
    rag = (Rag(examples=examples, avg_similarity=round(float(rng.beta(4, 3)), 3))
           if examples and rng.random() < 0.5 else None)
    caller = CallerContext(project_id=f"proj-{int(rng.integers(25)):02d}",
                           user_id=f"user-{int(rng.integers(80)):02d}",
                           agent=AGENTS[int(rng.integers(len(AGENTS)))], rag=rag)
    task = Task(type=kind, language=language, description=" ".join(sentences),
                framework=framework, requirements=requirements)
    return DecisionContext(task=task, caller=caller, features=features)
