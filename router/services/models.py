"""The batch models this process serves: the registry's current version, reloaded on change.

Every process polls the registry (one indexed lookup) every ``poll_interval_s`` and loads a new
current version in a worker thread, so a promotion or rollback reaches running services without
a restart. Until a version is promoted, :attr:`ModelService.current` is ``None`` and route
predictions come from the online learners and catalog priors.

A loaded version serves at once with the boosters' own predictors while a worker thread prepares
its native forests (:mod:`learners.batch.compiled`); the verified forests take over when ready,
and a missing compiler only costs speed (logged once per version).

Artifacts are sealed (:mod:`learners.sealed`): a version whose seal does not verify is never
decoded; it is refused with one logged error and this process keeps serving what it has.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import msgspec
from sqlalchemy.exc import DBAPIError

from learners.batch.models import BatchModels, load_models
from learners.sealed import Keyring, SealError
from router.errors import StorageUnavailableError
from router.storage.registry import ModelRegistry

logger = logging.getLogger(__name__)


@functools.cache
def _compiler() -> ThreadPoolExecutor:
    """One background thread per process compiles versions, one at a time."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-compile")


class LoadedModels(msgspec.Struct, frozen=True):
    version: str
    models: BatchModels


class ModelService:
    def __init__(
        self,
        registry: ModelRegistry,
        *,
        keyring: Keyring,
        poll_interval_s: float,
        compile_models: bool = True,
        compile_dir: str = "",
    ) -> None:
        self.registry = registry
        self.keyring = keyring
        self.poll_interval_s = poll_interval_s
        self.compile_models = compile_models
        self.compile_dir = (
            Path(compile_dir) if compile_dir
            else Path(tempfile.gettempdir()) / "adaptive-router-compiled"
        )
        self.current: LoadedModels | None = None
        self._compiling: Future[None] | None = None
        self.refused: set[str] = set()  # versions whose artifact failed its seal

    async def wait_compiled(self) -> bool:
        """Wait for the current version's compilation; True when it serves compiled."""
        if self._compiling is not None:
            await asyncio.wrap_future(self._compiling)
        loaded = self.current
        return loaded is not None and loaded.models.compiled is not None

    def _compile(self, loaded: LoadedModels) -> None:
        problems = loaded.models.prepare_serving(self.compile_dir)
        for problem in problems:
            logger.warning("batch model version %s: %s; serving that part with the boosters' "
                           "own predictors", loaded.version, problem)
        if not problems:
            logger.info("batch model version %s now serves compiled predictors", loaded.version)

    async def refresh(self) -> bool:
        """Load the registry's current version if it changed; True when something changed."""
        version = await self.registry.current_version()
        loaded = self.current
        if version == (loaded.version if loaded else None) or version in self.refused:
            return False
        if version is None:
            self.current = None
            logger.info("no current batch model version: serving online predictions")
            return True
        data = await self.registry.artifact(version)
        try:
            models = await asyncio.to_thread(load_models, data, self.keyring)
        except SealError as exc:
            self.refused.add(version)
            logger.error("batch model version %s refused, not loaded: %s; still serving %s",
                         version, exc, loaded.version if loaded else "without batch models")
            return False
        self.current = LoadedModels(version=version, models=models)
        logger.info("serving batch model version %s", version)
        if self.compile_models:
            self._compiling = _compiler().submit(self._compile, self.current)
        return True

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self.refresh()
            except (StorageUnavailableError, DBAPIError, OSError, TimeoutError):
                pass  # the event log's tail logs the outage, once, and when it ends
            except Exception:
                logger.exception("loading the current batch model version failed; retrying")
