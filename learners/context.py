"""What is known at decision time: the task, the caller's context and free-form features.

These Structs are the request vocabulary shared by the service (which decodes them from JSON),
the simulator and the replay tools. Their size limits are part of the public contract
(README "Limits"): they bound the work one request can cause.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

MAX_DESCRIPTION_CHARS = 20_000
MAX_REQUIREMENTS = 50
MAX_REQUIREMENT_CHARS = 1_000
MAX_FEATURES = 256  # as many numeric names as a tenant's standardiser keeps (learners/scaling.py)
MAX_SHORT_CHARS = 128
MAX_FEATURE_VALUE_CHARS = 256
FINITE_LIMIT = 1e12
# Every stored string refuses NUL: PostgreSQL text columns and jsonb cannot hold it. (Lone
# surrogates never get this far: msgspec refuses them as malformed JSON.)
NO_NUL = r"^[^\x00]*$"

Short = Annotated[str, Meta(min_length=1, max_length=MAX_SHORT_CHARS, pattern=NO_NUL)]
OptionalShort = Annotated[str, Meta(max_length=MAX_SHORT_CHARS, pattern=NO_NUL)]
Finite = Annotated[float, Meta(ge=-FINITE_LIMIT, le=FINITE_LIMIT)]
FeatureName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
FeatureValue = (
    bool | Finite | Annotated[str, Meta(max_length=MAX_FEATURE_VALUE_CHARS, pattern=NO_NUL)]
)


class Task(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The generation task. Categories are an open vocabulary."""

    type: Short
    language: Short
    description: Annotated[
        str, Meta(min_length=1, max_length=MAX_DESCRIPTION_CHARS, pattern=NO_NUL)
    ]
    framework: OptionalShort | None = None
    requirements: Annotated[
        list[Annotated[str, Meta(max_length=MAX_REQUIREMENT_CHARS, pattern=NO_NUL)]],
        Meta(max_length=MAX_REQUIREMENTS),
    ] = []


class Rag(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Retrieval signals the caller attached to the prompt."""

    examples: Annotated[int, Meta(ge=0, le=10_000)] = 0
    avg_similarity: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    avg_quality: Annotated[float, Meta(ge=0.0, le=10.0)] | None = None


class CallerContext(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who is asking: project, user and the calling agent."""

    project_id: OptionalShort | None = None
    user_id: OptionalShort | None = None
    agent: OptionalShort | None = None
    rag: Rag | None = None


Features = Annotated[dict[FeatureName, FeatureValue], Meta(max_length=MAX_FEATURES)]


class DecisionContext(msgspec.Struct, frozen=True):
    """Everything the learners may look at when choosing an action."""

    task: Task
    caller: CallerContext = CallerContext()
    features: dict[str, bool | float | str] = {}
    objective: str = "balanced"
