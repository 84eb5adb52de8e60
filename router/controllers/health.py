"""Liveness and readiness probes."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency

from router.errors import StorageUnavailableError
from router.schemas import Health, Readiness
from router.services.routing import RoutingService
from router.storage.repository import OutcomeCounts


@get("/health", summary="The process is alive", tags=["operations"])
async def health() -> Health:
    return Health(status="ok")


@get("/ready", summary="Storage reachable and learner caught up", tags=["operations"])
async def ready(
    routing: NamedDependency[RoutingService], auth_mode: NamedDependency[str]
) -> Response[Readiness]:
    counts: OutcomeCounts | None = None
    try:
        counts = await routing.log.outcome_counts(routing.learner.applied_seq)
        database = "ok"
    except StorageUnavailableError as exc:
        database = f"unavailable: {exc.detail}"
    ok = counts is not None
    body = Readiness(
        status="ready" if ok else "not ready",
        database=database,
        learned_outcomes=None if counts is None else counts.logged - counts.behind,
        log_outcomes=None if counts is None else counts.logged,
        behind_outcomes=None if counts is None else counts.behind,
        restored_checkpoint_seq=routing.learner.restored_seq,
        catalog_actions=len(routing.catalog),
        auth=auth_mode,
    )
    if ok:
        return Response(body)
    retry = {"Retry-After": str(StorageUnavailableError.retry_after_s)}
    return Response(body, status_code=503, headers=retry)
