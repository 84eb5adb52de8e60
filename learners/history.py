"""Historical features computed from the outcome log, maintained incrementally.

:class:`HistoryStats` is a fold over outcomes (DESIGN.md rule 2): every outcome updates a few
windowed aggregates in O(1), and a route call reads them in O(1) — it never scans the log. At
decision time the features therefore contain only outcomes that were known (learned) before the
decision; they are logged with the decision, so training and replay use exactly those values.

Aggregates, each over the most recent :data:`WINDOW` outcomes of its key:

- similar tasks: same task type and language;
- each model, each template (success rate and mean quality);
- each agent and each project of a tenant (success rate; agents also mean quality).

Success means the outcome was ``approved``. Project maturity is the number of days since the
project's first decision, from :meth:`HistoryStats.observe_decision` (route calls and the
decisions of folded outcomes) and from the log at start-up.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from datetime import datetime

import msgspec

WINDOW = 200
MAX_KEYS = 50_000  # per kind; the least recently updated keys are forgotten beyond this
SECONDS_PER_DAY = 86_400.0


class RateSummary(msgspec.Struct, frozen=True, array_like=True):
    """Success rate and mean quality over a key's recent window (``None`` without data)."""

    success: float | None
    quality: float | None
    n: int


EMPTY = RateSummary(success=None, quality=None, n=0)


class HistoryFeatures(msgspec.Struct, frozen=True):
    """History known at one decision: logged with it, used by training, serving and replay."""

    similar: RateSummary
    project: RateSummary
    agent: RateSummary
    models: dict[str, RateSummary]
    templates: dict[str, RateSummary]
    project_age_days: float | None


class _Window:
    """The last ``WINDOW`` outcomes of one key with exact running sums."""

    __slots__ = ("qualities", "success_sum", "successes")

    def __init__(self) -> None:
        self.successes: deque[int] = deque(maxlen=WINDOW)
        # One entry per outcome (None without a score), so the quality mean covers the same
        # outcomes as the success rate.
        self.qualities: deque[float | None] = deque(maxlen=WINDOW)
        self.success_sum = 0

    def add(self, success: bool, quality: float | None) -> None:
        if len(self.successes) == WINDOW:
            self.success_sum -= self.successes[0]
        self.successes.append(int(success))
        self.success_sum += int(success)
        self.qualities.append(quality)

    def summary(self) -> RateSummary:
        n = len(self.successes)
        if n == 0:
            return EMPTY
        scores = [q for q in self.qualities if q is not None]
        quality = math.fsum(scores) / len(scores) if scores else None
        return RateSummary(success=self.success_sum / n, quality=quality, n=n)


class _Keyed:
    """Windows by key, bounded to ``MAX_KEYS`` (least recently updated forgotten first)."""

    def __init__(self) -> None:
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self._summaries: dict[str, RateSummary] = {}

    def add(self, key: str, success: bool, quality: float | None) -> None:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
            if len(self._windows) > MAX_KEYS:
                old, _ = self._windows.popitem(last=False)
                self._summaries.pop(old, None)
        else:
            self._windows.move_to_end(key)
        window.add(success, quality)
        self._summaries[key] = window.summary()

    def get(self, key: str) -> RateSummary:
        return self._summaries.get(key, EMPTY)


class OutcomeFacts(msgspec.Struct, frozen=True):
    """What one outcome contributes to history: its decision's keys and its result."""

    tenant_id: str
    decided_at: datetime
    task_type: str
    language: str
    project_id: str | None
    agent: str | None
    model: str
    template: str
    approved: bool
    quality: float | None


def _similar_key(task_type: str, language: str) -> str:
    return f"{task_type.lower()}\x00{language.lower()}"


def _tenant_key(tenant_id: str, name: str) -> str:
    return f"{tenant_id}\x00{name}"


class HistoryStats:
    """Windowed outcome aggregates by similar task, model, template, agent and project."""

    def __init__(self) -> None:
        self._similar = _Keyed()
        self._models = _Keyed()
        self._templates = _Keyed()
        self._agents = _Keyed()
        self._projects = _Keyed()
        self._first_seen: dict[str, datetime] = {}
        # The per-model and per-template summaries of the last catalog asked for, until the
        # next outcome: every decision reads all of them, and only an outcome changes them.
        self._catalog_summaries: tuple[
            tuple[str, ...], tuple[str, ...], dict[str, RateSummary], dict[str, RateSummary]
        ] | None = None

    def __getstate__(self) -> dict[str, object]:
        """Pickled without the summaries cache (checkpoints hold learned state only)."""
        return {k: v for k, v in self.__dict__.items() if k != "_catalog_summaries"}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._catalog_summaries = None

    def observe_decision(self, tenant_id: str, project_id: str | None, at: datetime) -> None:
        """Record that ``project_id`` had a decision at ``at`` (keeps the earliest)."""
        if project_id is None:
            return
        key = _tenant_key(tenant_id, project_id)
        seen = self._first_seen.get(key)
        if seen is None or at < seen:
            self._first_seen[key] = at

    def learn_one(self, facts: OutcomeFacts) -> None:
        """Fold in one outcome (in log order)."""
        ok, quality = facts.approved, facts.quality
        self._catalog_summaries = None
        self._similar.add(_similar_key(facts.task_type, facts.language), ok, quality)
        self._models.add(facts.model, ok, quality)
        self._templates.add(facts.template, ok, quality)
        if facts.agent:
            self._agents.add(_tenant_key(facts.tenant_id, facts.agent), ok, quality)
        if facts.project_id:
            self._projects.add(_tenant_key(facts.tenant_id, facts.project_id), ok, quality)
        self.observe_decision(facts.tenant_id, facts.project_id, facts.decided_at)

    def features(
        self,
        *,
        tenant_id: str,
        task_type: str,
        language: str,
        project_id: str | None,
        agent: str | None,
        models: tuple[str, ...],
        templates: tuple[str, ...],
        at: datetime,
    ) -> HistoryFeatures:
        """History as known now, for a decision at ``at`` (read-only, O(models + templates)
        after an outcome, O(1) otherwise). Decisions between two outcomes share the ``models``
        and ``templates`` dicts: treat them as read-only."""
        cached = self._catalog_summaries
        if cached is None or cached[0] is not models or cached[1] is not templates:
            cached = self._catalog_summaries = (
                models,
                templates,
                {name: self._models.get(name) for name in models},
                {name: self._templates.get(name) for name in templates},
            )
        age: float | None = None
        if project_id:
            seen = self._first_seen.get(_tenant_key(tenant_id, project_id))
            age = 0.0 if seen is None else max((at - seen).total_seconds(), 0.0) / SECONDS_PER_DAY
        return HistoryFeatures(
            similar=self._similar.get(_similar_key(task_type, language)),
            project=self._projects.get(_tenant_key(tenant_id, project_id)) if project_id else EMPTY,
            agent=self._agents.get(_tenant_key(tenant_id, agent)) if agent else EMPTY,
            models=cached[2],
            templates=cached[3],
            project_age_days=None if age is None else round(age, 4),
        )
