"""Keeps this process's online policy equal to the fold of the outcome log.

The state is one policy per tenant (or one shared, ``[learning] share_across_tenants``):
:class:`~learners.tenant_policies.TenantPolicies`, checkpointed as one blob.

On start: restore the newest checkpoint of this learner configuration, then apply every outcome
after it. On feedback in this process: apply before responding. Outcomes written by other
processes are applied by a background tail (every ``tail_interval_s``). Checkpoints are written
every N outcomes or T seconds, and at shutdown; they are only a cache of the fold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from learners.bandit.settings import BanditSettings
from learners.drift import DriftAlarm
from learners.policy import LearnEvent
from learners.sealed import Keyring
from learners.tenant_policies import TenantPolicies
from router.errors import StorageUnavailableError
from router.services.outcome_gaps import GapPolicy, Sighting
from router.services.shadow import ShadowPolicies, restore_sealed
from router.settings import LearningSettings
from router.storage.repository import EventLog, FoldRead

logger = logging.getLogger(__name__)

# Missing outcome numbers: how long a transaction may take from its number to its transaction id,
# and the last resort when the horizon does not move past them (router/services/outcome_gaps.py).
SETTLE_S = 0.2
GAP_TIMEOUT_S = 30.0
BATCH = 1000
# Outcomes this process wrote that were not next when acknowledged, kept to learn them without
# reading them back (beyond this many, the tail reads them).
MAX_PENDING = 1000


class LearnerService:
    def __init__(
        self,
        *,
        policies: TenantPolicies,
        log: EventLog,
        settings: LearningSettings,
        keyring: Keyring,
        shadows: ShadowPolicies | None = None,
        on_alarm: Callable[[DriftAlarm], None] | None = None,
    ) -> None:
        self.policies = policies
        # Candidate configurations folded over the same outcomes (router/services/shadow.py).
        self.shadows = shadows if shadows is not None else ShadowPolicies()
        self.on_alarm = on_alarm
        self._live = False  # alarms replayed while catching up at start are history
        self.log = log
        self.settings = settings
        self.keyring = keyring
        self.applied_seq = 0
        self._lock = asyncio.Lock()
        self._checkpointed_seq = 0
        self._checkpointed_at = time.monotonic()
        self._gaps = GapPolicy(settle_s=SETTLE_S, timeout_s=GAP_TIMEOUT_S)
        self._pending: dict[int, LearnEvent] = {}
        # Feedback calls waiting for their outcome to be learned after the ones before it.
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self.restored_seq = 0

    @property
    def learner_name(self) -> str:
        return self.policies.checkpoint_name

    async def start(self) -> None:
        """Restore the newest compatible checkpoint, then catch up with the log."""
        newest = await self.log.latest_checkpoint(self.learner_name)
        if newest is not None:
            last_seq, state = newest
            if restore_sealed(self.policies, state, self.keyring, f"at outcome {last_seq}"):
                self.applied_seq = last_seq
                self._checkpointed_seq = last_seq
                self.restored_seq = last_seq
                logger.info("restored learner checkpoint at outcome %d", last_seq)
        await self.shadows.start(self.log, self.applied_seq, self.keyring)
        await self.catch_up()
        self._live = True

    async def catch_up(self) -> int:
        """Apply every outcome in the log after ``applied_seq``; returns how many.

        The log is read without the learner lock, so a feedback call never waits for a read;
        outcomes it learned meanwhile are skipped. Stops at a missing number that a running
        transaction may still commit (the next call goes on from there)."""
        applied = 0
        while True:
            horizon_at = time.monotonic()
            read = await self.log.fold_read(self.applied_seq, BATCH)
            async with self._lock:
                count, blocked = await self._apply_read(read, horizon_at)
            applied += count
            if blocked or len(read.events) < BATCH:
                break
        async with self._lock:
            await self._maybe_checkpoint()
        return applied

    async def apply(self, event: LearnEvent) -> bool:
        """Learn an outcome this process just wrote if it is the next one; True once it is
        learned. Never reads the log: an outcome that is not next (an earlier one committed
        after it, here or in another process) is kept in memory and learned right after the
        ones before it, by their own feedback calls or by the tail (``tail_interval_s``). The
        call waits for that up to ``apply_wait_s()``, so that in the common case a decision
        after an acknowledged feedback has learned from it (DESIGN.md rule 5); past the wait
        it answers False and the outcome is learned later, in order."""
        if event.seq <= self.applied_seq:
            return True
        if event.seq == self.applied_seq + 1:
            async with self._lock:
                if event.seq == self.applied_seq + 1:
                    await self._learn(event)
                    await self._learn_pending()
        if event.seq <= self.applied_seq:
            return True
        if len(self._pending) < MAX_PENDING:
            self._pending[event.seq] = event
        waiter = self._waiters.setdefault(event.seq, asyncio.get_running_loop().create_future())
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.apply_wait_s())
        except TimeoutError:
            if self._waiters.get(event.seq) is waiter:
                del self._waiters[event.seq]
        return event.seq <= self.applied_seq

    def apply_wait_s(self) -> float:
        """How long a feedback call waits for the outcomes before its own: two tail passes,
        at most one second (a dead outcome number is passed over within about that)."""
        return min(2 * self.settings.tail_interval_s, 1.0)

    async def _learn_pending(self) -> None:
        while (event := self._pending.get(self.applied_seq + 1)) is not None:
            await self._learn(event)

    async def _apply_read(self, read: FoldRead, horizon_at: float) -> tuple[int, bool]:
        """Learn the read's outcomes in order; (how many, whether a gap stopped it)."""
        now = time.monotonic()
        if read.horizon is not None and read.events:
            self._gaps.observe(Sighting(seen_upto=read.events[-1].seq, horizon_at=horizon_at,
                                        visible_at=now, xmax=read.horizon.xmax))
        count = 0
        for event in read.events:
            await self._learn_pending()
            if event.seq <= self.applied_seq:
                continue  # learned by a feedback call meanwhile
            if event.seq > self.applied_seq + 1:
                if not self._gaps.passable(event.seq, read.horizon, now):
                    return count, True
                logger.debug("no outcome will have the numbers %d-%d",
                             self.applied_seq + 1, event.seq - 1)
                for seq in sorted(s for s in self._pending if s < event.seq):
                    await self._learn(self._pending[seq])  # committed: this process wrote it
            await self._learn(event)
            count += 1
        await self._learn_pending()
        self._gaps.forget_upto(self.applied_seq)
        return count, False

    async def _learn(self, event: LearnEvent) -> None:
        if not self.policies.has_catalog(event.catalog_fingerprint):
            for catalog in (await self.log.load_catalogs()).values():
                self.policies.add_catalog(catalog)
                self.shadows.add_catalog(catalog)
        raised = self.policies.learn(event)
        self.shadows.learn(event)
        self.applied_seq = event.seq
        self._pending.pop(event.seq, None)
        waiter = self._waiters.pop(event.seq, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        for alarm in raised:
            logger.warning("drift alarm at outcome %d: %s", event.seq, alarm.description)
            if self._live and self.on_alarm is not None:
                self.on_alarm(alarm)

    async def _maybe_checkpoint(self) -> None:
        new = self.applied_seq - self._checkpointed_seq
        if new <= 0:
            return
        overdue = time.monotonic() - self._checkpointed_at >= self.settings.checkpoint_every_s
        if new >= self.settings.checkpoint_every_outcomes or overdue:
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        state = self.policies.snapshot(self.keyring)
        await self.log.save_checkpoint(
            self.learner_name, self.applied_seq, state, self.settings.checkpoints_kept
        )
        await self.shadows.checkpoint(self.log, self.settings.checkpoints_kept, self.keyring)
        self._checkpointed_seq = self.applied_seq
        self._checkpointed_at = time.monotonic()

    async def checkpoint(self) -> None:
        """Write a checkpoint now if anything was learned since the last one."""
        async with self._lock:
            if self.applied_seq > self._checkpointed_seq:
                await self._checkpoint()

    async def switch_policy(self, settings: BanditSettings) -> bool:
        """Serve the bandit configuration ``settings`` from now on, in the state it has learned
        from the log: a copy of a running shadow with that configuration, else its newest
        checkpoint plus the outcomes after it (up to what this process has applied).

        Returns False when it is already served. Learning waits while the state is built.
        """
        async with self._lock:
            catalogs = await self.log.load_catalogs()
            policy = TenantPolicies(
                settings=settings, catalogs=catalogs, drift=self.policies.drift_settings,
                shared=self.policies.shared,
            )
            if policy.fingerprint == self.policies.fingerprint:
                return False
            seq = 0
            state = self.shadows.state_of(policy.fingerprint, self.keyring)
            if state is None:
                state = await self.log.latest_checkpoint(policy.checkpoint_name)
            # A checkpoint ahead of this process cannot be rewound: fold from the start then.
            if state is not None and state[0] <= self.applied_seq and restore_sealed(
                    policy, state[1], self.keyring, f"at outcome {state[0]}"):
                seq = state[0]
            while seq < self.applied_seq:
                events = await self.log.learn_events_after(seq, min(BATCH, self.applied_seq - seq))
                events = [e for e in events if e.seq <= self.applied_seq]
                if not events:
                    break
                for event in events:
                    policy.learn(event)
                seq = events[-1].seq
            for tenant_id, project_id, first in await self.log.project_first_decisions():
                policy.observe_decision(tenant_id, project_id, first)
            previous, self.policies = self.policies, policy
            previous.close()
            if self.applied_seq > 0:
                await self._checkpoint()  # so that a restart finds this configuration's state
            return True

    async def tail_forever(self) -> None:
        """Background task: apply outcomes other processes wrote."""
        while True:
            await asyncio.sleep(self.settings.tail_interval_s)
            try:
                await self.catch_up()
            except StorageUnavailableError:
                pass  # the event log logs the outage, once, and when it ends
            except Exception:
                logger.exception("applying new outcomes from the log failed; retrying")
