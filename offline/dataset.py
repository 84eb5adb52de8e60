"""Training histories for the batch models, from the event log or from a history file.

(From the event log: :func:`router.storage.history.history_from_log`.) From a file,
:func:`history_from_rows` replays the rows in time order through the same
:class:`~learners.history.HistoryStats` the service folds: a row's history features include an
outcome only if that outcome was known (``HistoryRow.known_at``) strictly before the row's
decision time.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from datetime import datetime

from learners.batch.labels import OutcomeLabels
from learners.batch.training import History
from learners.catalog import Catalog, format_action_id
from learners.code_metrics import compute_code_metrics
from learners.context import CallerContext, DecisionContext, Rag, Task
from learners.features import ContextRecord, context_record
from learners.history import HistoryFeatures, HistoryQuery, HistoryStats, OutcomeFacts
from learners.reward import Verdict
from learners.tabular import ActionAttributes, TrainingExample
from offline.history_file import HistoryRow


def decision_context(row: HistoryRow) -> DecisionContext:
    """The route request a history row stands for."""
    rag = None
    if row.rag_examples is not None or row.rag_avg_similarity is not None:
        rag = Rag(examples=row.rag_examples or 0, avg_similarity=row.rag_avg_similarity,
                  avg_quality=row.rag_avg_quality)
    return DecisionContext(
        task=Task(type=row.task_type, language=row.language, description=row.description,
                  framework=row.framework, requirements=list(row.requirements)),
        caller=CallerContext(project_id=row.project_id, user_id=row.user_id, agent=row.agent,
                             rag=rag),
        features=dict(row.features),
        objective=row.objective,
    )


def action_attributes(model: str, temperature: float, template: str,
                      catalogs: Iterable[Catalog]) -> ActionAttributes:
    """The action's catalog attributes when a catalog knows it, else only its names."""
    action_id = format_action_id(model, temperature, template)
    for catalog in catalogs:
        action = catalog.get(action_id)
        if action is not None:
            return ActionAttributes.of(action)
    return ActionAttributes(model=model, template=template, temperature=temperature)


def row_labels(row: HistoryRow) -> OutcomeLabels:
    """The outcome of a history-file row (which has one: the reader requires it)."""
    if row.outcome is None:
        raise ValueError("outcome: a decision without an outcome has no labels")
    metrics = compute_code_metrics(row.code, row.language) if row.code else None
    return OutcomeLabels(verdict=row.outcome, quality=row.quality,
                         generation_time_s=row.generation_time_s,
                         regenerations=row.regenerations or 0, complexity_rating=row.complexity,
                         code_metrics=metrics, reward=row.reward)


class HistoryFold:
    """The service's history features for rows met in decision-time order: each row sees only
    outcomes known (``HistoryRow.known_at``) strictly before its decision.

    ``models`` and ``templates`` name the per-model and per-template summaries to report.
    ``shared=False`` keeps one history per tenant, as the service does when tenants do not share
    learning (``[learning] share_across_tenants``): a row's summaries then count only its own
    tenant's outcomes.
    """

    def __init__(self, models: Sequence[str], templates: Sequence[str], *,
                 shared: bool = True) -> None:
        self.models = tuple(models)
        self.templates = tuple(templates)
        self.shared = shared
        self._stats: dict[str, HistoryStats] = {}
        self._pending: list[tuple[datetime, int, OutcomeFacts]] = []
        self._seen = 0
        self._last: datetime | None = None

    def step(self, row: HistoryRow) -> tuple[DecisionContext, ContextRecord, HistoryFeatures]:
        """The row's request, context record and history; then remember its outcome."""
        at = row.decided_at()
        if self._last is not None and at < self._last:
            raise ValueError(f"timestamp {at.isoformat()} is earlier than the previous row's "
                             f"{self._last.isoformat()}: rows must be in decision-time order")
        self._last = at
        pending = self._pending
        while pending and pending[0][0] < at:
            facts = heapq.heappop(pending)[2]
            self._tenant_stats(facts.tenant_id).learn_one(facts)
        stats = self._tenant_stats(row.tenant)
        context = decision_context(row)
        record = context_record(context, at)
        history = stats.predict_one(HistoryQuery(
            tenant_id=row.tenant, task_type=record.task_type, language=record.language,
            project_id=row.project_id, agent=record.agent, models=self.models,
            templates=self.templates, at=at,
        ))
        stats.observe_decision(row.tenant, row.project_id, at)
        model, _, template = row.action_parts()
        facts = OutcomeFacts(
            tenant_id=row.tenant, decided_at=at, task_type=record.task_type,
            language=record.language, project_id=row.project_id, agent=record.agent,
            model=model, template=template, approved=row.outcome is Verdict.APPROVED,
            quality=row.quality,
        )
        heapq.heappush(pending, (row.known_at(), self._seen, facts))
        self._seen += 1
        return context, record, history

    def _tenant_stats(self, tenant_id: str) -> HistoryStats:
        key = "" if self.shared else tenant_id
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = HistoryStats()
        return stats


def history_from_rows(rows: Iterable[HistoryRow], catalogs: Iterable[Catalog], *,
                      summarised: Catalog | None = None, shared: bool = True) -> History:
    """Replay ``rows`` in decision-time order; each row's history holds only outcomes known
    strictly before its decision (of its own tenant unless ``shared``: :class:`HistoryFold`).
    The per-model and per-template summaries are those of ``summarised``'s models and
    templates, as the service logs them (default: the models and templates the rows name)."""
    ordered = sorted(rows, key=lambda r: r.decided_at())
    catalog_list = list(catalogs)
    if summarised is not None:
        models, templates = summarised.model_order, summarised.template_order
    else:
        models = tuple(sorted({r.action_parts()[0] for r in ordered}))
        templates = tuple(sorted({r.action_parts()[2] for r in ordered}))
    fold = HistoryFold(models=models, templates=templates, shared=shared)
    examples: list[TrainingExample] = []
    labels: list[OutcomeLabels] = []
    times: list[datetime] = []
    for row in ordered:
        _, record, history = fold.step(row)
        model, temperature, template = row.action_parts()
        examples.append(TrainingExample(
            context=record, history=history,
            action=action_attributes(model, temperature, template, catalog_list)))
        labels.append(row_labels(row))
        times.append(row.decided_at())
    return History(examples=examples, labels=labels, times=times)
