"""``router serve --workers 2``: one ``/metrics`` adds up both workers, and every log line on
stderr is a JSON object, the access lines with their decision ids.

Drives a real ``router serve`` child process on 127.0.0.1 (a bounded number of requests).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serve_process import router_serve

pytestmark = pytest.mark.slow

TASK = {"type": "backend", "language": "python", "description": "Add a cached REST endpoint"}
MAX_ROUTES = 400


def route_count(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "router_http_request_duration_seconds_count"
        and sample.labels["route"] == "/v1/route"
    )


def test_two_workers_report_every_request_and_log_json_lines(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    stale = metrics_dir / "counter_1.db"  # an earlier run's file: cleared at start
    metrics_dir.mkdir()
    stale.write_bytes(b"\0" * 8)
    env = {"ROUTER__SERVER__ACCESS_LOG": "true", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    stderr = tmp_path / "stderr.txt"
    with router_serve(tmp_path / "router.db", "--workers", "2", environ=env,
                      stderr=stderr) as served:
        base = served.url
        assert not stale.exists()
        # A new connection per request; go on until both workers have answered some (each
        # worker writes its counters to a file named by its process id).
        decisions: list[str] = []
        while len(decisions) < 10 or len(list(metrics_dir.glob("counter_*.db"))) < 2:
            assert len(decisions) < MAX_ROUTES, "one worker answered every request"
            response = httpx.post(f"{base}/v1/route", json={"task": TASK},
                                  headers={"Connection": "close"})
            assert response.status_code == 200, response.text
            decisions.append(response.json()["decision_id"])
        # Whichever worker answers a scrape reports both workers' requests.
        for _ in range(6):
            scrape = httpx.get(f"{base}/metrics", headers={"Connection": "close"})
            assert route_count(scrape.text) == len(decisions)
    lines: list[dict[str, Any]] = [json.loads(line) for line in stderr.read_text().splitlines()]
    access = {line["decision_id"]: line for line in lines
              if line["logger"] == "router.access" and line["path"] == "/v1/route"}
    assert set(access) == set(decisions)
    assert {line["tenant"] for line in access.values()} == {"default"}
    assert any(line["logger"] == "uvicorn.error" for line in lines)  # the server's own lines
