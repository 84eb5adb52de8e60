"""Route requests from prompt text alone: what a real caller would send for these prompts.

The data's ``task`` family (mbpp, gsm8k, ...) is not a caller-visible field and is never used.
On the code subset every prompt really is Python code generation, so the task says so; on the
whole data set the task type comes from a documented heuristic of the text
(:func:`guess_task_type`).
"""

from __future__ import annotations

import re

from learners.context import MAX_DESCRIPTION_CHARS, DecisionContext, Task
from learners.features import ContextFeatures, extract_features
from offline.bench.realdata.data import Subset

CODE_TYPE = "code generation"
_CODE = re.compile(
    r"^\s*def \w+\(|\bwrite an? (?:python )?function\b", re.IGNORECASE | re.MULTILINE
)
_MATH = re.compile(r"\$[^$]+\$|\\frac|\\boxed|\\sqrt|\d\s*[-+*/^=]\s*\d")
_WORD_LIST = re.compile(r"^\s*\w+(?:\s*,\s*\w+){3,}\s*$")
LONG_PROMPT_CHARS = 800


def guess_task_type(prompt: str) -> str:
    """``code generation`` (a ``def`` signature or "write a function"), ``math`` (LaTeX or an
    arithmetic expression), ``word list`` (only comma-separated words), ``long context`` (over
    800 characters) or ``question``."""
    if _CODE.search(prompt):
        return CODE_TYPE
    if _MATH.search(prompt):
        return "math"
    if _WORD_LIST.match(prompt):
        return "word list"
    if len(prompt) > LONG_PROMPT_CHARS:
        return "long context"
    return "question"


def prompt_context(prompt: str, subset: Subset) -> DecisionContext:
    """The decision context of one prompt: task type and language, the prompt as description."""
    task_type = CODE_TYPE if subset == "code" else guess_task_type(prompt)
    language = "python" if task_type == CODE_TYPE else "text"
    description = prompt.strip()[:MAX_DESCRIPTION_CHARS] or "(empty prompt)"
    return DecisionContext(task=Task(type=task_type, language=language, description=description))


def prompt_features(prompts: list[str], subset: Subset) -> list[ContextFeatures]:
    """The service's features (:func:`learners.features.extract_features`) of each prompt."""
    return [extract_features(prompt_context(p, subset)) for p in prompts]
