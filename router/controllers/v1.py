"""API v1: route decisions, feedback and logged decisions."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter

from learners.context import NO_NUL
from router.dependencies import Caller
from router.schemas import (
    DecisionView,
    FeedbackRequest,
    FeedbackResponse,
    RouteRequest,
    RouteResponse,
)


class V1Controller(Controller):
    path = "/v1"
    tags = ["routing"]  # noqa: RUF012 - Litestar reads this class attribute

    @post("/route", status_code=200, summary="Choose model, temperature and template")
    async def route(
        self,
        data: JSONBody[RouteRequest],
        caller: NamedDependency[Caller],
    ) -> RouteResponse:
        return await caller.routing.route(caller.tenant, data)

    @post("/feedback", status_code=200, summary="Report the outcome of a decision")
    async def feedback(
        self,
        data: JSONBody[FeedbackRequest],
        caller: NamedDependency[Caller],
    ) -> FeedbackResponse:
        return await caller.routing.feedback(caller.tenant, data)

    @get("/decisions/{decision_id:str}", summary="A logged decision and its outcome")
    async def decision(
        self,
        decision_id: Annotated[str, Parameter(max_length=64, pattern=NO_NUL)],
        caller: NamedDependency[Caller],
    ) -> DecisionView:
        return await caller.routing.describe(caller.tenant, decision_id)
