"""Shadow policies: candidate bandit configurations that decide and learn beside the served one.

Each shadow is its own :class:`~learners.tenant_policies.TenantPolicies` (one policy per
tenant, like the served one), fed by the
:class:`~router.services.learning.LearnerService` fold with the same outcomes in the same order
as the served policy, and checkpointed under its own configuration fingerprint, so a restart
reproduces its state like the served one's. On every route call each shadow computes its
probabilities over the same allowed actions from the same features; they are logged with the
decision (``decisions.shadow_probabilities``) and never change what is served. ``router replay
--policy shadow:<name>`` evaluates a shadow from those logged probabilities and ``router
promote --candidate shadow:<name>`` makes its configuration the served one
(:class:`ActivePolicyWatcher` switches running services without a restart).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError

from learners.bandit.settings import BanditSettings
from learners.catalog import Catalog
from learners.drift import BanditDriftSettings
from learners.features import ContextFeatures, ContextRecord
from learners.policy import LearnEvent
from learners.sealed import Keyring, SealError
from learners.tenant_policies import TenantPolicies
from router.errors import StorageUnavailableError
from router.storage.policy_store import PolicyStore, ShadowDecision
from router.storage.repository import EventLog

if TYPE_CHECKING:
    from router.services.learning import LearnerService

logger = logging.getLogger(__name__)
BATCH = 1000


def restore_sealed(policy: TenantPolicies, state: bytes, keyring: Keyring, where: str) -> bool:
    """:meth:`TenantPolicies.restore`, with a checkpoint whose seal fails refused (one logged
    error; the caller folds from the log instead): it is never decoded."""
    try:
        return policy.restore(state, keyring)
    except SealError as exc:
        logger.error("learner checkpoint %s of %s refused, not loaded: %s; folding from the "
                     "log instead", where, policy.fingerprint, exc)
        return False


class Shadow:
    """One named candidate and the sequence number of the last outcome it learned."""

    def __init__(self, name: str, policies: TenantPolicies) -> None:
        self.name = name
        self.policies = policies
        self.applied_seq = 0
        self.failed = False

    def learn(self, event: LearnEvent) -> None:
        if self.failed or event.seq <= self.applied_seq:
            return
        try:
            self.policies.learn(event)
        except Exception:
            # A broken candidate must not stop the served policy's learning; it stops deciding
            # (its logged probabilities would no longer come from the fold).
            self.failed = True
            logger.exception("shadow %r failed to learn outcome %d; disabled until restart",
                             self.name, event.seq)
            return
        self.applied_seq = event.seq


class ShadowPolicies:
    """The configured shadows of one process (possibly none)."""

    def __init__(self, shadows: Sequence[Shadow] = ()) -> None:
        self._shadows = list(shadows)

    @classmethod
    def create(cls, settings: Mapping[str, BanditSettings], catalogs: dict[str, Catalog],
               drift: BanditDriftSettings | None = None, *, shared: bool = False
               ) -> ShadowPolicies:
        return cls([Shadow(name, TenantPolicies(settings=bandit, catalogs=catalogs, drift=drift,
                                                shared=shared))
                    for name, bandit in sorted(settings.items())])

    def __len__(self) -> int:
        return len(self._shadows)

    @property
    def shadows(self) -> Sequence[Shadow]:
        return tuple(self._shadows)

    def versions(self, tenant_id: str) -> dict[str, str]:
        """Version of each working shadow's policy of ``tenant_id``."""
        return {s.name: s.policies.for_tenant(tenant_id).version
                for s in self._shadows if not s.failed}

    def add_catalog(self, catalog: Catalog) -> None:
        for shadow in self._shadows:
            shadow.policies.add_catalog(catalog)

    def decide(self, tenant_id: str, features: ContextFeatures, catalog: Catalog,
               allowed: Sequence[int], record: ContextRecord | None = None
               ) -> dict[str, ShadowDecision] | None:
        """Every working shadow's probabilities over ``allowed`` for ``tenant_id`` (None
        without shadows)."""
        if not self._shadows:
            return None
        out: dict[str, ShadowDecision] = {}
        for shadow in self._shadows:
            if shadow.failed:
                continue
            policy = shadow.policies.for_tenant(tenant_id)
            try:
                probabilities = policy.probabilities(features, catalog, allowed, record)
            except Exception:
                shadow.failed = True
                logger.exception("shadow %r failed to decide; disabled until restart",
                                 shadow.name)
                continue
            out[shadow.name] = ShadowDecision(version=policy.version,
                                              probabilities=probabilities)
        return out

    def learn(self, event: LearnEvent) -> None:
        """Fold in one outcome (called right after the served policy learned it)."""
        for shadow in self._shadows:
            shadow.learn(event)

    async def start(self, log: EventLog, upto_seq: int, keyring: Keyring) -> None:
        """Restore each shadow's newest checkpoint, then apply the outcomes up to ``upto_seq``
        (the served policy's position) that it lacks; later ones arrive with the served fold."""
        for shadow in self._shadows:
            newest = await log.latest_checkpoint(shadow.policies.checkpoint_name)
            # A checkpoint past the served position cannot be rewound: fold from the start then.
            if newest is not None and newest[0] <= upto_seq and restore_sealed(
                    shadow.policies, newest[1], keyring, f"of shadow {shadow.name!r}"):
                shadow.applied_seq = newest[0]
        low = min((s.applied_seq for s in self._shadows), default=upto_seq)
        while low < upto_seq:
            events = await log.learn_events_after(low, min(BATCH, upto_seq - low))
            events = [e for e in events if e.seq <= upto_seq]
            if not events:
                break
            for event in events:
                self.learn(event)
            low = events[-1].seq
        for shadow in self._shadows:
            logger.info("shadow %r at outcome %d (bandit %s)", shadow.name,
                        shadow.applied_seq, shadow.policies.fingerprint)

    async def checkpoint(self, log: EventLog, keep: int, keyring: Keyring) -> None:
        for shadow in self._shadows:
            if not shadow.failed and shadow.applied_seq > 0:
                await log.save_checkpoint(shadow.policies.checkpoint_name, shadow.applied_seq,
                                          shadow.policies.snapshot(keyring), keep)

    def state_of(self, fingerprint: str, keyring: Keyring) -> tuple[int, bytes] | None:
        """(last outcome learned, snapshot) of a working shadow with this configuration."""
        for shadow in self._shadows:
            if not shadow.failed and shadow.policies.fingerprint == fingerprint:
                return shadow.applied_seq, shadow.policies.snapshot(keyring)
        return None

    def close(self) -> None:
        for shadow in self._shadows:
            shadow.policies.close()


