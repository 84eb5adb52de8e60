"""Keeps this process's online policy equal to the fold of the outcome log.

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

from learners.bandit.vw_bandit import BanditSettings
from learners.drift import DriftAlarm
from learners.policy import LearnEvent, OnlinePolicy
from learners.sealed import Keyring
from router.services.shadow import ShadowPolicies, restore_sealed
from router.settings import LearningSettings
from router.storage.repository import EventLog

logger = logging.getLogger(__name__)

# A missing sequence number can be a transaction that has not committed yet (PostgreSQL hands
# out numbers before commit) or one that rolled back. Wait this long before skipping it.
GAP_TIMEOUT_S = 5.0
BATCH = 1000


class LearnerService:
    def __init__(
        self,
        *,
        policy: OnlinePolicy,
        log: EventLog,
        settings: LearningSettings,
        keyring: Keyring,
        shadows: ShadowPolicies | None = None,
        on_alarm: Callable[[DriftAlarm], None] | None = None,
    ) -> None:
        self.policy = policy
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
        self._gap_since: float | None = None
        self.restored_seq = 0

    @property
    def learner_name(self) -> str:
        return self.policy.fingerprint

    async def start(self) -> None:
        """Restore the newest compatible checkpoint, then catch up with the log."""
        newest = await self.log.latest_checkpoint(self.learner_name)
        if newest is not None:
            last_seq, state = newest
            if restore_sealed(self.policy, state, self.keyring, f"at outcome {last_seq}"):
                self.applied_seq = last_seq
                self._checkpointed_seq = last_seq
                self.restored_seq = last_seq
                logger.info("restored learner checkpoint at outcome %d", last_seq)
        await self.shadows.start(self.log, self.applied_seq, self.keyring)
        await self.catch_up()
        self._live = True

    async def catch_up(self) -> int:
        """Apply every outcome in the log after ``applied_seq``; returns how many."""
        async with self._lock:
            applied = 0
            while True:
                events = await self.log.learn_events_after(self.applied_seq, BATCH)
                count = await self._apply_contiguous(events)
                applied += count
                if count < BATCH:
                    break
            await self._maybe_checkpoint()
            return applied

    async def apply(self, event: LearnEvent) -> bool:
        """Apply an outcome this process just wrote; True once it (and all before) is learned."""
        async with self._lock:
            if event.seq == self.applied_seq + 1:
                await self._learn(event)
            elif event.seq > self.applied_seq:
                events = await self.log.learn_events_after(
                    self.applied_seq, event.seq - self.applied_seq
                )
                await self._apply_contiguous(events)
            await self._maybe_checkpoint()
            return self.applied_seq >= event.seq

    async def _apply_contiguous(self, events: list[LearnEvent]) -> int:
        count = 0
        for event in events:
            if event.seq != self.applied_seq + 1:
                now = time.monotonic()
                if self._gap_since is None:
                    self._gap_since = now
                if now - self._gap_since < GAP_TIMEOUT_S:
                    break
                logger.warning(
                    "skipping outcome numbers %d-%d", self.applied_seq + 1, event.seq - 1
                )
            await self._learn(event)
            count += 1
        return count

    async def _learn(self, event: LearnEvent) -> None:
        if not self.policy.has_catalog(event.catalog_fingerprint):
            for catalog in (await self.log.load_catalogs()).values():
                self.policy.add_catalog(catalog)
                self.shadows.add_catalog(catalog)
        raised = self.policy.learn(event)
        self.shadows.learn(event)
        self.applied_seq = event.seq
        self._gap_since = None
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
        state = self.policy.snapshot(self.keyring)
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
            policy = OnlinePolicy(
                settings=settings, catalogs=catalogs, drift=self.policy.drift_settings
            )
            if policy.fingerprint == self.policy.fingerprint:
                policy.close()
                return False
            seq = 0
            state = self.shadows.state_of(policy.fingerprint, self.keyring)
            if state is None:
                state = await self.log.latest_checkpoint(policy.fingerprint)
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
                policy.history.observe_decision(tenant_id, project_id, first)
            previous, self.policy = self.policy, policy
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
            except Exception:
                logger.exception("applying new outcomes from the log failed; retrying")
