"""River online models of an action's outcome in a context, updated on every outcome.

One River linear model per target over sparse crosses of the task and the action (model ×
task type, model × language, model × complexity, template × task type, template × complexity,
template × requirements, template × RAG, temperature × task type, the action itself; task
types, languages and agents as hash buckets, so the weights are bounded). River's
linear models keep their weights in a Rust ``VectorDict``: a prediction over ~10 crosses costs
about a microsecond, so a whole 160-action catalog is scored in a fraction of a millisecond.

- ``reward``: the reward in [0, 1] (squared loss): what a decision maximises;
- ``success``: P(approved) (logistic loss): for predictions, risk and drift;
- ``quality``: quality / 10 (squared loss), learned from outcomes that carry a quality;
- ``time``: log(generation time / the catalog's time estimate) (squared loss).
"""

from __future__ import annotations

import pickle
import zlib

import msgspec
from river import linear_model, optim

from learners.catalog import Action
from learners.features import ContextRecord
from learners.protocol import SnapshotError

# Task types, languages and agents are open vocabularies: each enters the crosses as one of this
# many hash buckets ([bandit] river_buckets), so the models hold a bounded number of weights
# (about 30 per bucket with the default catalog) whatever callers send. Two real values share a
# bucket with probability 1/buckets per pair.
CATEGORY_BUCKETS = 256


def category_bucket(value: str | None, buckets: int = CATEGORY_BUCKETS) -> int:
    """The bucket of an open-vocabulary value (task type, language, agent): a stable hash
    (the same in every process), so the weights of each cross stay at most ``buckets``."""
    return zlib.crc32(b"" if value is None else value.encode()) % buckets


def action_crosses(
    record: ContextRecord, action: Action, keys: tuple[int, int, int] | None = None
) -> dict[str, float]:
    """Sparse features of one (context, action) pair; complexity and counts are scaled to ~1.
    ``keys`` are the buckets of the record's task type, language and agent
    (:func:`context_buckets`; by default with ``CATEGORY_BUCKETS``)."""
    task_type, language, agent = context_buckets(record) if keys is None else keys
    model = action.model.name
    template = action.template.name
    complexity = record.complexity / 10.0
    requirements = min(record.requirements, 10) / 10.0
    rag = min(record.rag_examples or 0, 5) / 5.0 * (record.rag_similarity or 0.0)
    temperature = f"{action.temperature:g}"
    return {
        f"a={action.id}": 1.0,
        f"m={model}": 1.0,
        f"m={model}|t={task_type}": 1.0,
        f"m={model}|l={language}": 1.0,
        f"m={model}|c": complexity,
        f"tpl={template}|t={task_type}": 1.0,
        f"tpl={template}|c": complexity,
        f"tpl={template}|r": requirements,
        f"tpl={template}|rag": rag,
        f"tpl={template}|agent={agent}": 1.0,
        f"temp={temperature}|t={task_type}": 1.0,
        f"temp={temperature}|c": complexity,
    }


def context_buckets(
    record: ContextRecord, buckets: int = CATEGORY_BUCKETS
) -> tuple[int, int, int]:
    """The buckets of the record's task type, language and agent."""
    return (category_bucket(record.task_type, buckets),
            category_bucket(record.language, buckets), category_bucket(record.agent, buckets))


class RiverOutcome(msgspec.Struct, frozen=True):
    """The chosen action's outcome in the decision's context."""

    record: ContextRecord
    action: Action
    reward: float
    approved: bool


class RiverQuery(msgspec.Struct, frozen=True):
    """Actions to predict in one context."""

    record: ContextRecord
    actions: list[Action]


class OutcomeEstimates(msgspec.Struct, frozen=True):
    """Predicted reward (clipped to [0, 1]) and P(approved) of each queried action."""

    rewards: list[float]
    success: list[float]


class OnlineOutcomeModels:
    """River models of reward and success, learned on the chosen action's outcome."""

    def __init__(self, learning_rate: float = 0.05, buckets: int = CATEGORY_BUCKETS) -> None:
        self.learning_rate = learning_rate
        self.buckets = buckets
        self._reward = linear_model.LinearRegression(
            optimizer=optim.SGD(learning_rate), intercept_lr=learning_rate,
            intercept_init=0.5,
        )
        self._success = linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate))
        self._learned = 0

    @property
    def learned(self) -> int:
        """Outcomes learned so far."""
        return self._learned

    def predict_one(self, query: RiverQuery) -> OutcomeEstimates:
        reward = self._reward.predict_one
        success = self._success.predict_proba_one
        keys = context_buckets(query.record, self.buckets)
        crosses = [action_crosses(query.record, a, keys) for a in query.actions]
        return OutcomeEstimates(
            rewards=[min(max(reward(x), 0.0), 1.0) for x in crosses],  # type: ignore[no-untyped-call]
            success=[success(x).get(True, 0.5) for x in crosses],  # type: ignore[no-untyped-call]
        )

    def learn_one(self, event: RiverOutcome) -> None:
        x = action_crosses(event.record, event.action, context_buckets(event.record, self.buckets))
        self._reward.learn_one(x, event.reward)
        self._success.learn_one(x, event.approved)
        self._learned += 1

    def snapshot(self) -> bytes:
        """The River models pickled (they have no other format)."""
        return pickle.dumps((self._reward, self._success, self._learned),
                            protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, data: bytes) -> None:
        """Load a :meth:`snapshot`; ``data`` must be authenticated (learners.protocol)."""
        try:
            reward, success, learned = pickle.loads(data)
        except Exception as exc:
            raise SnapshotError(f"not a River outcome models snapshot: {exc}") from exc
        if not (isinstance(reward, linear_model.LinearRegression)
                and isinstance(success, linear_model.LogisticRegression)
                and isinstance(learned, int)):
            raise SnapshotError("not a River outcome models snapshot")
        self._reward, self._success, self._learned = reward, success, learned
