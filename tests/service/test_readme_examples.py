"""The README's quickstart and the API page's request examples are executed against the service."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from router import schemas
from tests.doc_blocks import DOCS, README, tagged_block
from tests.serve_process import router_serve

API = DOCS / "api.md"
QUICKSTART_URL = "http://127.0.0.1:8000"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None and os.environ.get("CI") != "true",
                    reason="the quickstart needs curl (CI must have it)")
def test_readme_quickstart_routes_and_learns_when_pasted(tmp_path: Path) -> None:
    """The README's shell block, run by bash against `router serve`, ends in `"learned": true`."""
    script = tagged_block(README, "example:quickstart").text
    assert QUICKSTART_URL in script
    with router_serve(tmp_path / "router.db", cwd=tmp_path, ready_path="/ready") as served:
        run = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script.replace(QUICKSTART_URL, served.url)],
            capture_output=True, text=True, timeout=60, check=False,
        )
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    decision = msgspec.json.decode(lines[0], type=schemas.RouteResponse)
    feedback = msgspec.json.decode(lines[-1], type=schemas.FeedbackResponse)
    assert feedback.decision_id == decision.decision_id
    assert feedback.learned is True
    assert feedback.duplicate is False


def _example(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(tagged_block(API, f"example:{name}").text)
    return body


async def test_api_route_and_feedback_examples_work(client: AsyncTestClient[Any]) -> None:
    route = await client.post("/v1/route", json=_example("route"))
    assert route.status_code == 200, route.text
    decision = route.json()
    assert decision["predictions"]["cost_usd"] <= 0.05
    feedback = _example("feedback") | {"decision_id": decision["decision_id"]}
    response = await client.post("/v1/feedback", json=feedback)
    assert response.status_code == 200, response.text
    assert response.json()["learned"] is True
    repeat = await client.post("/v1/feedback", json=feedback)
    assert repeat.json()["duplicate"] is True

