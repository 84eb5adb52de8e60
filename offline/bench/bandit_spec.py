"""Exploration variants of the service's VW policy, named compactly on benchmark command lines.

``vw`` is the configured ``[bandit]``; ``vw:METHOD[=VALUE][,FIELD=VALUE...]`` overrides it
with exploration ``METHOD``, ``VALUE`` setting the method's own parameter and each
``FIELD=VALUE`` any other field of :class:`BanditSettings`, ``interactions`` as terms joined
by ``+``::

    vw:epsilon=0.05   vw:squarecb=200   vw:cover=5   vw:bag=5   vw:softmax=10
    vw:regcbopt       vw:regcbopt=0.01  vw:bag=5,epsilon=0.1   vw:squarecb,learning_rate=1
    vw:squarecb,interactions=FM+TM+ML

``router bench-suite --router NAME=SPEC`` and ``router bench-real --policy`` take these names.
"""

from __future__ import annotations

from typing import get_args

import msgspec

from learners.bandit.settings import BanditSettings, Exploration

PREFIX = "vw"
# The parameter that ``METHOD=VALUE`` sets, per exploration method.
METHOD_PARAMETERS: dict[str, str] = {
    "epsilon": "epsilon",
    "squarecb": "gamma_scale",
    "cover": "cover_size",
    "bag": "bag_size",
    "softmax": "softmax_lambda",
    "regcbopt": "mellowness",
}
# The field a spec may not set: the exploration is the METHOD.
_FIXED_FIELDS = frozenset({"exploration"})
# Fields that hold a list, written as items joined by this.
_LIST_FIELDS = frozenset({"interactions"})
LIST_SEPARATOR = "+"


class BanditSpecError(ValueError):
    """A ``vw:...`` name that does not describe valid bandit settings."""


class BanditSpec(msgspec.Struct, frozen=True):
    """A parsed ``vw:...`` name: field overrides of the configured ``[bandit]``."""

    name: str
    overrides: tuple[tuple[str, str], ...] = ()

    def apply(self, base: BanditSettings) -> BanditSettings:
        """``base`` with the overrides, validated as the config file would be."""
        raw = msgspec.to_builtins(base)
        for field, value in self.overrides:
            raw[field] = value.split(LIST_SEPARATOR) if field in _LIST_FIELDS else value
        try:
            return msgspec.convert(raw, BanditSettings, strict=False)
        except msgspec.ValidationError as exc:
            raise BanditSpecError(f"{self.name!r}: {exc}") from exc


def is_bandit_spec(name: str) -> bool:
    """Whether ``name`` is ``vw`` or ``vw:...`` (rather than some other policy's name)."""
    return name == PREFIX or name.startswith(f"{PREFIX}:")


def parse_bandit_spec(name: str) -> BanditSpec:
    """Parse ``vw[:METHOD[=VALUE][,FIELD=VALUE...]]``; values are checked against the default
    settings here, so that a bad spec fails before any benchmark work starts."""
    if not is_bandit_spec(name):
        raise BanditSpecError(f"{name!r} is not a bandit spec: expected {PREFIX}:METHOD[=VALUE]")
    body = name.removeprefix(PREFIX).removeprefix(":")
    if not body:
        return BanditSpec(name=name)
    method, has_value, value = body.split(",")[0].partition("=")
    methods = get_args(Exploration)
    if method not in methods:
        raise BanditSpecError(f"{name!r}: unknown exploration {method!r}; known: "
                              f"{', '.join(methods)}")
    overrides: dict[str, str] = {"exploration": method}
    if has_value:
        overrides[METHOD_PARAMETERS[method]] = value
    settable = [f for f in msgspec.structs.fields(BanditSettings)
                if f.name not in _FIXED_FIELDS]
    for item in body.split(",")[1:]:
        field, has_value, value = item.partition("=")
        if field not in {f.name for f in settable} or not has_value:
            raise BanditSpecError(f"{name!r}: {item!r} is not FIELD=VALUE with FIELD one of "
                                  f"{', '.join(f.name for f in settable)}")
        if field in overrides:
            raise BanditSpecError(f"{name!r}: {field} is set twice")
        overrides[field] = value
    spec = BanditSpec(name=name, overrides=tuple(overrides.items()))
    spec.apply(BanditSettings())
    return spec