class ActivePolicyWatcher:
    """Serves the bandit configuration ``router promote`` made active, in every process.

    The newest ``active_policies`` row is polled every ``poll_interval_s``; when it changes the
    learner switches its served policy (:meth:`LearnerService.switch_policy`), keeping what the
    configuration has learned from the log.
    """

    def __init__(self, store: PolicyStore, learner: LearnerService, *, poll_interval_s: float,
                 active_id: int | None) -> None:
        self.store = store
        self.learner = learner
        self.poll_interval_s = poll_interval_s
        self.active_id = active_id

    async def refresh(self) -> bool:
        """Switch to a newly promoted configuration; True when the served policy changed."""
        active_id = await self.store.active_id()
        if active_id is None or active_id == self.active_id:
            return False
        active = await self.store.active()
        if active is None:
            return False
        changed = await self.learner.switch_policy(active.bandit)
        self.active_id = active.id
        if changed:
            logger.info("now serving %s (promotion %d): bandit %s", active.candidate, active.id,
                        self.learner.policies.fingerprint)
        return changed

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self.refresh()
            except (StorageUnavailableError, DBAPIError, OSError, TimeoutError):
                pass  # the event log's tail logs the outage, once, and when it ends
            except Exception:
                logger.exception("switching to the promoted bandit configuration failed; "
                                 "retrying")
