"""The service log: one JSON object per line, and every line about a decision names it; the
commands log through the same setup."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from router.app import create_app
from router.cli import main
from router.logs import LogFormat, create_formatter
from tests.doc_blocks import DOCS, tagged_block
from tests.support import make_settings

TASK = {"type": "backend", "language": "python", "description": "Add a cached REST endpoint"}
CODE = "def handler(request: dict) -> str:\n    return 'ok'\n"


@pytest.fixture
def capture() -> Iterator[dict[LogFormat, io.StringIO]]:
    """What the root logger writes at INFO, rendered by the service's formatter in both
    formats (as ``router serve``'s one handler would)."""
    root = logging.getLogger()
    streams: dict[LogFormat, io.StringIO] = {"json": io.StringIO(), "text": io.StringIO()}
    handlers = []
    for log_format, stream in streams.items():
        handler = logging.StreamHandler(stream)
        handler.setFormatter(create_formatter(log_format))
        root.addHandler(handler)
        handlers.append(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield streams
    finally:
        root.setLevel(level)
        for handler in handlers:
            root.removeHandler(handler)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = stream.getvalue().splitlines()
    assert lines
    return [json.loads(line) for line in lines]  # every line is one JSON object


async def test_every_line_about_a_decision_carries_its_id_and_tenant(
    tmp_path: Path, capture: dict[LogFormat, io.StringIO]
) -> None:
    # A measurement budget no process can meet: the feedback's code is stored without metrics,
    # and the service warns, during the feedback request.
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/router.db",
                             ROUTER__SERVER__ACCESS_LOG="true",
                             ROUTER__CODE_METRICS__TIMEOUT_S="0.000001")
    async with AsyncTestClient(create_app(settings)) as client:
        decision_id = (await client.post("/v1/route", json={"task": TASK})).json()["decision_id"]
        feedback = await client.post("/v1/feedback", json={
            "decision_id": decision_id, "outcome": "approved", "code": CODE})
        assert feedback.status_code == 200, feedback.text
        assert (await client.get(f"/v1/decisions/{decision_id}")).status_code == 200
        assert (await client.get("/health")).status_code == 200
    lines = json_lines(capture["json"])
    for line in lines:
        assert {"timestamp", "level", "logger", "event"} <= line.keys(), line
    access = [line for line in lines if line["logger"] == "router.access"]
    by_path = {(line["method"], line["path"]): line for line in access}
    for method, path in [("POST", "/v1/route"), ("POST", "/v1/feedback"),
                         ("GET", f"/v1/decisions/{decision_id}")]:
        line = by_path[method, path]
        assert (line["decision_id"], line["tenant"], line["status"]) == (
            decision_id, "default", 200), line
        assert line["duration_ms"] > 0
    assert by_path["GET", f"/v1/decisions/{decision_id}"]["route"] == (
        "/v1/decisions/{decision_id}")
    # docs/operations.md shows an access line with the keys a real one has.
    example = json.loads(tagged_block(DOCS / "operations.md", "example:access-log").text)
    assert sorted(example) == sorted(by_path["POST", "/v1/route"])
    # A request about no decision names none (nothing is left over from the one before).
    assert "decision_id" not in by_path["GET", "/health"]
    warning = next(line for line in lines if "code metrics of" in line["event"])
    assert (warning["level"], warning["decision_id"], warning["tenant"]) == (
        "warning", decision_id, "default")
    text = capture["text"].getvalue()
    assert f"decision_id={decision_id}" in text
    assert not text.lstrip().startswith("{")


async def test_no_access_lines_unless_configured_and_errors_keep_their_traceback(
    tmp_path: Path, capture: dict[LogFormat, io.StringIO]
) -> None:
    database = tmp_path / "router.db"
    settings = make_settings(f"sqlite+aiosqlite:///{database}")
    async with AsyncTestClient(create_app(settings)) as client:
        decision_id = (await client.post("/v1/route", json={"task": TASK})).json()["decision_id"]
        # A decision row whose response is not a RouteResponse: reading it fails unexpectedly.
        with sqlite3.connect(database) as conn:
            conn.execute("UPDATE decisions SET response = '[]' WHERE id = ?", (decision_id,))
        response = await client.get(f"/v1/decisions/{decision_id}")
        assert response.status_code == 500
    lines = json_lines(capture["json"])
    assert not [line for line in lines if line["logger"] == "router.access"]
    error = next(line for line in lines if line["event"].startswith("unhandled error"))
    assert (error["level"], error["decision_id"]) == ("error", decision_id)
    assert "Traceback" in error["exception"]


@pytest.mark.parametrize("options", [["--log-format", "json"], ["--log-format", "text"], []],
                         ids=["json", "text", "default"])
def test_a_command_logs_through_the_service_setup_in_the_chosen_format(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], options: list[str]
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path}/router.db"
    assert main(["--log-level", "info", *options, "export", "--database-url", database]) == 0
    out, err = capfd.readouterr()
    assert out.startswith("decisions: 0")  # the result alone on stdout
    lines = err.splitlines()
    migrations = [line for line in lines if "Running upgrade" in line]  # alembic's, at INFO
    assert migrations, err
    if options == ["--log-format", "text"]:
        assert not [line for line in lines if line.startswith("{")], err
        assert "[info" in migrations[0]
    else:  # JSON lines, also by default when stderr is no terminal
        for line in map(json.loads, lines):
            assert {"timestamp", "level", "logger", "event"} <= line.keys(), line
