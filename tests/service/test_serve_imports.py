"""``router serve`` loads no offline module: not at start, not while it routes and learns."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.doc_blocks import DOCS, tagged_block

# ``router serve`` whose process writes the names of every module it loaded when it exits.
SERVE_THEN_LIST_MODULES = """
import atexit, pathlib, sys
atexit.register(lambda: pathlib.Path(sys.argv[1]).write_text("\\n".join(sorted(sys.modules))))
from router.cli import main
raise SystemExit(main(sys.argv[2:]))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_router_serve_loads_no_offline_module(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    modules = tmp_path / "modules.txt"
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE_THEN_LIST_MODULES, str(modules), "serve",
         "--port", str(port), "--database-url", f"sqlite+aiosqlite:///{tmp_path}/router.db"],
        cwd=tmp_path, env=os.environ.copy(), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, f"router serve exited with {server.returncode}"
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "router serve did not become ready"
            time.sleep(0.2)
        body = json.loads(tagged_block(DOCS / "api.md", "example:route").text)
        route = httpx.post(f"{url}/v1/route", json=body, timeout=30)
        assert route.status_code == 200, route.text
        feedback = json.loads(tagged_block(DOCS / "api.md", "example:feedback").text)
        feedback["decision_id"] = route.json()["decision_id"]
        learned = httpx.post(f"{url}/v1/feedback", json=feedback, timeout=30)
        assert learned.status_code == 200, learned.text
    finally:
        # Ctrl-C: uvicorn shuts down and re-raises it, Python exits through KeyboardInterrupt
        # and runs the atexit hook (a SIGTERM re-raised would end the process without it).
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    loaded = modules.read_text(encoding="utf-8").split()
    assert {"router.cli", "router.app", "router.services.routing"} <= set(loaded)
    assert [name for name in loaded if name == "offline" or name.startswith("offline.")] == []
