"""History rows: a logged decision with its outcome as one row of a history file.

:class:`HistoryRow` is the history-file schema (README "History files"; :mod:`offline.history_file`
reads and writes the files). :func:`history_row` is the one way a stored decision becomes a row:
``router export`` and retention's archive files (:mod:`router.storage.archive`) both select
:data:`HISTORY_COLUMNS` and call it, so an archive file holds what an export of the same
decisions holds, and :func:`history_table` is the Parquet form both write.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from msgspec import Meta
from sqlalchemy import Row

from learners.catalog import ACTION_SEPARATOR, Catalog
from learners.context import MAX_DESCRIPTION_CHARS, CallerContext, Features, Task
from learners.reward import Verdict
from router.storage.models import Decision, Outcome
from router.storage.records import as_utc

if TYPE_CHECKING:
    import pyarrow as pa


class UnknownCatalogError(LookupError):
    """A decision names a catalog fingerprint the event log does not hold."""


class HistoryRow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                 omit_defaults=True):
    """One decision with its outcome: the columns of a history file, in file order.

    ``outcome`` is empty only in retention's ``unanswered/`` archive files (decisions that never
    got one, their outcome columns all empty); a history file's reader requires it.
    """

    timestamp: datetime
    task_type: Annotated[str, Meta(min_length=1, max_length=128)]
    language: Annotated[str, Meta(min_length=1, max_length=128)]
    description: Annotated[str, Meta(min_length=1, max_length=MAX_DESCRIPTION_CHARS)]
    outcome: Verdict | None = None
    action: str | None = None
    model: str | None = None
    temperature: Annotated[float, Meta(ge=0.0, le=2.0)] | None = None
    template: str | None = None
    framework: str | None = None
    requirements: list[str] = []
    project_id: str | None = None
    user_id: str | None = None
    agent: str | None = None
    rag_examples: Annotated[int, Meta(ge=0)] | None = None
    rag_avg_similarity: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    rag_avg_quality: Annotated[float, Meta(ge=0.0, le=10.0)] | None = None
    features: Features = {}
    objective: str = "balanced"
    tenant: str = "default"
    decision_id: str | None = None
    propensity: Annotated[float, Meta(gt=0.0, le=1.0)] | None = None
    allowed: list[str] = []
    probabilities: list[Annotated[float, Meta(ge=0.0, le=1.0)]] = []
    quality: Annotated[float, Meta(ge=0.0, le=10.0)] | None = None
    generation_time_s: Annotated[float, Meta(ge=0.0)] | None = None
    cost_usd: Annotated[float, Meta(ge=0.0)] | None = None
    tokens: Annotated[int, Meta(ge=0)] | None = None
    # 0 when a file leaves it out; empty only without an outcome.
    regenerations: Annotated[int, Meta(ge=0)] | None = 0
    code: str | None = None
    complexity: Annotated[float, Meta(ge=0.0, le=10.0)] | None = None
    reward: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    feedback_timestamp: datetime | None = None

    def decided_at(self) -> datetime:
        return _utc(self.timestamp)

    def known_at(self) -> datetime:
        """When the outcome became known (never before the decision)."""
        if self.feedback_timestamp is not None:
            return max(_utc(self.feedback_timestamp), self.decided_at())
        return self.decided_at() + timedelta(seconds=self.generation_time_s or 0.0)

    def action_parts(self) -> tuple[str, float, str]:
        """(model, temperature, template) from ``action`` or the three separate fields."""
        if self.action is not None:
            parts = self.action.split(ACTION_SEPARATOR)
            if len(parts) != 3:
                raise ValueError("action: expected 'model|temperature|template'")
            try:
                return parts[0], float(parts[1]), parts[2]
            except ValueError as exc:
                raise ValueError(f"action: temperature {parts[1]!r} is not a number") from exc
        if self.model is None or self.temperature is None or self.template is None:
            raise ValueError("action: give 'action' or all of 'model', 'temperature', 'template'")
        return self.model, self.temperature, self.template

    def check_logged_vector(self, action_id: str) -> None:
        """``allowed`` holds the chosen action (``action_id``) and ``probabilities``, when
        given, one value per allowed action."""
        if self.probabilities and not self.allowed:
            raise ValueError("probabilities: given without 'allowed'")
        if self.allowed and action_id not in self.allowed:
            raise ValueError(f"allowed: lacks the chosen action {action_id!r}")
        if self.probabilities and len(self.probabilities) != len(self.allowed):
            raise ValueError(f"probabilities: {len(self.probabilities)} values for "
                             f"{len(self.allowed)} allowed actions")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class LoggedRequest(msgspec.Struct, frozen=True):
    """The parts of a logged route request that a history row keeps (other keys ignored)."""

    task: Task
    context: CallerContext = CallerContext()
    features: Features = {}
    source_decision_id: str | None = None  # set by ``router import``


# What :func:`history_row` reads: a decision's columns and, outer-joined, its outcome's.
HISTORY_COLUMNS = (
    Decision.id, Decision.created_at, Decision.tenant_id, Decision.objective, Decision.request,
    Decision.catalog_fingerprint, Decision.allowed, Decision.probabilities,
    Decision.chosen_action, Decision.propensity, Outcome.created_at.label("feedback_at"),
    Outcome.verdict, Outcome.quality, Outcome.generation_time_s, Outcome.cost_usd,
    Outcome.tokens, Outcome.regenerations, Outcome.code, Outcome.complexity, Outcome.reward,
)


def catalog_action_ids(catalogs: Mapping[str, Catalog]) -> dict[str, tuple[str, ...]]:
    """Each catalog's action ids in index order, by fingerprint (an id is formatted on each
    access, and a row lists every allowed action)."""
    return {fingerprint: tuple(action.id for action in catalog.actions)
            for fingerprint, catalog in catalogs.items()}


def history_row(row: Row[Any], action_ids: Mapping[str, Sequence[str]]) -> HistoryRow:
    """A decision selected with :data:`HISTORY_COLUMNS` as a history row.

    ``action_ids``: each catalog's action ids by fingerprint (:func:`catalog_action_ids`), to
    name the allowed actions. ``decision_id`` is the one the decision was logged under (for an
    imported decision, the id its file gave it). A decision without an outcome (``verdict``
    empty) gets every outcome column empty.
    """
    request = msgspec.convert(row.request, LoggedRequest)
    task, caller = request.task, request.context
    rag = caller.rag
    ids = action_ids.get(row.catalog_fingerprint)
    if ids is None:
        raise UnknownCatalogError(f"decision {row.id}: unknown catalog {row.catalog_fingerprint}")
    answered = row.verdict is not None
    return HistoryRow(
        timestamp=as_utc(row.created_at), task_type=task.type, language=task.language,
        description=task.description, outcome=Verdict(row.verdict) if answered else None,
        action=row.chosen_action, framework=task.framework, requirements=list(task.requirements),
        project_id=caller.project_id, user_id=caller.user_id, agent=caller.agent,
        rag_examples=None if rag is None else rag.examples,
        rag_avg_similarity=None if rag is None else rag.avg_similarity,
        rag_avg_quality=None if rag is None else rag.avg_quality,
        features=dict(request.features), objective=row.objective, tenant=row.tenant_id,
        decision_id=request.source_decision_id or row.id, propensity=row.propensity,
        allowed=[ids[k] for k in row.allowed], probabilities=list(row.probabilities),
        quality=row.quality, generation_time_s=row.generation_time_s, cost_usd=row.cost_usd,
        tokens=row.tokens, regenerations=row.regenerations if answered else None,
        code=row.code, complexity=row.complexity, reward=row.reward,
        feedback_timestamp=as_utc(row.feedback_at) if answered else None)


# --- tabular form (CSV cells, Parquet columns) ----------------------------------------------

_JSON = msgspec.json.Encoder()
_NUMBERS = ("temperature", "rag_avg_similarity", "rag_avg_quality", "propensity", "quality",
            "generation_time_s", "cost_usd", "complexity", "reward")
_INTEGERS = ("rag_examples", "tokens", "regenerations")
# The columns that are neither numbers nor integers (lists and ``features`` included).
TEXT_COLUMNS = tuple(name for name in HistoryRow.__struct_fields__
                     if name not in _NUMBERS and name not in _INTEGERS)


def parquet_schema() -> pa.Schema:
    """Every :class:`HistoryRow` column: numbers and lists typed, the rest text."""
    import pyarrow as pa

    types = {"requirements": pa.list_(pa.string()), "allowed": pa.list_(pa.string()),
             "probabilities": pa.list_(pa.float64())}
    types |= dict.fromkeys(_NUMBERS, pa.float64()) | dict.fromkeys(_INTEGERS, pa.int64())
    return pa.schema([(name, types.get(name, pa.string()))
                      for name in HistoryRow.__struct_fields__])


# One cell of a history file: text, a number, a list (Parquet) or missing.
HistoryCell = str | float | list[str] | list[float] | None


def row_cells(row: HistoryRow, *, csv_cells: bool) -> list[HistoryCell]:
    """``row``'s cells in column order: times as ISO 8601 text, ``features`` as JSON text
    (empty: missing), and in CSV the lists as JSON text and missing values as empty cells."""
    cells: list[HistoryCell] = []
    for name in HistoryRow.__struct_fields__:
        value = getattr(row, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Verdict):
            value = value.value
        elif name == "features":
            value = _JSON.encode(value).decode() if value else None
        elif isinstance(value, list) and csv_cells:
            value = json.dumps(value) if value or name == "requirements" else None
        if csv_cells:
            value = "" if value is None else repr(value) if isinstance(value, float) else value
        cells.append(value)
    return cells


def history_table(rows: Sequence[HistoryRow],
                  metadata: Mapping[str, str] | None = None) -> pa.Table:
    """``rows`` as a Parquet-ready table of :func:`parquet_schema` (``metadata``: the schema's
    key-value metadata)."""
    import pyarrow as pa

    schema = parquet_schema()
    if metadata:
        schema = schema.with_metadata(dict(metadata))
    columns = zip(*(row_cells(row, csv_cells=False) for row in rows), strict=True)
    arrays = [list(column) for column in columns] or [[] for _ in schema.names]
    return pa.Table.from_arrays(arrays, schema=schema)
