"""``router serve`` as a child process on a free port of 127.0.0.1, for the tests that need the
real server (uvicorn's limits, several workers, the process's stderr, its imports)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import httpx

START_TIMEOUT_S = 180.0  # a loaded 2-core machine takes seconds per worker to import the service
STOP_TIMEOUT_S = 60.0
ROUTER = (sys.executable, "-m", "router.cli")


class Served(NamedTuple):
    """The running server's base URL (``http://127.0.0.1:<port>``) and port."""

    url: str
    port: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def router_serve(
    database: Path, *options: str, environ: Mapping[str, str] | None = None,
    stderr: Path | None = None, program: Sequence[str] = ROUTER, cwd: Path | None = None,
    ready_path: str = "/health", stop: signal.Signals = signal.SIGTERM,
) -> Iterator[Served]:
    """Run ``<program> serve --port <free> --database-url <SQLite database> <options>`` with
    ``environ`` added to this process's environment and its stderr in the file ``stderr`` (else
    discarded); yield once ``ready_path`` answers 200, then send ``stop`` and wait for the exit.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as files:
        errors = (subprocess.DEVNULL if stderr is None
                  else files.enter_context(stderr.open("wb")))
        process = subprocess.Popen(
            [*program, "serve", "--port", str(port),
             "--database-url", f"sqlite+aiosqlite:///{database}", *options],
            cwd=cwd, env={**os.environ, **(environ or {})}, stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    try:
        _wait_until_ready(process, f"{url}{ready_path}")
        yield Served(url, port)
    finally:
        process.send_signal(stop)
        process.wait(timeout=STOP_TIMEOUT_S)


def _wait_until_ready(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        assert process.poll() is None, f"router serve exited with {process.returncode}"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "router serve did not become ready"
        time.sleep(0.1)
