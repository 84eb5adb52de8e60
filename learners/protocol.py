"""The one interface of every online learner the policy folds outcomes into.

Each online component of :class:`~learners.policy.OnlinePolicy` (the VW bandit, the River
outcome models, the stacker, the outcome statistics, the history aggregates, the drift monitor
and the feature scaler) learns one typed event at a time, answers one typed query, and turns
its learned state into bytes and back. Its event, query and answer types are its own (a drift
monitor answers with alarms, a scaler with scaled features), so the protocol is generic over
them; what is shared is the verbs, and the contract suite in ``tests/contract/`` runs the same
checks over every component through them (River's ``check_estimator`` is the model).

A snapshot holds learned state only: :meth:`OnlineLearner.restore` loads it into a learner
built with the same hyper-parameters. Components whose state holds River objects serialise them
with pickle; their snapshots must only come from a source already authenticated (the policy's
snapshot is sealed: :mod:`learners.sealed`), like every pickle.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

EventT = TypeVar("EventT", contravariant=True)
QueryT = TypeVar("QueryT", contravariant=True)
AnswerT = TypeVar("AnswerT", covariant=True)


class SnapshotError(ValueError):
    """Bytes that are not a snapshot of this kind of learner."""


class OnlineLearner(Protocol[EventT, QueryT, AnswerT]):
    """Learns one event at a time, answers queries, snapshots and restores its state.

    ``learn_one`` and ``predict_one`` never mutate their input, and an answer never depends on
    the order of a mapping in the input (tests/contract/)."""

    def learn_one(self, event: EventT) -> None:
        """Fold in one event (in log order)."""
        ...

    def predict_one(self, query: QueryT) -> AnswerT:
        """The answer to ``query`` from the state learned so far (read-only)."""
        ...

    def snapshot(self) -> bytes:
        """The learned state as bytes."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the learned state with a :meth:`snapshot` of a learner with the same
        hyper-parameters; raises :class:`SnapshotError` (state untouched) for other bytes."""
        ...
