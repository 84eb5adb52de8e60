"""The request behind each logged decision, for policies that decide from it.

From the event log it is what was logged with the decision (DESIGN.md rule 3: never
recomputed). From a history file (docs/learning.md) it is rebuilt the way
``router import`` rebuilds it: the same feature functions, and history features folded over
the file in decision-time order (:class:`offline.dataset.HistoryFold`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from learners.catalog import Catalog
from learners.features import ContextFeatures, ContextRecord, extract_features
from learners.history import HistoryFeatures
from offline.dataset import HistoryFold
from offline.history_file import HistoryFileError, HistoryRow, RawChunk, parse_row
from offline.replay.log import LogError

if TYPE_CHECKING:
    from offline.replay.queries import ReplayDecision
    from router.public import ShadowDecision


@dataclass(frozen=True)
class RowContext:
    """One decision's catalog, allowed actions (catalog indices) and features, and from the
    event log what each shadow policy would have done (``shadows``)."""

    catalog: Catalog
    allowed: Sequence[int]
    features: ContextFeatures
    record: ContextRecord | None
    history: HistoryFeatures | None
    shadows: Mapping[str, ShadowDecision] | None = None
    tenant_id: str = ""  # whose decision: its tenant's learner state decides it (bandit)
    # From the event log: the stored decision and outcome (its learn event, outcome number).
    logged: ReplayDecision | None = None


def new_fold(catalog: Catalog) -> HistoryFold:
    return HistoryFold(models=sorted(catalog.model_names), templates=sorted(catalog.template_names))


def file_contexts(raw: RawChunk, fold: HistoryFold, catalog: Catalog) -> list[RowContext]:
    """Contexts of a history-file chunk; the rows must be in decision-time order."""
    out: list[RowContext] = []
    for position, record in enumerate(raw.records()):
        where = raw.where(position)
        try:
            row = parse_row(record, where)
            context, context_rec, history = fold.step(row)
        except HistoryFileError as exc:
            raise LogError(f"{exc} (policies that decide from the request need the history "
                           f"file's context columns)") from exc
        except ValueError as exc:
            raise LogError(f"{where}: {exc}") from exc
        allowed = _allowed(row, catalog, where)
        if not allowed:
            raise LogError(f"{where}: the catalog allows no action for language "
                           f"{row.language!r}")
        out.append(RowContext(catalog=catalog, allowed=allowed,
                              features=extract_features(context, record=context_rec),
                              record=context_rec, history=history, tenant_id=row.tenant))
    return out


def _allowed(row: HistoryRow, catalog: Catalog, where: str) -> Sequence[int]:
    """The row's ``allowed`` actions (as ``router export`` writes them), else those the
    catalog allows for its language."""
    if not row.allowed:
        return catalog.indices_for_language(row.language)
    indices = []
    for action_id in row.allowed:
        action = catalog.get(action_id)
        if action is None:
            raise LogError(f"{where}: allowed action {action_id!r} is not in the catalog")
        indices.append(action.index)
    return indices
