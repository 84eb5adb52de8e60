"""The OpenAPI document (``/schema/openapi.json``) as the contract the service keeps.

Litestar's generated document misses what the service enforces: it drops ``minimum: 0`` and
puts bounds beside (not inside) the ``oneOf`` of optional fields, has no
``additionalProperties: false``, and lists one 400 with a schema no error has. So
:func:`complete_contract` replaces the body schemas by msgspec's own (msgspec is the validator,
so the document matches it by construction), lists every status each operation can answer
with the problem+json schema, and declares the API-key security schemes (docs/api.md). It runs
on the first request for the document (building it takes about 80 ms, which every app created
by a test would otherwise pay).
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec
from litestar import Litestar, Request
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.routes import HTTPRoute

from router import schemas

REF = "#/components/schemas/{name}"
PROBLEM_MEDIA_TYPE = "application/problem+json"
SECURITY_SCHEMES = {
    "BearerAuth": {"type": "http", "scheme": "bearer",
                   "description": "Authorization: Bearer <API key>"},
    "ApiKeyAuth": {"type": "apiKey", "name": "X-API-Key", "in": "header",
                   "description": "X-API-Key: <API key>"},
}
# Either scheme is enough; keys are required only when some are configured (docs/api.md).
SECURITY: list[dict[str, list[str]]] = [{"BearerAuth": []}, {"ApiKeyAuth": []}]

STATUS_DESCRIPTIONS = {
    400: "Malformed body: not JSON or not UTF-8, NaN or a number out of range, nested too "
    "deeply, or a key given twice (`field` names it)",
    401: "Missing or unknown API key (only when API keys are configured)",
    403: "The caller's tenant is not an admin tenant",
    404: "Not found for the caller's tenant (`field` names the identifier)",
    409: "Conflict with the stored state (`field` names the cause)",
    413: "Body over 1 MiB",
    415: "Body not sent as application/json",
    422: "Invalid request: `field` names the offending field, `errors` lists every one",
    503: "Storage unavailable; retry later",
}
# Statuses an operation answers beyond those its shape implies (see :func:`_statuses`).
SPECIFIC_STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "/v1/route"): (409,),
    ("POST", "/v1/feedback"): (404,),
    ("GET", "/v1/decisions/{decision_id}"): (404,),
    ("POST", "/v1/admin/models/{version}/promote"): (403, 404, 409),
    ("POST", "/v1/admin/models/rollback"): (403, 409),
    ("POST", "/v1/admin/models/retrain"): (403, 422),
}
AUTHENTICATED = frozenset({"caller", "tenant"})  # dependencies that read the API key
STORAGE = frozenset({"caller", "tenant", "routing", "admin"})  # dependencies that reach the log


# Responses whose body is not a problem (or, for /metrics, not JSON): (media type, schema).
OWN_BODIES: dict[tuple[str, str, int], tuple[str, str, dict[str, Any]]] = {
    ("GET", "/ready", 503): ("Not ready: the database is unreachable", "application/json",
                             {"$ref": REF.format(name="Readiness")}),
    ("GET", "/metrics", 200): ("Prometheus text exposition format", "text/plain",
                               {"type": "string"}),
}


class ContractJsonRenderPlugin(JsonRenderPlugin):
    """Serves :func:`complete_contract`'s document, built once on its first request."""

    def __init__(self) -> None:
        super().__init__(path="/openapi.json")
        self._document: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._document is None:
            self._document = msgspec.json.encode(complete_contract(request.app, openapi_schema))
        return self._document


def complete_contract(app: Litestar, document: dict[str, Any]) -> dict[str, Any]:
    """``app``'s OpenAPI ``document`` (as Litestar generates it) with the contract completed.

    Security (and 401) is documented only when API keys are configured: without keys the
    service is open, and the document says so."""
    document = copy.deepcopy(document)
    components = document.setdefault("components", {})
    components.setdefault("schemas", {}).update(_msgspec_schemas())
    authenticator = getattr(app.state, "authenticator", None)
    keys = authenticator is not None and bool(authenticator.enabled)
    if keys:
        components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    paths = document.get("paths", {})
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in paths:
            continue
        item = paths[route.path_format]
        for handler in route.route_handlers:
            if not handler.include_in_schema:
                continue
            parameters = set(handler.parsed_fn_signature.parameters)
            for method in handler.http_methods:
                operation = item.get(method.lower())
                if operation is None:
                    continue
                if keys and parameters & AUTHENTICATED:
                    operation["security"] = copy.deepcopy(SECURITY)
                responses = operation.setdefault("responses", {})
                # Litestar lists a 400 with its own schema for every operation with
                # parameters; the service answers those as problems (422; 400 is for bodies).
                responses.pop("400", None)
                statuses = _statuses(method, route, parameters, keys=keys)
                statuses |= {status for m, p, status in OWN_BODIES
                             if (m, p) == (method, route.path_format)}
                for status in sorted(statuses):
                    responses[str(status)] = _response(method, route.path_format, status)
    return document


def _response(method: str, path: str, status: int) -> dict[str, Any]:
    own = OWN_BODIES.get((method, path, status))
    description, media_type, schema = own or (
        STATUS_DESCRIPTIONS[status], PROBLEM_MEDIA_TYPE, {"$ref": REF.format(name="Problem")}
    )
    return {"description": description, "content": {media_type: {"schema": schema}}}


def _statuses(method: str, route: HTTPRoute, parameters: set[str], *, keys: bool) -> set[int]:
    statuses = set(SPECIFIC_STATUSES.get((method, route.path_format), ()))
    if keys and parameters & AUTHENTICATED:
        statuses.add(401)
    if parameters & STORAGE:
        statuses.add(503)
    if "data" in parameters:
        statuses |= {400, 413, 415, 422}
    if route.path_parameters:
        statuses.add(422)
    return statuses


def _msgspec_schemas() -> dict[str, Any]:
    """msgspec's JSON Schema of every Struct of the API, by component name."""
    types = [
        value
        for value in vars(schemas).values()
        if isinstance(value, type) and issubclass(value, msgspec.Struct)
        and value.__module__ == schemas.__name__
    ]
    _, generated = msgspec.json.schema_components(
        types, schema_hook=_any_value, ref_template=REF
    )
    return generated


def _any_value(kind: type) -> dict[str, Any]:
    if kind is object:  # free-form values (model metrics, gate evidence)
        return {"description": "any JSON value"}
    # msgspec's schema_hook protocol: NotImplementedError means "no schema for this type".
    raise NotImplementedError
