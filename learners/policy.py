"""The online policy: a VW bandit plus outcome statistics, a deterministic fold over outcomes.

State is a pure function of the ordered outcomes it learned from (DESIGN.md rule 2), so a
snapshot plus the outcomes after it reproduces the state of a process that never stopped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
import numpy as np

from learners.bandit.action_lines import ActionLines
from learners.bandit.settings import BanditSettings
from learners.bandit.vw_bandit import BanditEvent, BanditQuery, VWBandit
from learners.catalog import Catalog
from learners.constant_features import ConstantFeatures, ConstantQuery
from learners.drift import BanditDriftSettings, DriftAlarm, DriftMonitor, DriftObservation
from learners.features import ContextFeatures, ContextRecord, Namespaces
from learners.history import HistoryFeatures, HistoryQuery, HistoryStats, OutcomeFacts
from learners.online_models import OnlineOutcomeModels, RiverOutcome, RiverQuery
from learners.online_stats import ActionPrediction, ActionQuery, OutcomeObservation, OutcomeStats
from learners.protocol import OnlineLearner, SnapshotError
from learners.reward import Verdict
from learners.scaling import FeatureScaler
from learners.sealed import Keyring
from learners.stacking import FloatArray, StackedOutcome, Stacker

FEATURE_VERSION = "9"  # 3: drift_alarm model feature; 4: River outcome models in the state;
# 5: SquareCB over cb_adf costs, learned without importance weights (and the optional stacker);
# 6: River crosses over hashed task types, languages and agents; bounded, msgpack history;
# 7: numeric caller features standardised online (learners/scaling.py); 8: indicator action
# features only (no price, latency, temperature or prompt-size magnitudes), SquareCB's γ by √K;
# 9: snapshots of each component through learners/protocol.py (older checkpoints are refused
# and the state is folded again from the event log); context features constant in every learned
# outcome left out (learners/constant_features.py)
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


class _Snapshot(msgspec.Struct, frozen=True):
    fingerprint: str
    learned: int
    components: dict[str, bytes]  # component name -> OnlineLearner.snapshot()


class _Components:
    """The online learners the policy composes, each an :class:`~learners.protocol.
    OnlineLearner` built from the policy's settings."""

    def __init__(self, settings: BanditSettings, drift: BanditDriftSettings) -> None:
        self.bandit = VWBandit(settings=settings)
        self.stats = OutcomeStats()
        self.history = HistoryStats(settings.history_keys)
        self.drift = DriftMonitor(drift)
        self.river = OnlineOutcomeModels(buckets=settings.river_buckets)
        # [bandit] stack_river: SquareCB over a ridge stack of VW's and River's predicted
        # rewards, starting from "VW alone" (README "Learning quality and drift").
        self.stacker = Stacker(prior=(0.0, 1.0, 0.0)) if settings.stack_river else None
        self.scaler = FeatureScaler() if settings.standardise_features else None
        self.constant = ConstantFeatures() if settings.drop_constant_features else None

    def named(self) -> dict[str, OnlineLearner[Any, Any, Any]]:
        """Every component present, by name."""
        named: dict[str, OnlineLearner[Any, Any, Any] | None] = {
            "bandit": self.bandit, "stats": self.stats, "history": self.history,
            "drift": self.drift, "river": self.river, "stacker": self.stacker,
            "scaler": self.scaler, "constant": self.constant,
        }
        return {name: learner for name, learner in named.items() if learner is not None}

    def snapshot(self) -> dict[str, bytes]:
        return {name: learner.snapshot() for name, learner in self.named().items()}

    def restore(self, states: dict[str, bytes]) -> None:
        """Load every component's state; :class:`SnapshotError` if one refuses it or the
        components differ (another stacking or scaling setting)."""
        named = self.named()
        if set(states) != set(named):
            raise SnapshotError(f"a snapshot of {sorted(states)}, not {sorted(named)}")
        for name, learner in named.items():
            learner.restore(states[name])


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
        self._learners = _Components(settings, self.drift_settings)
        drift_text = msgspec.json.encode(self.drift_settings).decode()
        text = (f"{FEATURE_VERSION}|{self._learners.bandit.arguments}|{drift_text}"
                f"|{settings.history_keys}|{settings.river_buckets}|{settings.standardise_features}"
                f"|{settings.drop_constant_features}|{settings.drop_constant_actions}")
        self._fingerprint = hashlib.sha256(text.encode()).hexdigest()[:16]
        self._learned = 0

    @property
    def active_alarms(self) -> list[DriftAlarm]:
        """Drift alarms still in their adaptation period, by model then stream."""
        return self._learners.drift.active

    @property
    def raised_alarms(self) -> Sequence[DriftAlarm]:
        """Every drift alarm raised so far, oldest first."""
        return self._learners.drift.history

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
            self._lines[catalog.fingerprint] = ActionLines(
                catalog, self._learners.drift.alarmed_models())

    def has_catalog(self, fingerprint: str) -> bool:
        return fingerprint in self._catalogs

    def known_history(self, query: HistoryQuery) -> HistoryFeatures:
        """The history features known now (learned outcomes and observed decisions)."""
        return self._learners.history.predict_one(query)

    def observe_decision(self, tenant_id: str, project_id: str | None, at: datetime) -> None:
        """Record a decision of ``project_id`` at ``at`` (its project's age counts from the
        first)."""
        self._learners.history.observe_decision(tenant_id, project_id, at)

    def history_sizes(self) -> dict[str, int]:
        """Keys held per kind of history aggregate (each at most ``[bandit] history_keys``)."""
        return self._learners.history.sizes()

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
        query = self._bandit_query(features, catalog, allowed)
        if not self._stacking(record):
            return self._learners.bandit.predict_one(query)
        stacker = self._learners.stacker
        assert stacker is not None  # _stacking checked both
        assert record is not None
        columns = self._stack_columns(query, catalog, record)
        return self._learners.bandit.squarecb(-stacker.predict_one(columns))

    def bandit_namespaces(self, features: ContextFeatures) -> Namespaces:
        """A context's namespaces as the bandit sees them: numeric caller features
        standardised (``[bandit] standardise_features``), features constant so far left out
        (``[bandit] drop_constant_features``)."""
        raw = features.namespaces
        scaler, constant = self._learners.scaler, self._learners.constant
        seen = raw if scaler is None else scaler.predict_one(raw)
        return seen if constant is None else constant.predict_one(ConstantQuery(raw, seen))

    def _bandit_query(self, features: ContextFeatures, catalog: Catalog,
                      allowed: Sequence[int]) -> BanditQuery:
        return BanditQuery(namespaces=self.bandit_namespaces(features),
                           actions=self._lines[catalog.fingerprint], allowed=list(allowed))

    def _stacking(self, record: ContextRecord | None) -> bool:
        return (self._learners.stacker is not None and record is not None
                and self._learners.river.learned >= RIVER_MIN_OUTCOMES)

    def _stack_columns(self, query: BanditQuery, catalog: Catalog,
                       record: ContextRecord) -> FloatArray:
        """``[1, VW's predicted reward, River's predicted reward]`` of each allowed action."""
        costs = self._learners.bandit.predicted_costs(query)
        river = self._learners.river.predict_one(
            RiverQuery(record=record, actions=[catalog.actions[i] for i in query.allowed]))
        return np.column_stack([np.ones(len(query.allowed)), -costs,
                                np.asarray(river.rewards)])

    def predicted_rewards(self, features: ContextFeatures, catalog: Catalog,
                          allowed: Sequence[int]) -> list[float]:
        """VW's predicted reward of each allowed action (SquareCB only: the other explorations
        predict probabilities), before the cap at ``max_reward`` that SquareCB applies."""
        costs = self._learners.bandit.predicted_costs(
            self._bandit_query(features, catalog, allowed))
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
        stats = self._learners.stats.predict_one(ActionQuery(
            model=action.model.name, action_id=action.id, prior_time_s=prior_time_s))
        success = None if record is None else self.river_success(record, catalog, index)
        if success is None:
            return stats
        return msgspec.structs.replace(stats, success_probability=success)

    def river_success(self, record: ContextRecord, catalog: Catalog, index: int) -> float | None:
        """River's P(approved) of one action in this context; None before it has learned
        ``RIVER_MIN_OUTCOMES`` outcomes."""
        river = self._learners.river
        if river.learned < RIVER_MIN_OUTCOMES:
            return None
        return river.predict_one(RiverQuery(record=record, actions=[catalog.actions[index]])
                                 ).success[0]

    def learn(self, event: LearnEvent) -> list[DriftAlarm]:
        """Fold in one outcome using the features and propensity logged at decision time;
        returns the drift alarms it raised.

        The action lines carry the drift flags as they stand when the outcome is folded in
        (a function of the outcomes before it), so a replay reproduces them exactly. With
        ``stack_river`` the stacker learns the chosen action's predictions as they stand before
        this outcome is folded in (in the service, the decision's own when no other outcome
        came between)."""
        learners = self._learners
        catalog = self._catalogs[event.catalog_fingerprint]
        action = catalog.actions[event.allowed[event.chosen_position]]
        namespaces = self.bandit_namespaces(event.features)
        lines = self._lines[event.catalog_fingerprint]
        if self._stacking(event.record):
            assert learners.stacker is not None
            assert event.record is not None
            chosen = BanditQuery(namespaces=namespaces, actions=lines, allowed=[action.index])
            columns = self._stack_columns(chosen, catalog, event.record)
            learners.stacker.learn_one(StackedOutcome(columns=columns[0], reward=event.reward))
        learners.bandit.learn_one(BanditEvent(
            namespaces=namespaces, actions=lines, allowed=event.allowed,
            chosen_position=event.chosen_position, reward=event.reward,
            propensity=event.propensity))
        success = {Verdict.APPROVED: 1.0, Verdict.MODIFIED: 0.5, Verdict.REJECTED: 0.0}
        predicted = learners.stats.predict_one(ActionQuery(
            model=action.model.name, action_id=action.id, prior_time_s=event.prior_time_s))
        raised_before = len(learners.drift.history)
        learners.drift.learn_one(DriftObservation(
            model=action.model.name, success=success[event.verdict],
            predicted=predicted.success_probability if predicted.observations else None))
        learners.stats.learn_one(OutcomeObservation(
            model=action.model.name, action_id=action.id, success=success[event.verdict],
            quality=event.quality, time_s=event.generation_time_s,
            prior_time_s=event.prior_time_s))
        if event.facts is not None:
            learners.history.learn_one(event.facts)
        if event.record is not None:
            # Quality and time stay with the outcome statistics: River's were worse
            # (README "Which prediction of P(approved) to serve").
            learners.river.learn_one(RiverOutcome(
                record=event.record, action=action, reward=event.reward,
                approved=event.verdict is Verdict.APPROVED))
        if learners.scaler is not None:
            learners.scaler.learn_one(event.features.namespaces)
        if learners.constant is not None:
            learners.constant.learn_one(event.features.namespaces)
        self._learned += 1
        self._refresh_lines()
        return learners.drift.history[raised_before:]

    def _refresh_lines(self) -> None:
        drifting = self._learners.drift.alarmed_models()
        for fingerprint, lines in self._lines.items():
            if lines.drifting != drifting:
                self._lines[fingerprint] = ActionLines(self._catalogs[fingerprint], drifting)

    def snapshot(self, keyring: Keyring) -> bytes:
        """Serialised state sealed with ``keyring``; :meth:`restore` on a policy with the same
        fingerprint reloads it."""
        snap = _Snapshot(fingerprint=self.fingerprint, learned=self._learned,
                         components=self._learners.snapshot())
        return keyring.seal(msgspec.msgpack.encode(snap))

    def restore(self, data: bytes, keyring: Keyring) -> bool:
        """Load a snapshot made by this configuration; False (state untouched) otherwise.
        The seal is verified before anything is decoded: a snapshot not sealed with a secret
        of ``keyring`` raises :class:`~learners.sealed.SealError` unread."""
        try:
            snap = msgspec.msgpack.decode(keyring.unseal(data), type=_Snapshot)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False  # an older format (its fingerprint differs too)
        if snap.fingerprint != self.fingerprint:
            return False
        learners = _Components(self.settings, self.drift_settings)
        try:
            # Authenticated by the seal: only this service's own snapshots reach pickle.
            learners.restore(snap.components)
        except SnapshotError:
            learners.bandit.close()
            return False
        self._learners.bandit.close()
        self._learners = learners
        self._learned = snap.learned
        self._refresh_lines()
        return True

    def close(self) -> None:
        self._learners.bandit.close()
