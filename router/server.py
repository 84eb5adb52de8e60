"""The HTTP server of ``router serve``: uvicorn with httptools, plus the limits uvicorn lacks.

uvicorn's httptools protocol accepts headers of any size and count, and waits for ever for a
client that sends its request slowly (or never sends one): 1,000 slowloris connections held
40 s, and a 1 MB header was accepted. :class:`LimitedHttpToolsProtocol` adds, per connection:

- ``max_header_bytes`` on the request line plus headers and ``max_headers`` on their count: over
  either, the answer is 431 and the connection is closed before the app sees the request;
- ``request_timeout_s`` to send one whole request (from the connection, or from the first byte
  of a later request on it, to the end of its body): past it, 408 and the connection is closed.

httptools rather than h11: h11 bounds the header size too, but has no header count limit or
request timeout either, and parses in pure Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors import Multiprocess

from router.logs import logging_config
from router.metrics import MULTIPROC_ENV, clear_multiprocess_dir
from router.settings import ServerSettings


class RouterServerConfig(uvicorn.Config):
    """uvicorn's config plus the service's ``[server]`` limits (pickled to worker processes)."""

    limits: ServerSettings = ServerSettings()


class _RequestRefusedError(Exception):
    """Raised in a parser callback to stop parsing a request that breaks a limit."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header limits and a request timeout."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = config.limits if isinstance(config, RouterServerConfig) else ServerSettings()
        self._header_bytes = 0
        self._refusal: tuple[int, str] | None = None
        self._request_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_request_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_request_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        if self._request_timer is None:
            self._start_request_timer()

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)  # ": " and CRLF
        if len(self.headers) >= self.limits.max_headers:
            self._refuse(431, f"more than {self.limits.max_headers} header fields")
        super().on_header(name, value)

    def on_message_complete(self) -> None:
        self._stop_request_timer()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        # httptools reports an exception raised in a callback as a parse error.
        if self._refusal is None:
            super().send_400_response(msg)
            return
        status, reason = self._refusal
        self._close_with(status, reason)

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.limits.max_header_bytes:
            self._refuse(431, f"request line and headers over {self.limits.max_header_bytes} bytes")

    def _refuse(self, status: int, reason: str) -> None:
        self._refusal = (status, reason)
        raise _RequestRefusedError(reason)

    def _start_request_timer(self) -> None:
        self._request_timer = self.loop.call_later(
            self.limits.request_timeout_s, self._request_timed_out
        )

    def _stop_request_timer(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def _request_timed_out(self) -> None:
        self._request_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            # No response of this connection is under way: say why it is closed.
            self._close_with(408, f"request not received within {self.limits.request_timeout_s} s")
        else:
            self.transport.close()

    def _close_with(self, status: int, reason: str) -> None:
        body = reason.encode("ascii")
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, _REASONS[status], len(body), body)
        )
        self.transport.close()


_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
# Seconds a worker process may take to answer the supervisor's health check. uvicorn's default
# (5 s) is shorter than a new worker takes to import the service on a busy 2-core machine
# (10 s measured at load average 12): the supervisor then killed every worker as hung and
# started another, for ever.
WORKER_HEALTHCHECK_S = 60


def create_server_config(
    factory: str, server: ServerSettings, *, host: str, port: int, workers: int
) -> RouterServerConfig:
    """The uvicorn config of ``router serve`` for the app ``factory`` (``module:function``),
    with the ``[server]`` limits, this module's protocol, the service's logging setup
    (router/logs.py) and uvicorn's access log off (the app writes its own, ``access_log``)."""
    config = RouterServerConfig(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=server.log_level,
        log_config=logging_config(server.log_level, server.log_format),
        access_log=False,
        http=LimitedHttpToolsProtocol,
        timeout_keep_alive=server.keep_alive_s,
        limit_concurrency=server.max_connections,
        timeout_graceful_shutdown=server.graceful_shutdown_s,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
    )
    config.limits = server
    return config


def run_server(config: RouterServerConfig) -> bool:
    """Serve until stopped, in ``config.workers`` processes sharing one socket (as uvicorn.run
    does, with this module's protocol and limits); False when a single server failed to start."""
    if config.workers > 1:
        with multiprocess_metrics():
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        return True
    server = uvicorn.Server(config)
    server.run()
    return server.started


@contextlib.contextmanager
def multiprocess_metrics() -> Iterator[Path]:
    """prometheus_client's multi-process mode for the worker processes started inside: the
    directory of ``PROMETHEUS_MULTIPROC_DIR`` emptied of an earlier run's files, or (unset) a
    new temporary directory, removed at the end. Workers inherit the variable; each writes its
    metrics there, and ``GET /metrics`` in any of them adds up all (router/metrics.py)."""
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        clear_multiprocess_dir(path)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="router-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(path, ignore_errors=True)
