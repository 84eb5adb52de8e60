"""The online policy: a VW bandit plus outcome statistics, a deterministic fold over outcomes.

State is a pure function of the ordered outcomes it learned from (DESIGN.md rule 2), so a
snapshot plus the outcomes after it reproduces the state of a process that never stopped.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Sequence

import msgspec
import numpy as np
from numpy.typing import NDArray

from learners.bandit.action_prior import ActionPrior, PriorState
from learners.bandit.vw_bandit import ActionLines, BanditSettings, VWBandit
from learners.bandit.vw_format import format_shared
from learners.catalog import Catalog
from learners.drift import BanditDriftSettings, DriftAlarm, DriftMonitor
from learners.features import ContextFeatures, ContextRecord, Namespaces
from learners.history import HistoryStats, OutcomeFacts
from learners.online_models import OnlineOutcomeModels
from learners.online_stats import ActionPrediction, OutcomeStats
from learners.reward import Verdict
from learners.scaling import FeatureScaler, ScalerState
from learners.sealed import Keyring
from learners.stacking import FloatArray, Stacker

FEATURE_VERSION = "8"  # 3: drift_alarm model feature; 4: River outcome models in the state;
# 5: SquareCB over cb_adf costs, learned without importance weights (and the optional stacker);
# 6: River crosses over hashed task types, languages and agents; bounded, msgpack history;
# 7: numeric caller features standardised online (learners/scaling.py); 8: indicator action
# features only (no price, latency, temperature or prompt-size magnitudes), SquareCB's γ by √K
RIVER_MIN_OUTCOMES = 50  # River's P(approved) replaces the per-action rates from here on
POLICY_NAME = "vw-cb-explore-adf"


class LearnEvent(msgspec.Struct, frozen=True):
    """One logged outcome joined with what was logged at its decision."""

    seq: int
    catalog_fingerprint: str
    features: ContextFeatures
    allowed: list[int]
    chosen_position: int
    propensity: float
    reward: float
    verdict: Verdict
    quality: float | None
    generation_time_s: float | None
    prior_time_s: float
    facts: OutcomeFacts | None = None
    record: ContextRecord | None = None  # the decision's context record (River's input)
    # Whose outcome it is: learner state and statistics are kept per tenant
    # (learners/tenant_policies.py); "" where no tenant applies (offline tools).
    tenant_id: str = ""
    task_type: str | None = None  # the decision's task type (per-tenant statistics)
    cost_usd: float | None = None  # the outcome's reported cost (per-tenant statistics)


def _action_prior(settings: BanditSettings) -> ActionPrior | None:
    if settings.prior == "off":
        return None
    return ActionPrior(mode=settings.prior, count=settings.prior_count,
                       horizon=settings.prior_horizon, eta=settings.prior_eta,
                       min_reward=settings.min_reward, max_reward=settings.max_reward)


def _prior_text(settings: BanditSettings) -> str:
    """The prior's part of the fingerprint ("" when off, so fingerprints stay as they were)."""
    if settings.prior == "off":
        return ""
    return (f"|prior={settings.prior},{settings.prior_count:g},{settings.prior_horizon:g},"
            f"{settings.prior_eta:g}")


class _Snapshot(msgspec.Struct, frozen=True):
    fingerprint: str
    vw_model: bytes
    stats: bytes
    learned: int
    history: bytes = b""
    drift: bytes = b""
    river: bytes = b""
    stacker: bytes = b""
    scaler: bytes = b""
    prior: bytes = b""


