"""API v1: route decisions, feedback and logged decisions."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter

from router.schemas import (
    DecisionView,
    FeedbackRequest,
    FeedbackResponse,
    RouteRequest,
    RouteResponse,
)
from router.services.routing import RoutingService


class V1Controller(Controller):
    path = "/v1"
    tags = ["routing"]  # noqa: RUF012 - Litestar reads this class attribute

    @post("/route", status_code=200, summary="Choose model, temperature and template")
    async def route(
        self,
        data: JSONBody[RouteRequest],
        tenant: NamedDependency[str],
        routing: NamedDependency[RoutingService],
    ) -> RouteResponse:
        return await routing.route(tenant, data)

    @post("/feedback", status_code=200, summary="Report the outcome of a decision")
    async def feedback(
        self,
        data: JSONBody[FeedbackRequest],
        tenant: NamedDependency[str],
        routing: NamedDependency[RoutingService],
    ) -> FeedbackResponse:
        return await routing.feedback(tenant, data)

    @get("/decisions/{decision_id:str}", summary="A logged decision and its outcome")
    async def decision(
        self,
        decision_id: Annotated[str, Parameter(max_length=64)],
        tenant: NamedDependency[str],
        routing: NamedDependency[RoutingService],
    ) -> DecisionView:
        return await routing.describe(tenant, decision_id)
