"""Online policies the benchmark can drive, by name.

A policy is anything with the decide/learn interface of :class:`learners.policy.OnlinePolicy`
(:class:`RoutingPolicy`): ``probabilities(features, catalog, allowed)`` and
``learn(event)``. ``--policy NAME`` takes a name of :data:`POLICIES`, an exploration variant
of the VW policy (``vw:squarecb=200``, ``vw:regcbopt``, ...: :mod:`offline.bench.bandit_spec`) or
``module:function``, a factory ``(catalog, settings, seed) -> policy``, so a new learner
(River, hybrid, ...) is benchmarked without editing this module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

from learners.bandit.settings import BanditSettings
from learners.catalog import Catalog
from learners.features import ContextFeatures
from learners.policy import LearnEvent, OnlinePolicy
from offline.bench.bandit_spec import BanditSpecError, is_bandit_spec, parse_bandit_spec


class RoutingPolicy(Protocol):
    """The decide/learn interface of :class:`learners.policy.OnlinePolicy`."""

    def probabilities(
        self, features: ContextFeatures, catalog: Catalog, allowed: Sequence[int]
    ) -> list[float]: ...

    def learn(self, event: LearnEvent) -> object: ...


PolicyFactory = Callable[[Catalog, BanditSettings, int], RoutingPolicy]


class UnknownPolicyError(ValueError):
    """``--policy`` names no registered policy and no importable ``module:function``."""


def create_vw_policy(catalog: Catalog, settings: BanditSettings, seed: int) -> OnlinePolicy:
    """The service's online policy (VW ``cb_explore_adf``) with the configured bandit settings
    and VW's random seed set to ``seed``."""
    seeded = msgspec.structs.replace(settings, seed=seed)
    return OnlinePolicy(settings=seeded, catalogs={catalog.fingerprint: catalog})


POLICIES: dict[str, PolicyFactory] = {"vw": create_vw_policy}


def resolve_policy(name: str) -> PolicyFactory:
    """The factory registered as ``name``, the VW policy under the bandit spec ``name``
    (``vw:...``), or the callable ``module:function``."""
    factory = POLICIES.get(name)
    if factory is not None:
        return factory
    if is_bandit_spec(name):
        try:
            spec = parse_bandit_spec(name)
        except BanditSpecError as exc:
            raise UnknownPolicyError(str(exc)) from exc

        def create_variant(catalog: Catalog, settings: BanditSettings, seed: int) -> OnlinePolicy:
            return create_vw_policy(catalog, spec.apply(settings), seed)

        return create_variant
    module_name, _, attribute = name.partition(":")
    if not attribute:
        raise UnknownPolicyError(
            f"unknown policy {name!r}: use one of {', '.join(sorted(POLICIES))} "
            "or module:function"
        )
    try:
        found: object = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise UnknownPolicyError(f"policy {name!r}: {exc}") from exc
    if not callable(found):
        raise UnknownPolicyError(f"policy {name!r} is not callable")

    def factory_from_import(catalog: Catalog, settings: BanditSettings, seed: int) -> RoutingPolicy:
        policy: RoutingPolicy = found(catalog, settings, seed)
        return policy

    return factory_from_import
