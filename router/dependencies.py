"""Dependency providers of the service; ``create_app`` registers them.

A handler that needs the caller's tenant and the routing service takes one :class:`Caller`
instead of two dependencies: Litestar resolves the dependencies of one level in a task group when
there are several, and that per-request task creation cost more than the provider itself.
"""

from __future__ import annotations

import msgspec
from litestar import Request
from litestar.datastructures import State

from router.auth import Authenticator
from router.services.admin import AdminService
from router.services.routing import RoutingService


class Caller(msgspec.Struct, frozen=True):
    """Who is calling (the tenant its API key maps to) and the service that answers it."""

    tenant: str
    routing: RoutingService


def provide_caller(request: Request[object, object, State]) -> Caller:
    """The tenant of ``request`` (raises AuthenticationError for a missing or unknown key).
    The app's state is read from the request: a second parameter (``state``) is one more
    keyword argument for Litestar to resolve on every route call."""
    state = request.app.state
    authenticator: Authenticator = state.authenticator
    routing: RoutingService = state.routing
    return Caller(tenant=authenticator.tenant_for(request.headers), routing=routing)


def provide_tenant(request: Request[object, object, State], state: State) -> str:
    """The caller's tenant alone (administration endpoints, off the hot path)."""
    authenticator: Authenticator = state.authenticator
    return authenticator.tenant_for(request.headers)


def provide_admin(state: State) -> AdminService:
    admin: AdminService = state.admin
    return admin


def provide_routing(state: State) -> RoutingService:
    routing: RoutingService = state.routing
    return routing


def provide_auth_mode(state: State) -> str:
    authenticator: Authenticator = state.authenticator
    return "api-keys" if authenticator.enabled else "single-tenant, no authentication"
