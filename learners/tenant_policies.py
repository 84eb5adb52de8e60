"""One online policy per tenant: each tenant's learner state is its own fold over the log.

A tenant's outcomes reach only its own :class:`~learners.policy.OnlinePolicy` (DESIGN.md rule
7), so another tenant cannot read them off its own decisions. With ``shared`` every tenant
learns into one policy (an explicit configuration choice for tenants that trust each other).
Whatever the sharing, the outcome figures of each tenant (:class:`TenantCounts`, what ``GET
/v1/stats`` reports) are folded per tenant from the same outcomes.

:meth:`TenantPolicies.snapshot` writes every tenant's state in one envelope, so a checkpoint
holds all of them at the same outcome sequence number and a restore never mixes states of
different points of the fold.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import msgspec

from learners.bandit.settings import BanditSettings
from learners.catalog import Catalog
from learners.drift import BanditDriftSettings, DriftAlarm
from learners.policy import LearnEvent, OnlinePolicy
from learners.reward import Verdict
from learners.sealed import Keyring

SHARED_KEY = "*"  # the one policy every tenant learns into when learning is shared
# Task types are an open vocabulary: a tenant's counts keep the first MAX_TASK_TYPES and count
# every later new one under OTHER_TASK_TYPES (bounded memory and checkpoints).
MAX_TASK_TYPES = 1000
OTHER_TASK_TYPES = "(other)"


class TenantCounts(msgspec.Struct):
    """A tenant's learned outcomes: counts and the sums behind its averages (a fold, like the
    policy; figures of outcomes the process has learned)."""

    outcomes: int = 0
    by_task_type: dict[str, int] = msgspec.field(default_factory=dict)
    by_outcome: dict[str, int] = msgspec.field(default_factory=dict)
    by_model: dict[str, int] = msgspec.field(default_factory=dict)
    reward_sum: float = 0.0
    quality_sum: float = 0.0
    quality_n: int = 0
    time_sum: float = 0.0
    time_n: int = 0
    cost_sum: float = 0.0
    cost_n: int = 0

    def learn(self, event: LearnEvent, model: str) -> None:
        """Count one outcome of the tenant (``model``: the chosen action's model)."""
        self.outcomes += 1
        task_type = event.task_type or "unknown"
        if task_type not in self.by_task_type and len(self.by_task_type) >= MAX_TASK_TYPES:
            task_type = OTHER_TASK_TYPES
        self.by_task_type[task_type] = self.by_task_type.get(task_type, 0) + 1
        verdict = event.verdict.value
        self.by_outcome[verdict] = self.by_outcome.get(verdict, 0) + 1
        self.by_model[model] = self.by_model.get(model, 0) + 1
        self.reward_sum += event.reward
        if event.quality is not None:
            self.quality_sum += event.quality
            self.quality_n += 1
        if event.generation_time_s is not None:
            self.time_sum += event.generation_time_s
            self.time_n += 1
        if event.cost_usd is not None:
            self.cost_sum += event.cost_usd
            self.cost_n += 1

    @property
    def success_rate(self) -> float | None:
        approved = self.by_outcome.get(Verdict.APPROVED.value, 0)
        return approved / self.outcomes if self.outcomes else None

    @property
    def reward(self) -> float | None:
        return _mean(self.reward_sum, self.outcomes)

    @property
    def quality(self) -> float | None:
        return _mean(self.quality_sum, self.quality_n)

    @property
    def generation_time_s(self) -> float | None:
        return _mean(self.time_sum, self.time_n)

    @property
    def cost_usd(self) -> float | None:
        return _mean(self.cost_sum, self.cost_n)


def _mean(total: float, n: int) -> float | None:
    return round(total / n, 6) if n else None


class _Envelope(msgspec.Struct, frozen=True):
    fingerprint: str
    shared: bool
    policies: dict[str, bytes]  # learner key -> OnlinePolicy.snapshot()
    counts: dict[str, TenantCounts]  # tenant id -> its learned outcomes


class TenantPolicies:
    """The online policies of one bandit configuration, one per tenant (or one shared),
    each created on first use."""

    def __init__(
        self,
        *,
        settings: BanditSettings,
        catalogs: dict[str, Catalog],
        drift: BanditDriftSettings | None = None,
        shared: bool = False,
    ) -> None:
        self.settings = settings
        self.drift_settings = drift or BanditDriftSettings()
        self.shared = shared
        self._catalogs = dict(catalogs)
        self._policies: dict[str, OnlinePolicy] = {}
        self._counts: dict[str, TenantCounts] = {}
        probe = self._new_policy()
        self._fingerprint = probe.fingerprint
        probe.close()

    def _new_policy(self) -> OnlinePolicy:
        return OnlinePolicy(settings=self.settings, catalogs=self._catalogs,
                            drift=self.drift_settings)

    @property
    def fingerprint(self) -> str:
        """The bandit configuration's fingerprint (:attr:`OnlinePolicy.fingerprint`)."""
        return self._fingerprint

    @property
    def checkpoint_name(self) -> str:
        """Learner name of this configuration's checkpoints; sealed and shared states never
        restore into each other."""
        return checkpoint_name(self._fingerprint, shared=self.shared)

    def key_for(self, tenant_id: str) -> str:
        return SHARED_KEY if self.shared else tenant_id

    def for_tenant(self, tenant_id: str) -> OnlinePolicy:
        """The policy that decides for (and learns from) ``tenant_id``, created on first use."""
        key = self.key_for(tenant_id)
        policy = self._policies.get(key)
        if policy is None:
            policy = self._policies[key] = self._new_policy()
        return policy

    def find(self, tenant_id: str) -> OnlinePolicy | None:
        """The policy of ``tenant_id`` if it exists (None: it has neither decided nor
        learned yet)."""
        return self._policies.get(self.key_for(tenant_id))

    def counts_for(self, tenant_id: str) -> TenantCounts:
        """The outcomes of ``tenant_id`` learned so far (its own, shared or not)."""
        counts = self._counts.get(tenant_id)
        return TenantCounts() if counts is None else counts

    def policies(self) -> Iterator[tuple[str, OnlinePolicy]]:
        """(learner key, policy) of every policy created so far."""
        yield from sorted(self._policies.items())

    def add_catalog(self, catalog: Catalog) -> None:
        self._catalogs.setdefault(catalog.fingerprint, catalog)
        for policy in self._policies.values():
            policy.add_catalog(catalog)

    def has_catalog(self, fingerprint: str) -> bool:
        return fingerprint in self._catalogs

    def observe_decision(self, tenant_id: str, project_id: str | None, at: datetime) -> None:
        """Record a decision of ``tenant_id``'s ``project_id`` at ``at`` in its policy's
        history (the log's first decisions at start, so project ages survive a restart)."""
        self.for_tenant(tenant_id).observe_decision(tenant_id, project_id, at)

    def learn(self, event: LearnEvent) -> list[DriftAlarm]:
        """Fold one outcome into its tenant's policy (or the shared one) and counts."""
        raised = self.for_tenant(event.tenant_id).learn(event)
        action = self._catalogs[event.catalog_fingerprint].actions[
            event.allowed[event.chosen_position]]
        counts = self._counts.get(event.tenant_id)
        if counts is None:
            counts = self._counts[event.tenant_id] = TenantCounts()
        counts.learn(event, action.model.name)
        return raised

    def snapshot(self, keyring: Keyring) -> bytes:
        """Every tenant's state in one blob sealed with ``keyring`` (:meth:`restore` reloads
        all or none). A tenant whose state a route call creates meanwhile has learned nothing:
        leaving it out is exact."""
        policies = list(self._policies.items())
        return keyring.seal(msgspec.msgpack.encode(_Envelope(
            fingerprint=self._fingerprint,
            shared=self.shared,
            policies={key: policy.snapshot(keyring) for key, policy in policies},
            counts=dict(self._counts),
        )))

    def restore(self, data: bytes, keyring: Keyring) -> bool:
        """Load a :meth:`snapshot` of this configuration and sharing mode; False (state
        untouched) for any other blob. The seal is verified before anything is decoded: a blob
        not sealed with a secret of ``keyring`` raises :class:`~learners.sealed.SealError`."""
        payload = keyring.unseal(data)
        try:
            envelope = msgspec.msgpack.decode(payload, type=_Envelope)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False
        if envelope.fingerprint != self._fingerprint or envelope.shared != self.shared:
            return False
        restored: dict[str, OnlinePolicy] = {}
        complete = False
        try:
            for key, state in envelope.policies.items():
                policy = restored[key] = self._new_policy()
                if not policy.restore(state, keyring):
                    return False
            complete = True
        finally:
            if not complete:  # refused, or a tenant's seal failed (SealError)
                for built in restored.values():
                    built.close()
        self.close()
        self._policies = restored
        self._counts = dict(envelope.counts)
        return True

    def close(self) -> None:
        for policy in self._policies.values():
            policy.close()
        self._policies = {}


def checkpoint_name(fingerprint: str, *, shared: bool) -> str:
    """Learner name under which :class:`TenantPolicies` of a configuration checkpoint."""
    return f"{fingerprint}:{'shared' if shared else 'tenants'}"
