"""Target-policy specifications (``--policy SPEC``) and how each is built.

``logged``, ``uniform``, ``fixed:<action>`` and ``probs:<file>`` need only the log columns.
``bandit[:<checkpoint id>]``, ``batch-greedy[:<version>]`` and ``vw:<ips|dr|mtr>`` decide from
each logged request and read the event log's checkpoints and model registry; ``shadow:<name>``
reads the probabilities a shadow policy logged with each decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import msgspec

from offline.replay.errors import ReplayError
from offline.replay.log import LogSource
from offline.replay.policies import (
    FixedPolicy,
    LoggedPolicy,
    ProbabilityFilePolicy,
    TargetPolicy,
    UniformPolicy,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from learners.bandit.cb_adf import CbType
    from learners.bandit.settings import BanditSettings
    from learners.catalog import Catalog
    from learners.drift import BanditDriftSettings
    from learners.sealed import Keyring
    from offline.replay.queries import ReplayWindow
    from router.public import Settings

SIMPLE_POLICIES = ("logged", "uniform", "fixed", "probs")
CONTEXT_POLICIES = ("bandit", "batch-greedy", "vw", "shadow")
CB_TYPES = ("ips", "dr", "mtr")


class TargetSpec(msgspec.Struct, frozen=True):
    kind: str
    argument: str | None = None

    @property
    def text(self) -> str:
        return self.kind if self.argument is None else f"{self.kind}:{self.argument}"

    def build_simple(self) -> TargetPolicy:
        match self.kind:
            case "logged":
                return LoggedPolicy()
            case "uniform":
                return UniformPolicy()
            case "fixed":
                return FixedPolicy(self.argument or "")
            case "probs":
                return ProbabilityFilePolicy(self.argument or "", name=self.text)
        raise ReplayError(f"{self.text} needs the event log or a catalog")


def parse_target(text: str) -> TargetSpec:
    kind, _, argument = text.partition(":")
    kind = kind.strip()
    if kind in ("logged", "uniform") and not argument:
        return TargetSpec(kind)
    if kind in ("fixed", "probs") and argument:
        return TargetSpec(kind, argument)
    if kind in ("bandit", "batch-greedy"):
        return TargetSpec(kind, argument or None)
    if kind == "vw" and argument in CB_TYPES:
        return TargetSpec(kind, argument)
    if kind == "shadow" and argument:
        return TargetSpec(kind, argument)
    raise ReplayError(
        f"unknown target policy {text!r}: use logged, uniform, fixed:<action>, probs:<file>, "
        "bandit[:<checkpoint id>], batch-greedy[:<version>], vw:ips|dr|mtr or shadow:<name>")


def needs_context(specs: Sequence[TargetSpec]) -> bool:
    return any(spec.kind in CONTEXT_POLICIES for spec in specs)


async def _progressive_bandit(engine: AsyncEngine, learner: str, window: ReplayWindow | None,
                             served: BanditSettings, catalogs: dict[str, Catalog],
                             settings: Settings, keyring: Keyring) -> TargetPolicy:
    """``bandit``: progressive validation from the newest checkpoint that holds no outcome of
    the window (a fresh learner if there is none)."""
    from offline.replay.deciders import BanditSnapshotPolicy
    from offline.replay.queries import ReplayWindow, bandit_snapshot, first_outcome_seq

    first = await first_outcome_seq(engine, window or ReplayWindow())
    found = None if first is None else await bandit_snapshot(engine, learner, None,
                                                             before_seq=first)
    if found is None:
        start, snapshot, label = "a fresh learner", None, "fresh"
    else:
        checkpoint_id, last_seq, snapshot = found
        start, label = f"checkpoint {checkpoint_id} (outcomes 1-{last_seq})", f"{checkpoint_id}"
    return BanditSnapshotPolicy(
        name=f"bandit:progressive@{label}", settings=served, catalogs=catalogs,
        snapshot=snapshot, keyring=keyring, drift=settings.drift,
        shared=settings.learning.share_across_tenants, progressive=True,
        description=f"progressive validation: each decision valued with the bandit's "
        f"probabilities before it learned that decision's outcome, starting from {start}")


async def build_targets(specs: Sequence[TargetSpec], *, engine: AsyncEngine,
                        settings: Settings, catalogs: dict[str, Catalog],
                        seed: int, window: ReplayWindow | None = None) -> list[TargetPolicy]:
    """Every policy of ``specs``, loading snapshots and model versions from the database
    (``window``: the decisions to be evaluated, for out-of-sample bandit evaluation)."""
    import asyncio

    from learners.batch.models import load_models
    from learners.tenant_policies import checkpoint_name
    from offline.replay.deciders import (
        BanditSnapshotPolicy,
        BatchGreedyPolicy,
        OfflineVWPolicy,
        ShadowLoggedPolicy,
    )
    from offline.replay.queries import bandit_snapshot
    from router.public import ModelRegistry, PolicyStore, load_keyring

    catalogs = {**catalogs}
    catalogs.setdefault(settings.catalog.fingerprint, settings.catalog)
    keyring = load_keyring(settings)
    out: list[TargetPolicy] = []
    for spec in specs:
        if spec.kind in SIMPLE_POLICIES:
            out.append(spec.build_simple())
        elif spec.kind == "bandit":
            # The served bandit: the one `router promote` made active, else the config's.
            active = await PolicyStore(engine).active()
            served = settings.bandit if active is None else active.bandit
            shared = settings.learning.share_across_tenants
            learner = checkpoint_name(bandit_learner_name(served, catalogs, settings.drift),
                                      shared=shared)
            if spec.argument is None:
                out.append(await _progressive_bandit(engine, learner, window, served, catalogs,
                                                     settings, keyring))
                continue
            found = await bandit_snapshot(engine, learner, spec.argument)
            if found is None:
                raise ReplayError(f"{spec.text}: the event log has no checkpoint "
                                  f"{spec.argument}; `router serve` writes them as it learns")
            checkpoint_id, last_seq, state = found
            out.append(BanditSnapshotPolicy(
                name=f"bandit:{checkpoint_id}@{last_seq}", settings=served,
                catalogs=catalogs, snapshot=state, keyring=keyring, drift=settings.drift,
                shared=shared, learned_through=last_seq,
                description=f"checkpoint {checkpoint_id} frozen (it holds outcomes 1-"
                f"{last_seq}; evaluated only on decisions whose outcomes came later)"))
        elif spec.kind == "shadow":
            out.append(ShadowLoggedPolicy(spec.argument or "", catalogs))
        elif spec.kind == "batch-greedy":
            registry = ModelRegistry(engine)
            version = spec.argument or await registry.current_version()
            if version is None:
                raise ReplayError(f"{spec.text}: no current batch-model version; name one or "
                                  "run `router train`")
            models = await asyncio.to_thread(load_models, await registry.artifact(version),
                                             keyring)
            out.append(BatchGreedyPolicy(
                name=f"batch-greedy:{version}", models=models, catalogs=catalogs,
                profile=settings.profiles[settings.default_profile]))
        else:
            bandit = msgspec.structs.replace(settings.bandit, seed=seed)
            out.append(OfflineVWPolicy(cb_type=cast("CbType", spec.argument),
                                       settings=bandit, catalogs=catalogs))
    return out


def bandit_learner_name(bandit: BanditSettings, catalogs: dict[str, Catalog],
                        drift: BanditDriftSettings | None = None) -> str:
    """The configured bandit's fingerprint (its checkpoints are stored under
    :func:`learners.tenant_policies.checkpoint_name` of it)."""
    from learners.policy import OnlinePolicy

    policy = OnlinePolicy(settings=bandit, catalogs=catalogs, drift=drift)
    try:
        return policy.fingerprint
    finally:
        policy.close()


def split_for_training(source: LogSource, policies: Sequence[TargetPolicy],
                       share: float) -> tuple[LogSource, list[TargetPolicy]]:
    """Train every ``vw:*`` policy on the first ``share`` of the log's rows; every policy is
    then evaluated on the remaining rows only, so the comparison is on the same decisions."""
    from offline.replay.deciders import OfflineVWPolicy, SliceLog

    if not 0.0 < share < 1.0:
        raise ReplayError(f"--train-share: must lie in (0, 1), got {share}")
    n = sum(len(chunk) for chunk in source.chunks())
    cut = int(n * share)
    if cut == 0 or cut == n:
        raise ReplayError(f"the log's {n} rows leave nothing to train on or to evaluate")
    for policy in policies:
        if isinstance(policy, OfflineVWPolicy):
            policy.train(SliceLog(source, 0, cut).chunks())
    return SliceLog(source, cut), list(policies)
