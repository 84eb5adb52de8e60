"""Batch retraining triggered by a drift alarm (``[drift] retrain_on_alarm = true``).

A *success dropped* alarm means the logged history now disagrees with the world the current
batch models were trained on. One retrain runs at a time in the background; the new version goes
through the usual promotion gate, and a running service picks it up like any promotion.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from learners.batch.training import TrainingError
from learners.drift import DriftAlarm
from router.services.models import ModelService
from router.services.promotion import train_and_register
from router.settings import Settings

logger = logging.getLogger(__name__)


class DriftRetrainer:
    def __init__(self, engine: AsyncEngine, settings: Settings, models: ModelService) -> None:
        self.engine = engine
        self.settings = settings
        self.models = models
        self.task: asyncio.Task[None] | None = None
        self.runs = 0

    def __call__(self, alarm: DriftAlarm) -> None:
        if not self.settings.drift.retrain_on_alarm:
            return
        if self.task is not None and not self.task.done():
            logger.info("drift alarm (%s): a retrain is already running", alarm.description)
            return
        self.task = asyncio.get_running_loop().create_task(self._retrain(alarm),
                                                           name="drift-retrain")

    async def _retrain(self, alarm: DriftAlarm) -> None:
        self.runs += 1
        try:
            report = await train_and_register(
                self.engine, self.settings, self.models.keyring,
                source=f"the event log (drift: {alarm.description})",
            )
        except TrainingError as exc:
            logger.warning("drift retrain skipped: %s", exc)
            return
        except Exception:
            logger.exception("drift retrain failed")
            return
        await self.models.refresh()
        logger.info("drift retrain registered version %s (%s)", report.version, report.status)
