"""``router serve`` loads no offline module: not at start, not while it routes and learns."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import httpx
import pytest

from tests.doc_blocks import DOCS, tagged_block
from tests.serve_process import router_serve

# ``router serve`` whose process writes the names of every module it loaded when it exits.
SERVE_THEN_LIST_MODULES = """
import atexit, pathlib, sys
atexit.register(lambda: pathlib.Path(sys.argv[1]).write_text("\\n".join(sorted(sys.modules))))
from router.cli import main
raise SystemExit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_router_serve_loads_no_offline_module(tmp_path: Path) -> None:
    modules = tmp_path / "modules.txt"
    # Ctrl-C stops it: uvicorn shuts down and re-raises it, Python exits through
    # KeyboardInterrupt and runs the atexit hook (a SIGTERM re-raised would end the process
    # without it).
    with router_serve(tmp_path / "router.db", program=(
            sys.executable, "-c", SERVE_THEN_LIST_MODULES, str(modules)),
            cwd=tmp_path, ready_path="/ready", stop=signal.SIGINT) as served:
        body = json.loads(tagged_block(DOCS / "api.md", "example:route").text)
        route = httpx.post(f"{served.url}/v1/route", json=body, timeout=30)
        assert route.status_code == 200, route.text
        feedback = json.loads(tagged_block(DOCS / "api.md", "example:feedback").text)
        feedback["decision_id"] = route.json()["decision_id"]
        learned = httpx.post(f"{served.url}/v1/feedback", json=feedback, timeout=30)
        assert learned.status_code == 200, learned.text
    loaded = modules.read_text(encoding="utf-8").split()
    assert {"router.cli", "router.app", "router.services.routing"} <= set(loaded)
    assert [name for name in loaded if name == "offline" or name.startswith("offline.")] == []
