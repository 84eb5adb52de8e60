"""Schemathesis over ``/schema/openapi.json``: generated valid and invalid requests to every
operation, without API keys, with keys configured and sent, and with keys configured but not
sent. Every response must be documented (status, content type, schema), no 5xx, and every 4xx
a problem+json. Derandomized, so a CI failure reproduces locally.
"""

from __future__ import annotations

import tempfile
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth

from router.app import create_app
from tests.support import make_settings

KEYS = '{"key-of-acme-123": "acme", "key-of-admin-9": "default"}'
MODES = {
    "no-keys": ({}, {}),
    # Sent as X-API-Key, which replaces the random one Schemathesis generates for ApiKeyAuth.
    "key-sent": ({"ROUTER__AUTH__API_KEYS": KEYS}, {"X-API-Key": "key-of-admin-9"}),
    "key-missing": ({"ROUTER__AUTH__API_KEYS": KEYS}, {}),
}
EXAMPLES = 50  # per operation and mode: about 2,400 cases in all
calls: list[int] = []


# Schemathesis's lazy ``from_fixture`` loader does not run under pytest 9, so the apps are
# built at import (create_app does no I/O; the lifespan, which opens the database, runs when
# Schemathesis first calls the app).
DATABASES = tempfile.TemporaryDirectory(prefix="router-schemathesis-")


def load_schema(mode: str) -> Any:
    settings_ = make_settings(
        f"sqlite+aiosqlite:///{DATABASES.name}/{mode}.db",
        **MODES[mode][0],
    )
    # With keys configured, the document itself needs one.
    loader_headers = MODES["key-sent"][1] if MODES[mode][0] else {}
    schema = schemathesis.openapi.from_asgi(
        "/schema/openapi.json", create_app(settings_), headers=loader_headers
    )
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True
    )
    checks = schema.config.checks
    # Documented refusals of a body that breaks the schema: 413 (over 1 MiB) among them.
    checks.negative_data_rejection.expected_statuses = [
        "400", "401", "403", "404", "405", "409", "413", "415", "422"
    ]
    # A body the schema allows may still name something the catalog lacks, ask for an
    # action no catalog entry satisfies, or reuse a request_id: 404, 409 and 422 say so.
    checks.positive_data_acceptance.expected_statuses = [
        "2xx", "401", "403", "404", "409", "422"
    ]
    return schema


no_keys = load_schema("no-keys")
with_keys = load_schema("key-sent")


def check(case: Any, headers: dict[str, str], *, own_key: bool = False) -> None:
    response = case.call(headers=headers)
    calls.append(response.status_code)
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and case.path != "/ready":  # /ready's 503 is a Readiness
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith("application/problem+json"), response.text
    # With our own valid key replacing the generated one, Schemathesis' "ignored auth" check
    # would see its (replaced) random credentials accepted; the key-missing run keeps it.
    case.validate_response(
        response, headers=headers, excluded_checks=[ignored_auth] if own_key else None
    )


HYPOTHESIS = settings(max_examples=EXAMPLES, derandomize=True, deadline=None,
                      suppress_health_check=list(HealthCheck))


@no_keys.parametrize()
@HYPOTHESIS
def test_without_keys(case: Any) -> None:
    check(case, {})


@with_keys.parametrize()
@HYPOTHESIS
def test_with_a_key(case: Any) -> None:
    check(case, MODES["key-sent"][1], own_key=True)


@with_keys.parametrize()
@HYPOTHESIS
def test_with_keys_configured_and_none_sent(case: Any) -> None:
    check(case, {})
