"""Hostile input: every case gets a 4xx problem+json naming the field, never a 5xx, and one
tenant's bad input never fails another tenant's requests (SQLite and PostgreSQL).

tests/service/test_bad_input.py holds the ordinary validation cases (bounds, unknown fields).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from router.app import create_app
from router.errors import UnstorableValueError
from router.storage.batching import DecisionWriter
from router.storage.database import create_engine, migrate
from router.storage.repository import EventLog
from router.storage.rows import DecisionRow, ModelVersions
from tests.support import make_settings

TASK = {"type": "backend", "language": "python", "description": "Build a REST API"}
KEYS = '{"key-of-acme-123": "acme", "key-of-evil-456": "evil"}'
ACME = {"Authorization": "Bearer key-of-acme-123"}
EVIL = {"X-API-Key": "key-of-evil-456"}
NUL = "a\x00b"


def route_with(path: str, value: Any) -> dict[str, Any]:
    """A valid route body with ``value`` at the dotted ``path`` (``[0]`` for a list item)."""
    body: dict[str, Any] = {"task": dict(TASK)}
    *parents, leaf = path.split(".")
    node = body
    for key in parents:
        node = node.setdefault(key, {})
    if leaf.endswith("[0]"):
        node[leaf[:-3]] = [value]
    else:
        node[leaf] = value
    return body


def assert_problem(response: Any, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("urn:adaptive-router:problem:")
    assert problem["field"] == field, problem
    assert problem["detail"]
    return problem


# Every string of a route body that reaches the event log, with the field the problem names.
ROUTE_STRINGS = [
    ("task.type", "task.type"),
    ("task.language", "task.language"),
    ("task.description", "task.description"),
    ("task.framework", "task.framework"),
    ("task.requirements[0]", "task.requirements[0]"),
    ("context.project_id", "context.project_id"),
    ("context.user_id", "context.user_id"),
    ("context.agent", "context.agent"),
    ("request_id", "request_id"),
    ("objective", "objective"),
    ("constraints.models[0]", "constraints.models[0]"),
    ("constraints.templates[0]", "constraints.templates[0]"),
    # msgspec elides dict keys in its error path.
    ("features.name", "features[...]"),
]


async def test_nul_in_any_stored_string_is_a_422_naming_it(
    client: AsyncTestClient[Any],
) -> None:
    for path, field in ROUTE_STRINGS:
        assert_problem(await client.post("/v1/route", json=route_with(path, NUL)), 422, field)
    decision = (await client.post("/v1/route", json={"task": TASK})).json()
    for field in ("decision_id", "code"):
        body = {"decision_id": decision["decision_id"], "outcome": "approved", field: NUL}
        assert_problem(await client.post("/v1/feedback", json=body), 422, field)
    assert_problem(await client.get("/v1/decisions/a%00b"), 422, "decision_id")
    assert_problem(await client.post("/v1/admin/models/a%00b/promote"), 422, "version")
    assert (await client.get("/ready")).json()["log_outcomes"] == 0
    assert (await client.get(f"/v1/decisions/{decision['decision_id']}")).status_code == 200


async def test_one_tenants_bad_rows_never_fail_another_tenants_requests(
    database_url: str,
) -> None:
    settings = make_settings(database_url, ROUTER__AUTH__API_KEYS=KEYS)
    async with AsyncTestClient(create_app(settings)) as client:

        async def good(i: int) -> int:
            body = {"task": TASK, "context": {"project_id": f"p{i % 3}"}}
            return (await client.post("/v1/route", json=body, headers=ACME)).status_code

        async def bad(i: int) -> int:
            path = ["task.type", "context.project_id", "task.description"][i % 3]
            response = await client.post("/v1/route", json=route_with(path, NUL), headers=EVIL)
            return response.status_code

        statuses = await asyncio.gather(*(f(i) for i in range(40) for f in (good, bad)))
        assert statuses[0::2] == [200] * 40
        assert statuses[1::2] == [422] * 40


async def test_a_row_postgresql_refuses_fails_alone(postgres_url: str) -> None:
    """The second guard: a value that got past validation fails only its own insert, as a
    4xx, and the decisions committed with it in the same group commit are stored."""
    settings = make_settings(postgres_url)
    engine = create_engine(postgres_url)
    await migrate(engine)
    log = EventLog(engine)
    try:
        await log.ensure_catalog(settings.catalog)

        def row(decision_id: str, task_type: str) -> DecisionRow:
            return DecisionRow(
                id=decision_id, tenant_id="default", request_id=None, request_hash="h",
                created_at=datetime.now(UTC), catalog_fingerprint=settings.catalog.fingerprint,
                objective="balanced", request=b"{}", features={}, allowed=[], probabilities=[],
                chosen_action="a", chosen_position=0, propensity=1.0, explored=False,
                policy_name="p", policy_version="v",
                model_versions=ModelVersions(batch=None, online="v"), learner_seq=0,
                response={}, project_id=None, task_type=task_type, language="python", model="m",
            )

        writer = DecisionWriter(log)
        rows = [row(f"good{i:02d}", "backend") for i in range(20)]
        rows.insert(10, row("bad", NUL))
        results = await asyncio.gather(*(writer.insert(r) for r in rows), return_exceptions=True)
        failed = [r.id for r, result in zip(rows, results, strict=True) if result is not None]
        assert failed == ["bad"], results
        assert isinstance(results[10], UnstorableValueError)
        assert results[10].status_code == 422
        stored = [await log.get_decision("default", f"good{i:02d}") for i in range(20)]
        assert all(record is not None for record in stored)
    finally:
        await log.aclose()
        await engine.dispose()


@pytest.fixture
async def sqlite_client(tmp_path: Path) -> AsyncIterator[AsyncTestClient[Any]]:
    """Cases that never reach the database run once, on SQLite."""
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/router.db")
    async with AsyncTestClient(create_app(settings)) as client:
        yield client


async def post_raw(client: AsyncTestClient[Any], body: bytes,
                   content_type: str | None = "application/json") -> Any:
    headers = {} if content_type is None else {"content-type": content_type}
    return await client.post("/v1/route", content=body, headers=headers)


VALID = b'{"task": {"type": "a", "language": "py", "description": "d"}'
MALFORMED: list[tuple[str, bytes, int, str]] = [
    ("deep list", b'{"task": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "(body)"),
    ("deep object", b'{"features": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001, 400, "(body)"),
    ("duplicate task.type",
     b'{"task": {"type": "a", "type": "b", "language": "py", "description": "d"}}', 400,
     "task.type"),
    ("duplicate task", VALID + b', "task": {}}', 400, "task"),
    ("duplicate behind a colon in a string",
     b'{"task": {"type": "a:b", "language": "py", "description": "d", "type": "c"}}', 400,
     "task.type"),
    ("duplicate feature", VALID + b', "features": {"x": 1, "x": 2}}', 400, "features.x"),
    ("empty body", b"", 422, "(body)"),
    ("non-UTF-8 bytes", b'{"task": {"type": "\xff\xfe"}}', 400, "(body)"),
    ("lone high surrogate", b'{"task": {"type": "\\ud800"}}', 400, "(body)"),
    ("lone low surrogate", b'{"task": {"type": "\\udc00"}}', 400, "(body)"),
    ("UTF-8 encoded surrogate", b'{"task": {"type": "\xed\xa0\x80"}}', 400, "(body)"),
    ("1e400", VALID + b', "constraints": {"max_cost_usd": 1e400}}', 400, "(body)"),
    ("Infinity", VALID + b', "features": {"x": Infinity}}', 400, "(body)"),
    ("trailing garbage", VALID + b"} x", 400, "(body)"),
]


async def test_malformed_bodies_are_a_4xx_without_a_traceback(
    sqlite_client: AsyncTestClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for case, body, status, field in MALFORMED:
        response = await post_raw(sqlite_client, body)
        assert response.status_code == status, (case, response.text)
        assert_problem(response, status, field)
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_body_that_is_not_json_is_a_415(sqlite_client: AsyncTestClient[Any]) -> None:
    body = json.dumps({"task": TASK}).encode()
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", "application/xml",
                         "application/jsonx"):
        response = await post_raw(sqlite_client, body, content_type)
        assert response.status_code == 415, content_type
        assert_problem(response, 415, "content-type")
    for content_type in ("application/json; charset=utf-8", "Application/JSON",
                         "application/problem+json"):
        response = await post_raw(sqlite_client, body, content_type)
        assert response.status_code == 200, (content_type, response.text)
    colons = {"task": {**TASK, "description": "Steps: 1: a, 2: b", "requirements": ["x:y"]}}
    response = await post_raw(sqlite_client, json.dumps(colons).encode())
    assert response.status_code == 200, response.text


HUGE: list[tuple[str, Any, str]] = [
    ("task.type", "x" * 129, "task.type"),
    ("task.description", "x" * 20_001, "task.description"),
    ("task.requirements[0]", "x" * 1_001, "task.requirements[0]"),
    ("context.project_id", "x" * 129, "context.project_id"),
    ("features.x", "x" * 257, "features[...]"),
    ("constraints.max_latency_s", 1e7, "constraints.max_latency_s"),
    ("context.rag.examples", 2**70, "context.rag.examples"),
    ("context.rag.avg_quality", -1e-9, "context.rag.avg_quality"),
]
FEEDBACK_NUMBERS = [
    (b'"quality": NaN', 400, "(body)"),
    (b'"cost_usd": 1e400', 400, "(body)"),
    (b'"tokens": 100000000000000000000000', 422, "tokens"),
    (b'"regenerations": -1', 422, "regenerations"),
    (b'"generation_time_s": 1e10', 422, "generation_time_s"),
    (b'"complexity": 10.5', 422, "complexity"),
]


async def test_huge_strings_and_numbers_out_of_range(
    sqlite_client: AsyncTestClient[Any],
) -> None:
    for path, value, field in HUGE:
        assert_problem(await sqlite_client.post("/v1/route", json=route_with(path, value)), 422,
                       field)
    decision = (await sqlite_client.post("/v1/route", json={"task": TASK})).json()
    for member, status, field in FEEDBACK_NUMBERS:
        body = b'{"decision_id": "%s", "outcome": "approved", %s}' % (
            decision["decision_id"].encode(), member)
        response = await sqlite_client.post("/v1/feedback", content=body,
                                            headers={"content-type": "application/json"})
        assert_problem(response, status, field)
