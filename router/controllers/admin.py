"""Statistics and batch-model administration (promote, roll back, retrain)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter

from router.schemas import ModelVersionView, PromoteRequest, PromotionView, Stats
from router.services.admin import AdminService


class StatsController(Controller):
    path = "/v1"
    tags = ["operations"]  # noqa: RUF012 - Litestar reads this class attribute

    @get("/stats", summary="Dataset statistics of the caller's decisions and outcomes")
    async def stats(self, tenant: NamedDependency[str], admin: NamedDependency[AdminService]
                    ) -> Stats:
        return await admin.stats(tenant)

    @get("/models", summary="Registered batch-model versions and their metrics")
    async def models(self, tenant: NamedDependency[str], admin: NamedDependency[AdminService]
                     ) -> list[ModelVersionView]:
        del tenant  # resolving it authenticates the caller; versions are not per tenant
        return await admin.versions()


class AdminController(Controller):
    path = "/v1/admin/models"
    tags = ["admin"]  # noqa: RUF012 - Litestar reads this class attribute

    @post("/{version:str}/promote", status_code=200,
          summary="Make a version current if it beats the current one on the newest hold-out")
    async def promote(
        self,
        version: Annotated[str, Parameter(max_length=64)],
        tenant: NamedDependency[str],
        admin: NamedDependency[AdminService],
        data: JSONBody[PromoteRequest | None] = None,
    ) -> PromotionView:
        return await admin.promote(tenant, version, data.force if data else False)

    @post("/rollback", status_code=200, summary="Undo the newest promotion")
    async def rollback(self, tenant: NamedDependency[str], admin: NamedDependency[AdminService]
                       ) -> ModelVersionView:
        return await admin.rollback(tenant)

    @post("/retrain", status_code=200,
          summary="Train a new version from the event log and apply the promotion gate")
    async def retrain(self, tenant: NamedDependency[str], admin: NamedDependency[AdminService]
                      ) -> dict[str, Any]:
        return await admin.retrain(tenant)