class OnlinePolicy:
    """Chooses probabilities over allowed actions and learns from logged outcomes."""

    def __init__(
        self,
        *,
        settings: BanditSettings,
        catalogs: dict[str, Catalog],
        drift: BanditDriftSettings | None = None,
    ) -> None:
        self.settings = settings
        self.drift_settings = drift or BanditDriftSettings()
        self._catalogs = dict(catalogs)
        self._lines = {fp: ActionLines(cat) for fp, cat in self._catalogs.items()}
        self._bandit = VWBandit(settings=settings)
        drift_text = msgspec.json.encode(self.drift_settings).decode()
        text = (f"{FEATURE_VERSION}|{self._bandit.arguments}|{drift_text}"
                f"|{settings.history_keys}|{settings.river_buckets}|{settings.standardise_features}"
                f"{_prior_text(settings)}")
        self._fingerprint = hashlib.sha256(text.encode()).hexdigest()[:16]
        self._stats = OutcomeStats()
        self._history = HistoryStats(settings.history_keys)
        self._drift = DriftMonitor(self.drift_settings)
        self._river = OnlineOutcomeModels(buckets=settings.river_buckets)
        # [bandit] stack_river: SquareCB over a ridge stack of VW's and River's predicted
        # rewards, starting from "VW alone" (README "Learning quality and drift").
        self._stacker = Stacker(prior=(0.0, 1.0, 0.0)) if settings.stack_river else None
        self._scaler = FeatureScaler() if settings.standardise_features else None
        self._prior = _action_prior(settings)
        self._learned = 0

    @property
    def history(self) -> HistoryStats:
        """Windowed outcome aggregates (historical features), folded with the bandit."""
        return self._history

    @property
    def drift(self) -> DriftMonitor:
        """Per-model drift detectors and their alarms."""
        return self._drift

    @property
    def fingerprint(self) -> str:
        """Identity of the learner configuration; snapshots only restore into the same one."""
        return self._fingerprint

    @property
    def learned(self) -> int:
        """Number of outcomes folded in so far."""
        return self._learned

    @property
    def version(self) -> str:
        return f"{self.fingerprint}.{self._learned}"

    def add_catalog(self, catalog: Catalog) -> None:
        if catalog.fingerprint not in self._catalogs:
            self._catalogs[catalog.fingerprint] = catalog
            self._lines[catalog.fingerprint] = ActionLines(catalog, self._drift.alarmed_models())

    def has_catalog(self, fingerprint: str) -> bool:
        return fingerprint in self._catalogs

    def probabilities(
        self,
        features: ContextFeatures,
        catalog: Catalog,
        allowed: Sequence[int],
        record: ContextRecord | None = None,
    ) -> list[float]:
        """Probability of each allowed action (same order as ``allowed``). With
        ``stack_river``, ``record`` (the decision's context record) lets River's predictions
        join VW's once River has learned ``RIVER_MIN_OUTCOMES`` outcomes."""
        shared = self._shared(features)
        table = self._lines[catalog.fingerprint]
        if not self._stacking(record):
            if self._prior is None:
                return self._bandit.probabilities(shared, table, allowed)
            rewards = -self._bandit.costs(shared, table, allowed)
        else:
            assert self._stacker is not None  # _stacking checked both
            assert record is not None
            rewards = self._stacker.predict(self._stack_columns(shared, catalog, allowed, record))
        if self._prior is not None:
            rewards = self._prior.blend(self._prior_rows(catalog, allowed), rewards)
        return self._bandit.squarecb(-rewards)

    def _prior_rows(self, catalog: Catalog, allowed: Sequence[int]) -> NDArray[np.intp]:
        """Rows of the ``allowed`` actions in the prior's statistics."""
        assert self._prior is not None
        rows = self._prior.catalog_rows(catalog.fingerprint, [a.id for a in catalog.actions])
        return rows[np.asarray(allowed, dtype=np.intp)]

    def bandit_namespaces(self, features: ContextFeatures) -> Namespaces:
        """A context's namespaces as the bandit sees them: numeric caller features
        standardised (``[bandit] standardise_features``)."""
        if self._scaler is None:
            return features.namespaces
        return self._scaler.transform(features.namespaces)

    def _shared(self, features: ContextFeatures) -> str:
        """The VW shared line of a context."""
        return format_shared(self.bandit_namespaces(features))

    def _stacking(self, record: ContextRecord | None) -> bool:
        return (self._stacker is not None and record is not None
                and self._river.learned >= RIVER_MIN_OUTCOMES)

    def _stack_columns(self, shared: str, catalog: Catalog, allowed: Sequence[int],
                       record: ContextRecord) -> FloatArray:
        """``[1, VW's predicted reward, River's predicted reward]`` of each allowed action."""
        costs = self._bandit.costs(shared, self._lines[catalog.fingerprint], allowed)
        river = self._river.predict_rewards(record, [catalog.actions[i] for i in allowed])
        return np.column_stack([np.ones(len(allowed)), -costs, np.asarray(river)])

    def predicted_rewards(self, features: ContextFeatures, catalog: Catalog,
                          allowed: Sequence[int]) -> list[float]:
        """VW's predicted reward of each allowed action (SquareCB only: the other explorations
        predict probabilities), before the cap at ``max_reward`` that SquareCB applies."""
        table = self._lines[catalog.fingerprint]
        costs = self._bandit.costs(self._shared(features), table, allowed)
        return [-cost for cost in costs.tolist()]

    def predict(
        self,
        catalog: Catalog,
        index: int,
        prior_time_s: float,
        record: ContextRecord | None = None,
    ) -> ActionPrediction:
        """Online predictions for one action: outcome statistics (quality, time, and the
        success rate shrunk from action to model), with P(approved) from River's online model
        of this context and action once it has learned ``RIVER_MIN_OUTCOMES`` outcomes (it
        predicted the chosen actions' approvals better: docs/decisions/river-p-approved.md)."""
        action = catalog.actions[index]
        stats = self._stats.predict_one(
            model=action.model.name, action_id=action.id, prior_time_s=prior_time_s
        )
        success = None if record is None else self.river_success(record, catalog, index)
        if success is None:
            return stats
        return msgspec.structs.replace(stats, success_probability=success)

    def river_success(self, record: ContextRecord, catalog: Catalog, index: int) -> float | None:
        """River's P(approved) of one action in this context; None before it has learned
        ``RIVER_MIN_OUTCOMES`` outcomes."""
        if self._river.learned < RIVER_MIN_OUTCOMES:
            return None
        return self._river.predict_success(record, [catalog.actions[index]])[0]

    def learn(self, event: LearnEvent) -> list[DriftAlarm]:
        """Fold in one outcome using the features and propensity logged at decision time;
        returns the drift alarms it raised.

        The action lines carry the drift flags as they stand when the outcome is folded in
        (a function of the outcomes before it), so a replay reproduces them exactly. With
        ``stack_river`` the stacker learns the chosen action's predictions as they stand before
        this outcome is folded in (in the service, the decision's own when no other outcome
        came between)."""
        shared = self._shared(event.features)
        catalog = self._catalogs[event.catalog_fingerprint]
        action = catalog.actions[event.allowed[event.chosen_position]]
        if self._stacking(event.record):
            assert self._stacker is not None
            assert event.record is not None
            chosen = [event.allowed[event.chosen_position]]
            columns = self._stack_columns(shared, self._catalogs[event.catalog_fingerprint],
                                          chosen, event.record)
            self._stacker.learn_one(columns[0], event.reward)
        if self._prior is not None:
            chosen_index = event.allowed[event.chosen_position]
            reward_before = -float(self._bandit.costs(
                shared, self._lines[event.catalog_fingerprint], [chosen_index])[0])
            row = int(self._prior_rows(catalog, [chosen_index])[0])
            self._prior.learn_one(row, event.reward, reward_before)
        self._bandit.learn_actions(
            shared,
            self._lines[event.catalog_fingerprint],
            event.allowed,
            event.chosen_position,
            event.reward,
            event.propensity,
        )
        success = {Verdict.APPROVED: 1.0, Verdict.MODIFIED: 0.5, Verdict.REJECTED: 0.0}
        predicted = self._stats.predict_one(
            model=action.model.name, action_id=action.id, prior_time_s=event.prior_time_s
        )
        raised = self._drift.update(
            action.model.name,
            success[event.verdict],
            predicted.success_probability if predicted.observations else None,
        )
        self._stats.learn_one(
            model=action.model.name,
            action_id=action.id,
            success=success[event.verdict],
            quality=event.quality,
            time_s=event.generation_time_s,
            prior_time_s=event.prior_time_s,
        )
        if event.facts is not None:
            self._history.learn_one(event.facts)
        if event.record is not None:
            # Quality and time stay with the outcome statistics: River's were worse
            # (README "Which prediction of P(approved) to serve").
            self._river.learn(event.record, action, event.reward,
                              event.verdict is Verdict.APPROVED)
        if self._scaler is not None:
            self._scaler.learn_one(event.features.namespaces)
        self._learned += 1
        self._refresh_lines()
        return raised

    def _refresh_lines(self) -> None:
        drifting = self._drift.alarmed_models()
        for fingerprint, lines in self._lines.items():
            if lines.drifting != drifting:
                self._lines[fingerprint] = ActionLines(self._catalogs[fingerprint], drifting)

    def snapshot(self, keyring: Keyring) -> bytes:
        """Serialised state sealed with ``keyring``; :meth:`restore` on a policy with the same
        fingerprint reloads it."""
        snap = _Snapshot(
            fingerprint=self.fingerprint,
            vw_model=self._bandit.save(),
            stats=pickle.dumps(self._stats, protocol=pickle.HIGHEST_PROTOCOL),
            learned=self._learned,
            history=pickle.dumps(self._history, protocol=pickle.HIGHEST_PROTOCOL),
            drift=pickle.dumps(self._drift, protocol=pickle.HIGHEST_PROTOCOL),
            river=pickle.dumps(self._river, protocol=pickle.HIGHEST_PROTOCOL),
            stacker=b"" if self._stacker is None
            else pickle.dumps(self._stacker, protocol=pickle.HIGHEST_PROTOCOL),
            scaler=b"" if self._scaler is None
            else msgspec.msgpack.encode(self._scaler.state()),
            prior=b"" if self._prior is None else msgspec.msgpack.encode(self._prior.state()),
        )
        return keyring.seal(msgspec.msgpack.encode(snap))

    def restore(self, data: bytes, keyring: Keyring) -> bool:
        """Load a snapshot made by this configuration; False (state untouched) otherwise.
        The seal is verified before anything is decoded: a snapshot not sealed with a secret
        of ``keyring`` raises :class:`~learners.sealed.SealError` unread."""
        snap = msgspec.msgpack.decode(keyring.unseal(data), type=_Snapshot)
        if snap.fingerprint != self.fingerprint:
            return False
        bandit = VWBandit(settings=self.settings, model_data=snap.vw_model)
        # Authenticated by the seal: only this service's own snapshots reach pickle.
        stats = pickle.loads(snap.stats)
        history = pickle.loads(snap.history) if snap.history else None
        monitor = pickle.loads(snap.drift) if snap.drift else None
        river = pickle.loads(snap.river) if snap.river else None
        stacker = pickle.loads(snap.stacker) if snap.stacker else None
        scaler = (FeatureScaler.from_state(msgspec.msgpack.decode(snap.scaler, type=ScalerState))
                  if snap.scaler else None)
        if (self._stacker is not None) != isinstance(stacker, Stacker):
            return False
        if (
            not isinstance(stats, OutcomeStats)
            or not isinstance(history, HistoryStats)
            or not isinstance(monitor, DriftMonitor)
            or not isinstance(river, OnlineOutcomeModels)
        ):
            return False
        if (self._scaler is not None) != isinstance(scaler, FeatureScaler):
            return False
        if (self._prior is not None) != bool(snap.prior):
            return False
        if self._prior is not None:
            self._prior.load(msgspec.msgpack.decode(snap.prior, type=PriorState))
        self._bandit.close()
        self._bandit = bandit
        self._stats = stats
        self._history = history
        self._drift = monitor
        self._river = river
        self._stacker = stacker
        self._scaler = scaler
        self._learned = snap.learned
        self._refresh_lines()
        return True

    def close(self) -> None:
        self._bandit.close()

