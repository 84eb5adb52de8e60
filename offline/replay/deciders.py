"""Target policies that decide from each logged request: a bandit snapshot, the batch models'
greedy choice, and a VW ``cb_adf`` policy trained offline on the older part of the log.

Each answers over the row's allowed actions (its catalog indices) and scatters the answer into
the evaluation's action space. They need :attr:`LogChunk.contexts` (the event log, or a history
file read with a catalog).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import numpy as np

from learners.bandit.action_lines import ActionLines
from learners.bandit.cb_adf import CbAdfPolicy, CbType
from learners.bandit.settings import BanditSettings
from learners.bandit.vw_format import format_shared
from learners.batch.models import BatchModels
from learners.catalog import Catalog
from learners.drift import BanditDriftSettings
from learners.reward import RewardProfile
from learners.sealed import Keyring, SealError
from learners.tenant_policies import TenantPolicies
from offline.replay.context import RowContext
from offline.replay.errors import ReplayError
from offline.replay.log import ActionSpace, FloatArray, LogChunk, LogError, LogSource, LogSummary
from offline.replay.policies import TargetProbabilities, chosen_of


class _ContextPolicy:
    """Shared plumbing: catalog → action-space positions, contexts, scattering."""

    name: str

    def __init__(self, catalogs: dict[str, Catalog]) -> None:
        self.catalogs = dict(catalogs)
        self._positions: dict[str, np.ndarray] = {}

    def actions(self) -> Sequence[str]:
        ids: list[str] = []
        for catalog in self.catalogs.values():
            ids.extend(a.id for a in catalog.actions)
        return ids

    def prepare(self, space: ActionSpace, summary: LogSummary, source: LogSource) -> None:
        return None

    def start(self) -> None:
        return None

    def _contexts(self, chunk: LogChunk) -> Sequence[RowContext]:
        if chunk.contexts is None:
            raise ReplayError(f"{self.name} decides from the request: replay the event log or "
                              "a history file with its context columns")
        return chunk.contexts

    def _position(self, catalog: Catalog, space: ActionSpace) -> np.ndarray:
        positions = self._positions.get(catalog.fingerprint)
        if positions is None:
            positions = space.index(np.asarray([a.id for a in catalog.actions], dtype=object))
            self._positions[catalog.fingerprint] = positions
        return positions



class _RowPolicy(_ContextPolicy, ABC):
    """A policy that decides each logged row from its context alone (:meth:`row`)."""

    def probabilities(self, chunk: LogChunk, space: ActionSpace) -> TargetProbabilities:
        matrix = np.zeros((len(chunk), len(space)), dtype=np.float64)
        for i, context in enumerate(self._contexts(chunk)):
            positions = self._position(context.catalog, space)[list(context.allowed)]
            matrix[i, positions] = self.row(context)
        return TargetProbabilities(matrix=matrix, chosen=chosen_of(matrix, chunk))

    @abstractmethod
    def row(self, context: RowContext) -> Sequence[float] | FloatArray:
        """Probabilities over ``context.allowed`` (same order)."""


def greedy(scores: Sequence[float] | FloatArray) -> FloatArray:
    """One-hot on the first highest score."""
    out = np.zeros(len(scores))
    out[int(np.argmax(np.asarray(scores)))] = 1.0
    return out


class BanditSnapshotPolicy(_RowPolicy):
    """The online VW bandits, evaluated out of sample: for each logged request, the
    exploration probabilities of its tenant's state (or the shared one), from the features
    logged with it, computed by a learner that has not learned that request's outcome.

    ``progressive=True`` (progressive validation): the learner starts from ``snapshot`` (a
    checkpoint holding no outcome of the window; None: a fresh learner) and learns each
    decision's outcome, exactly as the service's fold builds it, right after evaluating it.
    ``progressive=False``: the checkpoint frozen; a decision whose outcome it holds
    (outcome number <= ``learned_through``) would be in sample, so the run stops.
    """

    def __init__(self, *, name: str, settings: BanditSettings, catalogs: dict[str, Catalog],
                 snapshot: bytes | None, keyring: Keyring,
                 drift: BanditDriftSettings | None = None, shared: bool = False,
                 progressive: bool = False, learned_through: int = 0,
                 description: str = "") -> None:
        super().__init__(catalogs)
        self.name = name
        self.description = description
        self.progressive = progressive
        self.learned_through = learned_through
        self._settings, self._drift, self._shared = settings, drift, shared
        self._snapshot, self._keyring = snapshot, keyring
        self.learned = 0
        self._closed = False
        self._policies = self._restore()

    def _restore(self) -> TenantPolicies:
        policies = TenantPolicies(settings=self._settings, catalogs=self.catalogs,
                                  drift=self._drift, shared=self._shared)
        if self._snapshot is None:
            return policies
        try:
            restored = policies.restore(self._snapshot, self._keyring)
        except SealError as exc:
            policies.close()
            raise ReplayError(f"{self.name}: the checkpoint is refused: {exc}") from exc
        if not restored:
            policies.close()
            raise ReplayError(f"{self.name}: the snapshot was made by another bandit "
                              "configuration (the [bandit] settings, feature version or tenant "
                              "sharing differ)")
        return policies

    def start(self) -> None:
        if self.learned or self._closed:
            self._policies.close()
            self._policies = self._restore()
            self.learned = 0
            self._closed = False

    def finish(self) -> None:
        self._policies.close()
        self._closed = True

    def row(self, context: RowContext) -> Sequence[float]:
        logged = context.logged
        if self.progressive:
            if logged is None:
                raise ReplayError(f"{self.name}: progressive validation learns each decision's "
                                  "outcome from the event log; to evaluate a checkpoint frozen "
                                  "on a file, name it: --policy bandit:<checkpoint id>")
        elif logged is not None and logged.seq <= self.learned_through:
            raise ReplayError(
                f"{self.name}: the checkpoint has learned the outcome of decision {logged.id} "
                f"(outcome {logged.seq} <= {self.learned_through}): it would be evaluated in "
                "sample; start the window (--since) after the checkpoint's outcomes, or use "
                "--policy bandit (progressive validation)")
        policy = self._policies.for_tenant(context.tenant_id)
        answer = policy.probabilities(context.features, context.catalog, context.allowed)
        if self.progressive and logged is not None:
            self._policies.learn(logged.learn_event())
            self.learned += 1
        return answer


class BatchGreedyPolicy(_RowPolicy):
    """The action with the highest reward predicted by a batch-model version.

    Predicted reward (under ``profile``): P(success) × reward(approved) + (1 − P(success)) ×
    reward(rejected), both at the predicted quality and median generation time; cost is left
    out (the batch models do not predict it), as the reward profile does for a missing field.
    """

    def __init__(self, *, name: str, models: BatchModels, catalogs: dict[str, Catalog],
                 profile: RewardProfile) -> None:
        super().__init__(catalogs)
        self.name = name
        self.models = models
        self.profile = profile

    def predicted_rewards(self, context: RowContext) -> FloatArray:
        if context.record is None or context.history is None:
            raise LogError(f"{self.name}: a logged decision has no context record (logged "
                           "before batch-model features existed)")
        matrix = self.models.encoder.matrix(context.record, context.history, context.catalog,
                                            context.allowed)
        return self.models.predicted_rewards(matrix, self.profile)

    def row(self, context: RowContext) -> FloatArray:
        return greedy(self.predicted_rewards(context))


class OfflineVWPolicy(_RowPolicy):
    """A greedy VW ``cb_adf`` policy (``cb_type`` ips, dr or mtr) trained on logged rows with
    :meth:`train` before the evaluation (on rows the evaluation does not use)."""

    def __init__(self, *, cb_type: CbType, settings: BanditSettings,
                 catalogs: dict[str, Catalog]) -> None:
        super().__init__(catalogs)
        self.name = f"vw:{cb_type}"
        self._learner = CbAdfPolicy(settings=settings, cb_type=cb_type)
        self._lines = {fp: ActionLines(c) for fp, c in catalogs.items()}

    @property
    def learned(self) -> int:
        return self._learner.learned

    def train(self, chunks: Iterator[LogChunk]) -> None:
        for chunk in chunks:
            for i, context in enumerate(self._contexts(chunk)):
                action = context.catalog.get(str(chunk.actions[i]))
                allowed = list(context.allowed)
                if action is None or action.index not in allowed:
                    raise LogError(f"row {chunk.rows[i]}: logged action {chunk.actions[i]!r} "
                                   "is not among the row's allowed catalog actions")
                lines = self._lines[context.catalog.fingerprint].select(allowed)
                self._learner.learn(format_shared(context.features.namespaces), lines,
                                    allowed.index(action.index), float(chunk.reward[i]),
                                    float(chunk.propensity[i]))

    def row(self, context: RowContext) -> FloatArray:
        lines = self._lines[context.catalog.fingerprint].select(context.allowed)
        out = np.zeros(len(context.allowed))
        out[self._learner.choose(format_shared(context.features.namespaces), lines)] = 1.0
        return out


class ShadowLoggedPolicy(_ContextPolicy):
    """A shadow policy (docs/learning.md), from the probabilities it logged beside each
    served decision: exact, like ``logged``. Every row must carry them, all from one
    configuration (the fingerprint in the logged version)."""

    def __init__(self, shadow: str, catalogs: dict[str, Catalog]) -> None:
        super().__init__(catalogs)
        self.shadow = shadow
        self.name = f"shadow:{shadow}"
        self.fingerprint: str | None = None
        self.versions: set[str] = set()

    def probabilities(self, chunk: LogChunk, space: ActionSpace) -> TargetProbabilities:
        matrix = np.zeros((len(chunk), len(space)), dtype=np.float64)
        missing: list[int] = []
        for i, context in enumerate(self._contexts(chunk)):
            decided = (context.shadows or {}).get(self.shadow)
            if decided is None:
                missing.append(int(chunk.rows[i]))
                continue
            if len(decided.probabilities) != len(context.allowed):
                raise LogError(f"row {chunk.rows[i]}: {self.name} logged "
                               f"{len(decided.probabilities)} probabilities for "
                               f"{len(context.allowed)} allowed actions")
            fingerprint = decided.version.rpartition(".")[0]
            if self.fingerprint is None:
                self.fingerprint = fingerprint
            elif fingerprint != self.fingerprint:
                raise ReplayError(
                    f"{self.name} changed configuration in this window (bandit {self.fingerprint}"
                    f", then {fingerprint} from row {chunk.rows[i]}): choose a window with "
                    "--since/--until that holds one")
            self.versions.add(decided.version)
            positions = self._position(context.catalog, space)[list(context.allowed)]
            matrix[i, positions] = decided.probabilities
        if missing:
            shown = ", ".join(str(r) for r in missing[:5])
            raise LogError(f"{self.name}: {len(missing)} decisions of this window (rows {shown}"
                           f"{', …' if len(missing) > 5 else ''}) were made without this shadow "
                           "(not configured then); start the window with --since after it was "
                           "added")
        return TargetProbabilities(matrix=matrix, chosen=chosen_of(matrix, chunk))


class SliceLog:
    """Rows ``start`` (inclusive) to ``stop`` (exclusive) of another source, by position."""

    def __init__(self, source: LogSource, start: int, stop: int | None = None) -> None:
        self.source = source
        self.start = start
        self.stop = stop

    @property
    def name(self) -> str:
        end = "" if self.stop is None else str(self.stop)
        return f"{self.source.name} [rows {self.start + 1}..{end}]"

    def chunks(self) -> Iterator[LogChunk]:
        position = 0
        for chunk in self.source.chunks():
            n = len(chunk)
            low = max(self.start - position, 0)
            high = n if self.stop is None else min(self.stop - position, n)
            position += n
            if high > low:
                yield chunk if (low, high) == (0, n) else _slice(chunk, low, high)
            if self.stop is not None and position >= self.stop:
                return


def _slice(chunk: LogChunk, low: int, high: int) -> LogChunk:
    return LogChunk(
        rows=chunk.rows[low:high], actions=chunk.actions[low:high],
        propensity=chunk.propensity[low:high], reward=chunk.reward[low:high],
        timestamp=chunk.timestamp[low:high],
        action=chunk.action[low:high] if len(chunk.action) else chunk.action,
        logged=None if chunk.logged is None else chunk.logged[low:high],
        allowed=None if chunk.allowed is None else chunk.allowed[low:high],
        contexts=None if chunk.contexts is None else chunk.contexts[low:high],
        logged_known=None if chunk.logged_known is None else chunk.logged_known[low:high])
