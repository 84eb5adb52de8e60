"""Liveness and readiness probes."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency

from router.errors import StorageUnavailableError
from router.schemas import Health, Readiness
from router.services.routing import RoutingService


@get("/health", summary="The process is alive", tags=["operations"])
async def health() -> Health:
    return Health(status="ok")


@get("/ready", summary="Storage reachable and learner caught up", tags=["operations"])
async def ready(
    routing: NamedDependency[RoutingService], auth_mode: NamedDependency[str]
) -> Response[Readiness]:
    try:
        await routing.log.ping()
        log_outcomes = await routing.log.max_seq()
        database = "ok"
    except StorageUnavailableError as exc:
        log_outcomes, database = -1, f"unavailable: {exc.detail}"
    ok = database == "ok"
    body = Readiness(
        status="ready" if ok else "not ready",
        database=database,
        learned_outcomes=routing.learner.applied_seq,
        log_outcomes=log_outcomes,
        restored_checkpoint_seq=routing.learner.restored_seq,
        catalog_actions=len(routing.catalog),
        auth=auth_mode,
    )
    return Response(body, status_code=200 if ok else 503)
