"""``vw:...`` bandit specs, the names benchmark command lines give exploration variants of the
configured ``[bandit]`` (``router bench-suite --router``, ``router bench-real --policy``)."""

from __future__ import annotations

import re
from typing import get_args

import msgspec
import pytest

from learners.bandit.settings import BanditSettings, Exploration, vw_arguments
from offline.bench.bandit_spec import (
    METHOD_PARAMETERS,
    BanditSpecError,
    is_bandit_spec,
    parse_bandit_spec,
)

CONFIGURED = BanditSettings(exploration="squarecb", gamma_scale=200.0, epsilon=0.05,
                            learning_rate=0.5, interactions=("TM", "ML"))


@pytest.mark.parametrize(
    ("spec", "changed"),
    [
        ("vw:epsilon=0.1", {"exploration": "epsilon", "epsilon": 0.1}),
        ("vw:squarecb=1000", {"gamma_scale": 1000.0}),
        ("vw:cover=5", {"exploration": "cover", "cover_size": 5}),
        ("vw:bag=7,epsilon=0.1", {"exploration": "bag", "bag_size": 7, "epsilon": 0.1}),
        ("vw:softmax=10", {"exploration": "softmax", "softmax_lambda": 10.0}),
        ("vw:regcbopt", {"exploration": "regcbopt"}),
        ("vw:regcbopt=0.01,update_rule=adaptive",
         {"exploration": "regcbopt", "mellowness": 0.01, "update_rule": "adaptive"}),
        ("vw:squarecb,learning_rate=1", {"learning_rate": 1.0}),
        ("vw:squarecb,interactions=FM+CM+TML", {"interactions": ("FM", "CM", "TML")}),
        ("vw", {}),
    ],
)
def test_a_spec_overrides_only_what_it_names(spec: str, changed: dict[str, object]) -> None:
    assert is_bandit_spec(spec)
    settings = parse_bandit_spec(spec).apply(CONFIGURED)
    assert settings == msgspec.structs.replace(CONFIGURED, **changed)
    if "interactions" not in changed:
        assert settings.interactions == ("TM", "ML")  # the rest of [bandit] is kept


def test_every_exploration_method_has_a_spec_parameter() -> None:
    assert set(METHOD_PARAMETERS) == set(get_args(Exploration))


def test_a_spec_reaches_vws_command_line() -> None:
    cover = parse_bandit_spec("vw:cover=3").apply(CONFIGURED)
    assert "--cover 3 --epsilon 0.05" in vw_arguments(cover)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("vw:regcb", "unknown exploration 'regcb'; known: epsilon, squarecb"),
        ("vw:greedy=1", "unknown exploration 'greedy'"),
        ("vw:bag=1", "Expected `int` >= 2 - at `$.bag_size`"),
        ("vw:squarecb=fast", "Expected `float`, got `str` - at `$.gamma_scale`"),
        ("vw:bag=5,bag_size=6", "bag_size is set twice"),
        ("vw:bag=5,size=6", "'size=6' is not FIELD=VALUE with FIELD one of epsilon"),
        ("vw:bag=5,epsilon", "'epsilon' is not FIELD=VALUE"),
        ("vw:epsilon,interactions=TM+F", "regex '^[A-Za-z]{2,3}$' - at `$.interactions[1]`"),
        ("vw:epsilon,exploration=bag", "'exploration=bag' is not FIELD=VALUE"),
        ("vw:regcbopt,update_rule=fast", "Invalid enum value 'fast' - at `$.update_rule`"),
        ("river", "'river' is not a bandit spec"),
        ("vw:cover=0", "'vw:cover=0'"),
    ],
)
def test_a_bad_spec_is_named_with_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(BanditSpecError, match=re.escape(message)):
        parse_bandit_spec(spec)


def test_other_policy_names_are_not_specs() -> None:
    assert not is_bandit_spec("river")
    assert not is_bandit_spec("vwx:squarecb")
    assert not is_bandit_spec("uniform")
