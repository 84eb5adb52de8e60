"""Context features that have been the same in every learned outcome, kept from the bandit.

A feature that every context so far has carried with the same value (a classification set's
constant task type, language and description; an ``objective`` no caller changes) says nothing
about which action is better. Crossed with the action namespaces it is one more copy of each
action's bias, and VW's normalised update shares each step among the features of the example,
so a few dozen such copies took most of every update from the features that vary: on the
suite's classification sets the bandit learned the context's effect far slower than with the
constant features left out (docs/learning.md, "Context features").

:class:`ConstantFeatures` is the intersection, over the learned outcomes, of their features
with their values (every feature before the first outcome). :meth:`ConstantFeatures.drop`
leaves out a feature whose value is the one in the intersection. The intersection only
shrinks, and it only loses features that the learned context does not carry with that value,
so learning an outcome never changes how its own context is represented; a feature that starts
to vary enters other contexts with weights it has never been updated with (zero, unless its
hash meets another weight). Part of the learner state, a fold over outcomes like the bandit.
"""

from __future__ import annotations

import msgspec

from learners.features import Namespaces
from learners.protocol import SnapshotError


class ConstantState(msgspec.Struct, frozen=True, array_like=True):
    """A :class:`ConstantFeatures`' learned state, as checkpoints hold it (msgpack)."""

    learned: bool  # False: no outcome yet, every feature counts as constant
    features: list[tuple[str, str, float]]  # namespace, name, value


class ConstantQuery(msgspec.Struct, frozen=True, array_like=True):
    """A context's features as logged (``raw``) and as the bandit would see them (``seen``,
    e.g. standardised): the answer is ``seen`` without the features whose raw value is the
    constant one."""

    raw: Namespaces
    seen: Namespaces


class ConstantFeatures:
    """Features with one value in every learned outcome (see the module docstring); an
    :class:`~learners.protocol.OnlineLearner` of logged namespaces."""

    def __init__(self) -> None:
        self._constant: dict[str, dict[str, float]] | None = None  # None: no outcome yet

    def learn_one(self, namespaces: Namespaces) -> None:
        """Fold in the (logged, untransformed) features of one learned outcome."""
        if self._constant is None:
            self._constant = {name: dict(features) for name, features in namespaces.items()}
            return
        kept: dict[str, dict[str, float]] = {}
        for namespace, constant in self._constant.items():
            features = namespaces.get(namespace, {})
            same = {k: v for k, v in constant.items() if features.get(k) == v}
            if same:
                kept[namespace] = same
        self._constant = kept

    def predict_one(self, query: ConstantQuery) -> Namespaces:
        return self.drop(query.raw, query.seen)

    def drop(self, raw: Namespaces, seen: Namespaces) -> Namespaces:
        """``seen`` (``raw`` as the bandit sees it, e.g. standardised) without the features
        whose raw value is the constant one; ``seen`` itself when nothing is dropped."""
        constant = self._constant
        if constant is None:
            return {}
        out: Namespaces | None = None
        for namespace, values in constant.items():
            features = seen.get(namespace)
            if not features:
                continue
            original = raw.get(namespace, {})
            dropped = {k for k in features if k in values and original.get(k) == values[k]}
            if dropped:
                if out is None:
                    out = dict(seen)
                rest = {k: v for k, v in features.items() if k not in dropped}
                if rest:
                    out[namespace] = rest
                else:
                    del out[namespace]
        return seen if out is None else out

    def snapshot(self) -> bytes:
        """The learned intersection as msgpack (:class:`ConstantState`)."""
        constant = self._constant
        return msgspec.msgpack.encode(ConstantState(
            learned=constant is not None,
            features=[(namespace, name, value) for namespace, values in (constant or {}).items()
                      for name, value in sorted(values.items())]))

    def restore(self, data: bytes) -> None:
        try:
            state = msgspec.msgpack.decode(data, type=ConstantState)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise SnapshotError(f"not a constant-features snapshot: {exc}") from exc
        constant: dict[str, dict[str, float]] | None = None
        if state.learned:
            constant = {}
            for namespace, name, value in state.features:
                constant.setdefault(namespace, {})[name] = value
        self._constant = constant
