"""The service's error hierarchy and its one mapping to ``application/problem+json``.

Every error names a stable ``type``, a human ``title`` and ``detail``, and when it is about the
input, the offending ``field`` as a JSON path (``task.description``, ``constraints.models[1]``).
"""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar

from litestar import Request
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
from litestar.response import Response
from litestar.types import ExceptionHandlersMap

logger = logging.getLogger(__name__)

TYPE_PREFIX = "urn:adaptive-router:problem:"


class RouterError(Exception):
    """Base of every error the service reports to callers."""

    status_code: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    slug: ClassVar[str] = "internal"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    @property
    def type(self) -> str:
        return TYPE_PREFIX + self.slug


class InvalidRequestError(RouterError):
    status_code = 422
    title = "Invalid request"
    slug = "invalid-request"


class NoAllowedActionError(InvalidRequestError):
    title = "No allowed action"
    slug = "no-allowed-action"


class UnknownCatalogNameError(InvalidRequestError):
    title = "Unknown catalog name"
    slug = "unknown-catalog-name"


class UnknownProfileError(InvalidRequestError):
    title = "Unknown objective"
    slug = "unknown-objective"


class UnstorableValueError(InvalidRequestError):
    """The database refused a value of this request (e.g. a NUL character in a text column):
    the request is at fault, not the storage, so it is a 4xx that retrying cannot fix."""

    title = "Value cannot be stored"
    slug = "unstorable-value"


class MalformedBodyError(RouterError):
    """The body is not one plain JSON document (nested too deep, or a key given twice)."""

    status_code = 400
    title = "Malformed body"
    slug = "malformed-body"


class UnsupportedMediaTypeError(RouterError):
    status_code = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


class AuthenticationError(RouterError):
    status_code = 401
    title = "Authentication required"
    slug = "unauthenticated"


class DecisionNotFoundError(RouterError):
    status_code = 404
    title = "Decision not found"
    slug = "decision-not-found"


class RequestConflictError(RouterError):
    status_code = 409
    title = "request_id reused"
    slug = "request-id-conflict"


class ForbiddenError(RouterError):
    status_code = 403
    title = "Admin access required"
    slug = "forbidden"


class ModelVersionNotFoundError(RouterError):
    status_code = 404
    title = "Model version not found"
    slug = "model-version-not-found"


class PromotionRefusedError(RouterError):
    status_code = 409
    title = "Promotion refused"
    slug = "promotion-refused"


class StorageUnavailableError(RouterError):
    """The database failed or timed out. The detail never holds the database's own error text
    (that goes to the server log, once per outage): clients see when to retry."""

    status_code = 503
    title = "Storage unavailable"
    slug = "storage-unavailable"
    retry_after_s: ClassVar[int] = 2


def _router_error_to_problem(exc: RouterError) -> ProblemDetailsException:
    extra: dict[str, Any] = {}
    if exc.field is not None:
        extra["field"] = exc.field
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationError) else None
    if isinstance(exc, StorageUnavailableError):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return ProblemDetailsException(
        status_code=exc.status_code,
        type_=exc.type,
        title=exc.title,
        detail=exc.detail,
        extra=extra,
        headers=headers,
    )


_MSGSPEC_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]*)`")


def _json_field(path: str) -> str:
    return path.lstrip(".") or "(body)"


def _validation_to_problem(exc: ValidationException) -> ProblemDetailsException:
    """Litestar's body/parameter validation errors, with the offending field named."""
    errors: list[dict[str, str]] = []
    raw = exc.extra if isinstance(exc.extra, list) else []
    for item in raw:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", ""))
        match = _MSGSPEC_PATH.match(message)
        reason = match.group("reason") if match else message
        path = match.group("path") if match else None
        key = str(item.get("key") or "")
        # Litestar names the whole body "data"; callers know it as the body.
        body_key = "(body)" if key in ("", "data") else key
        field = _json_field(path) if path is not None else body_key
        unknown = _UNKNOWN_FIELD.search(reason)
        if unknown is not None:
            field = unknown.group(1) if field == "(body)" else f"{field}.{unknown.group(1)}"
        errors.append({"field": field, "reason": reason})
    if not errors:
        errors.append({"field": "(body)", "reason": exc.detail or "invalid request"})
    first = errors[0]
    return ProblemDetailsException(
        status_code=422 if exc.status_code == 400 else exc.status_code,
        type_=TYPE_PREFIX + "invalid-request",
        title="Invalid request",
        detail=f"{first['field']}: {first['reason']}",
        extra={"field": first["field"], "errors": errors},
    )


def _http_to_problem(exc: HTTPException) -> ProblemDetailsException:
    slug = {
        400: "malformed-body",
        404: "not-found",
        405: "method-not-allowed",
        413: "body-too-large",
    }.get(exc.status_code, "http-error")
    # Litestar reports bodies that are not valid JSON (bad syntax, NaN, numbers out of range)
    # as a bare 400; the offending field is then the body itself.
    extra = {"field": "(body)"} if exc.status_code in (400, 413) else None
    return ProblemDetailsException(
        status_code=exc.status_code,
        type_=TYPE_PREFIX + slug,
        title=exc.detail,
        detail=exc.detail,
        headers=exc.headers,
        extra=extra,
    )


def _unexpected_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # Unexpected errors stay 500 but keep the problem+json shape; details go to the log only.
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    problem = ProblemDetailsException(
        status_code=500,
        type_=TYPE_PREFIX + "internal",
        title="Internal error",
        detail="The service failed to handle this request; see the service log.",
    )
    return problem.to_response(request)


def create_problem_details_plugin() -> ProblemDetailsPlugin:
    """The one mapping of errors to problem+json; handler lookup walks class hierarchies."""
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            exception_to_problem_detail_map={
                RouterError: _router_error_to_problem,
                ValidationException: _validation_to_problem,
                HTTPException: _http_to_problem,
            }
        )
    )


def unexpected_error_handlers() -> ExceptionHandlersMap:
    """Handlers for errors no other handler claims: a 500 problem, details in the log."""
    return {Exception: _unexpected_handler}
