"""One policy per tenant: a tenant's state is the fold of its own outcomes whatever the others
sent (or of everyone's when shared), and a snapshot restores every tenant or none."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from learners.bandit.settings import BanditSettings
from learners.catalog import Catalog
from learners.features import ContextFeatures
from learners.policy import LearnEvent
from learners.reward import Verdict
from learners.sealed import Keyring, SealError
from learners.tenant_policies import (
    MAX_TASK_TYPES,
    OTHER_TASK_TYPES,
    TenantCounts,
    TenantPolicies,
)
from router.settings import load_settings
from tests.support import TEST_KEYRING

CATALOG: Catalog = load_settings("configs/default.toml", {}).catalog
CATALOGS = {CATALOG.fingerprint: CATALOG}
ALLOWED = list(range(12))
SEAL_HEADER = 4 + 32  # magic and HMAC-SHA256 tag (learners/sealed.py)
PROBE = ContextFeatures(namespaces={"task": {"type=backend": 1.0}}, complexity=5.0)


def event(seq: int, tenant: str, position: int, approved: bool) -> LearnEvent:
    features = ContextFeatures(namespaces={"task": {"type=backend": 1.0}}, complexity=5.0)
    return LearnEvent(
        seq=seq, catalog_fingerprint=CATALOG.fingerprint, features=features, allowed=ALLOWED,
        chosen_position=position, propensity=1 / len(ALLOWED), reward=float(approved),
        verdict=Verdict.APPROVED if approved else Verdict.REJECTED, quality=8.0 if approved
        else None, generation_time_s=None, prior_time_s=10.0, tenant_id=tenant,
        task_type="backend", cost_usd=0.5)


def policies(shared: bool = False) -> TenantPolicies:
    return TenantPolicies(settings=BanditSettings(), catalogs=CATALOGS, shared=shared)


outcome_streams = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.integers(0, len(ALLOWED) - 1), st.booleans()),
    min_size=1, max_size=25)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=outcome_streams)
def test_a_tenants_state_is_the_fold_of_its_own_outcomes(
    stream: list[tuple[str, int, bool]],
) -> None:
    mixed, alone = policies(), policies()
    try:
        for seq, (tenant, position, approved) in enumerate(stream, start=1):
            mixed.learn(event(seq, tenant, position, approved))
            if tenant == "b":
                alone.learn(event(seq, tenant, position, approved))
        assert (mixed.for_tenant("b").probabilities(PROBE, CATALOG, ALLOWED)
                == alone.for_tenant("b").probabilities(PROBE, CATALOG, ALLOWED))
        assert mixed.counts_for("b") == alone.counts_for("b")
        assert mixed.counts_for("a").outcomes == sum(t == "a" for t, _, _ in stream)
    finally:
        mixed.close()
        alone.close()


def test_shared_learning_folds_every_tenants_outcomes_but_counts_each_apart() -> None:
    shared = policies(shared=True)
    try:
        before = shared.for_tenant("b").probabilities(PROBE, CATALOG, ALLOWED)
        for seq in range(1, 21):
            shared.learn(event(seq, "a", 0, approved=True))
        assert shared.for_tenant("b") is shared.for_tenant("a")
        assert shared.for_tenant("b").probabilities(PROBE, CATALOG, ALLOWED) != before
        assert shared.counts_for("b").outcomes == 0
        assert shared.counts_for("a").outcomes == 20
    finally:
        shared.close()


def test_a_snapshot_restores_every_tenant_and_only_into_the_same_mode() -> None:
    source = policies()
    for seq in range(1, 31):
        source.learn(event(seq, "a" if seq % 3 else "b", seq % 4, approved=seq % 2 == 0))
    blob = source.snapshot(TEST_KEYRING)
    restored, other_mode = policies(), policies(shared=True)
    try:
        assert restored.restore(blob, TEST_KEYRING)
        for tenant in ("a", "b"):
            assert (restored.for_tenant(tenant).probabilities(PROBE, CATALOG, ALLOWED)
                    == source.for_tenant(tenant).probabilities(PROBE, CATALOG, ALLOWED))
            assert restored.counts_for(tenant) == source.counts_for(tenant)
        assert restored.counts_for("a").cost_usd == 0.5
        assert not other_mode.restore(blob, TEST_KEYRING)
        assert not restored.restore(TEST_KEYRING.seal(b"not a snapshot"), TEST_KEYRING)
        assert not restored.restore(
            TEST_KEYRING.seal(msgspec.msgpack.encode({"fingerprint": 1})), TEST_KEYRING)
        # Nothing unsealed, or sealed under another secret, is decoded.
        payload = blob[SEAL_HEADER:]
        for forged in (payload, Keyring(b"another-secret").seal(payload)):
            with pytest.raises(SealError):
                restored.restore(forged, TEST_KEYRING)
        # A refused blob leaves the state as it was.
        assert restored.counts_for("b") == source.counts_for("b")
    finally:
        for p in (source, restored, other_mode):
            p.close()


def test_counts_by_task_type_stay_bounded_with_a_new_task_type_per_outcome() -> None:
    counts = TenantCounts()
    for seq in range(1, MAX_TASK_TYPES + 501):
        unique = msgspec.structs.replace(event(seq, "acme", 0, True), task_type=f"type-{seq}")
        counts.learn(unique, "frontier-large")
    assert len(counts.by_task_type) == MAX_TASK_TYPES + 1
    assert counts.by_task_type[OTHER_TASK_TYPES] == 500
    assert sum(counts.by_task_type.values()) == counts.outcomes == MAX_TASK_TYPES + 500
