"""The README's request examples are executed against the service."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example(name: str) -> dict[str, Any]:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- example: {name} -->\s*```json\n(.*?)```", text, re.DOTALL)
    assert match is not None, f"README has no '{name}' example"
    body: dict[str, Any] = json.loads(match.group(1))
    return body


async def test_readme_route_and_feedback_examples_work(client: AsyncTestClient[Any]) -> None:
    route = await client.post("/v1/route", json=readme_example("route"))
    assert route.status_code == 200, route.text
    decision = route.json()
    assert decision["predictions"]["cost_usd"] <= 0.05
    feedback = readme_example("feedback") | {"decision_id": decision["decision_id"]}
    response = await client.post("/v1/feedback", json=feedback)
    assert response.status_code == 200, response.text
    assert response.json()["learned"] is True
