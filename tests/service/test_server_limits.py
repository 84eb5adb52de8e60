"""``router serve`` bounds what one client can hold: header size and count, slow clients.

Drives a real ``router serve`` child process on 127.0.0.1 with raw sockets (bounded counts).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.serve_process import router_serve

REQUEST_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    database = tmp_path_factory.mktemp("limits") / "router.db"
    with router_serve(database, environ={
            "ROUTER__SERVER__REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S)}) as served:
        yield "127.0.0.1", served.port


def exchange(address: tuple[str, int], request: bytes, wait_s: float = 5.0) -> bytes:
    """Send ``request`` and return what the server answers before it closes (or ``wait_s``)."""
    with socket.create_connection(address, timeout=wait_s) as sock:
        # Closed while we were still sending: the answer may be in the buffer all the same.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_a_one_megabyte_header_is_refused(service: tuple[str, int]) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_048_576 + b"\r\n\r\n"
    answer = exchange(service, request)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_too_many_header_fields_are_refused(service: tuple[str, int]) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    answer = exchange(service, b"GET /health HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_a_request_within_the_limits_is_served(service: tuple[str, int]) -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(50))
    answer = exchange(
        service, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def test_slow_and_silent_clients_are_cut_after_the_timeout(service: tuple[str, int]) -> None:
    started = time.monotonic()
    silent = [socket.create_connection(service, timeout=10) for _ in range(20)]
    slow = [socket.create_connection(service, timeout=10) for _ in range(20)]
    for sock in slow:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    try:
        # A header byte every 0.2 s keeps a connection busy but never completes the request.
        closed_at: dict[int, float] = {}
        while len(closed_at) < len(slow) and time.monotonic() - started < 10 * REQUEST_TIMEOUT_S:
            for index, sock in enumerate(slow):
                if index in closed_at:
                    continue
                try:
                    sock.sendall(b"X")
                except OSError:
                    closed_at[index] = time.monotonic() - started
            # Meanwhile an ordinary client is served at once.
            assert httpx.get(f"http://{service[0]}:{service[1]}/health", timeout=2).is_success
            time.sleep(0.2)
        assert len(closed_at) == len(slow)
        assert max(closed_at.values()) < REQUEST_TIMEOUT_S + 3
        for sock in silent:
            answer = read_until_closed(sock)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert time.monotonic() - started < REQUEST_TIMEOUT_S + 5
    finally:
        for sock in silent + slow:
            sock.close()
