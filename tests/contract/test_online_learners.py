"""The contract every online learner keeps (learners/protocol.py), run over every component
(tests/contract/learner_cases.py), in the manner of River's ``check_estimator``: a snapshot
restores identical answers and learning, the same seed gives the same learner, inputs are never
mutated, unseen and missing features are handled, and the order of names does not matter."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import numpy as np
import pytest

from learners.protocol import SnapshotError
from tests.contract.learner_cases import CASES, Learner, LearnerCase

FEATURED = [case for case in CASES if case.unseen is not None and case.missing is not None]
ORDERED = [case for case in CASES if case.reorder_query is not None]


def frozen(value: Any) -> Any:
    """A hashable, order-preserving image of ``value``: equal images mean equal values with
    mappings in the same order (so reordering an input in place counts as mutating it)."""
    if isinstance(value, msgspec.Struct):
        return (type(value).__name__,
                tuple(frozen(getattr(value, f)) for f in value.__struct_fields__))
    if isinstance(value, dict):
        return ("dict", tuple((key, frozen(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(frozen(item) for item in value))
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if hasattr(value, "__dict__"):  # e.g. ActionLines
        return (type(value).__name__, frozen(vars(value)))
    return value


def same(a: Any, b: Any) -> bool:
    """Equal answers (mappings compare regardless of order, arrays element-wise)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@contextmanager
def learners(case: LearnerCase, *seeds: int) -> Iterator[list[Learner]]:
    built = [case.build(seed) for seed in seeds]
    try:
        yield built
    finally:
        for learner in built:
            close = getattr(learner, "close", None)
            if close is not None:
                close()


def answers(learner: Learner, queries: list[Any]) -> list[Any]:
    return [learner.predict_one(query) for query in queries]


def learn(learner: Learner, events: list[Any]) -> None:
    for event in events:
        learner.learn_one(event)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_restored_snapshot_answers_and_learns_like_the_original(case: LearnerCase) -> None:
    events, queries = case.events(), case.queries()
    with learners(case, 7, 7, 7) as (original, restored, refused):
        fresh = answers(refused, queries)
        learn(original, events)
        restored.restore(original.snapshot())
        assert same(answers(restored, queries), answers(original, queries))
        for learner in (original, restored):  # the whole state came back, not only the answers
            learn(learner, events[: len(events) // 3])
        assert same(answers(restored, queries), answers(original, queries))
        with pytest.raises(SnapshotError):
            refused.restore(b"\x93not a snapshot")
        assert same(answers(refused, queries), fresh)  # a refused snapshot changes nothing


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_same_seed_and_events_give_the_same_learner(case: LearnerCase) -> None:
    events, queries = case.events(), case.queries()
    with learners(case, 11, 11) as (first, second):
        results = []
        # Different global generators: only the learner's own seed may matter.
        for global_seed, learner in ((1, first), (2, second)):
            random.seed(global_seed)
            np.random.seed(global_seed)
            learn(learner, events)
            results.append(answers(learner, queries))
        assert same(results[0], results[1])
        assert all(case.valid(answer) for answer in results[0])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_learning_and_predicting_never_mutate_the_input(case: LearnerCase) -> None:
    events, queries = case.events(), case.queries()
    inputs = [*events, *queries]
    for kind in (case.unseen, case.missing):
        if kind is not None:
            inputs.extend(kind())
    before = [frozen(value) for value in inputs]
    with learners(case, 3) as (learner,):
        learn(learner, events)
        answers(learner, queries)
        for kind in (case.unseen, case.missing):
            if kind is not None:
                event, query = kind()
                learner.predict_one(query)
                learner.learn_one(event)
                learner.predict_one(query)
    assert [frozen(value) for value in inputs] == before


@pytest.mark.parametrize("case", FEATURED, ids=str)
def test_unseen_and_missing_features_are_answered_and_learned(case: LearnerCase) -> None:
    events, queries = case.events(), case.queries()
    with learners(case, 5, 5) as (learner, copy):
        learn(learner, events)
        for kind in (case.unseen, case.missing):
            assert kind is not None
            event, query = kind()
            assert case.valid(learner.predict_one(query))
            learner.learn_one(event)  # a feature appearing or disappearing in the stream
            assert case.valid(learner.predict_one(query))
        assert all(case.valid(answer) for answer in answers(learner, queries))
        copy.restore(learner.snapshot())  # and the state with them still round-trips
        assert same(answers(copy, queries), answers(learner, queries))


@pytest.mark.parametrize("case", ORDERED, ids=str)
def test_answers_do_not_depend_on_the_order_of_names(case: LearnerCase) -> None:
    events, queries = case.events(), case.queries()
    reorder_query = case.reorder_query
    reorder_event = case.reorder_event or (lambda event: event)
    assert reorder_query is not None
    with learners(case, 9, 9) as (forward, backward):
        learn(forward, events)
        learn(backward, [reorder_event(event) for event in events])
        expected = answers(forward, queries)
        reordered = [reorder_query(query) for query in queries]
        assert frozen(reordered) != frozen(queries)  # the check reorders something
        assert same(answers(forward, reordered), expected)
        assert same(answers(backward, queries), expected)
        assert same(answers(backward, reordered), expected)
