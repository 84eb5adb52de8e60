"""HTTP load generation for ``router bench``: ``wrk`` when installed, else a Python fallback.

Both generators run in a process of their own (the server under test keeps its own core), keep
``connections`` HTTP/1.1 keep-alive connections busy for ``duration_s`` seconds and POST JSON bodies
read from a file with one body per line:

- cycled (``unique=False``): route and echo bodies, a few hundred distinct ones;
- each used once (``unique=True``): feedback bodies, one per pre-created decision. If the run needs
  more bodies than the file holds, it starts over and the result says ``exhausted`` so that the
  caller can rerun with more (a repeated feedback is the cheap duplicate path, not the one
  measured).

``wrk`` is driven by a generated Lua script and its ``--latency`` report is parsed
(:func:`parse_wrk_output`). The fallback (``python -m offline.bench.loadgen``) writes raw
HTTP/1.1 on ``asyncio`` streams rather than going through an HTTP client library so that the
generator, not the client stack, is what limits it as little as possible; it is still slower
than ``wrk``, and every result names the generator that produced it.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import msgspec

Generator = Literal["wrk", "python"]
WRK_TIMEOUT_S = 5
WRK_THREADS = 1
_EXHAUSTED_MARK = "loadgen-exhausted-threads:"


class LoadGenError(RuntimeError):
    """The load generator could not run or its output could not be read."""


class LoadSpec(msgspec.Struct, frozen=True):
    """One load run: POST the bodies of ``bodies_path`` to ``url``."""

    url: str
    bodies_path: str
    duration_s: float
    connections: int
    unique: bool = False


class LoadResult(msgspec.Struct, frozen=True):
    """What one run measured. Latencies are in milliseconds; failures are counted, not raised."""

    generator: str
    url: str
    requests: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    exhausted: bool

    @property
    def failed(self) -> int:
        return self.non_2xx + self.socket_errors


class WrkReport(msgspec.Struct, frozen=True):
    """The numbers of one ``wrk --latency`` report."""

    requests: int
    duration_s: float
    requests_per_s: float
    percentiles_ms: dict[int, float]
    non_2xx: int
    socket_errors: int
    exhausted_threads: int


_TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.MULTILINE)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)\s*$", re.MULTILINE)
_SOCKET = re.compile(
    r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)\s*$", re.MULTILINE
)
_EXHAUSTED = re.compile(rf"^{_EXHAUSTED_MARK}\s*(\d+)\s*$", re.MULTILINE)


def parse_wrk_output(text: str) -> WrkReport:
    """Read requests/s, the latency distribution and the failure counters of a wrk report.

    ``wrk`` prints the "Socket errors" and "Non-2xx or 3xx responses" lines only when they are
    not zero. (It counts HTTP statuses >= 400 in the latter.)
    """
    total = _TOTAL.search(text)
    rate = _RATE.search(text)
    percentiles = {
        round(float(level)): float(value) * _TIME_UNITS_MS[unit]
        for level, value, unit in _PERCENTILE.findall(text)
    }
    if total is None or rate is None or 50 not in percentiles or 99 not in percentiles:
        raise LoadGenError(f"unexpected wrk output (was --latency given?):\n{text}")
    non_2xx = _NON_2XX.search(text)
    socket = _SOCKET.search(text)
    exhausted = _EXHAUSTED.search(text)
    return WrkReport(
        requests=int(total.group(1)),
        duration_s=float(total.group(2)) * _TIME_UNITS_MS[total.group(3)] / 1e3,
        requests_per_s=float(rate.group(1)),
        percentiles_ms=percentiles,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
        exhausted_threads=int(exhausted.group(1)) if exhausted else 0,
    )


def _lua_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def wrk_script(path: str, bodies_path: str, *, unique: bool, threads: int) -> str:
    """The Lua script that makes wrk POST the bodies of ``bodies_path`` to ``path``.

    Every thread pre-formats its requests once in ``init``. With ``unique`` the lines are dealt
    out to the threads so that no body is sent twice unless a thread runs out, which ``done``
    reports on a line of its own.
    """
    return f"""-- generated by offline.bench.loadgen
local path = {_lua_string(path)}
local bodies_path = {_lua_string(bodies_path)}
local unique = {"true" if unique else "false"}
local nthreads = {threads}
local threads = {{}}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local requests = {{}}
local position = 0

function init(args)
  local headers = {{["Content-Type"] = "application/json"}}
  local line_no = 0
  for line in io.lines(bodies_path) do
    if line ~= "" then
      if (not unique) or (line_no % nthreads == id) then
        requests[#requests + 1] = wrk.format("POST", path, headers, line)
      end
      line_no = line_no + 1
    end
  end
  if #requests == 0 then
    error("no request bodies for thread " .. id .. " in " .. bodies_path)
  end
  if not unique then
    position = (id * 7919) % #requests
  end
  exhausted = 0
end

function request()
  position = position + 1
  if position > #requests then
    position = 1
    if unique then exhausted = 1 end
  end
  return requests[position]
end

function done(summary, latency, requests)
  local count = 0
  for _, thread in ipairs(threads) do
    count = count + (thread:get("exhausted") or 0)
  end
  io.write("{_EXHAUSTED_MARK} " .. count .. "\\n")
end
"""


def available_generator() -> Generator:
    """``wrk`` when it is on ``PATH``, else the Python fallback."""
    return "wrk" if shutil.which("wrk") else "python"


def run_load(spec: LoadSpec, generator: Generator | None = None) -> LoadResult:
    """Run one load test in a separate process and return what it measured."""
    chosen = generator or available_generator()
    if chosen == "wrk":
        return _run_wrk(spec)
    return _run_python_process(spec)


def _run_wrk(spec: LoadSpec) -> LoadResult:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise LoadGenError("wrk is not on PATH")
    parts = urlsplit(spec.url)
    threads = min(WRK_THREADS, spec.connections)
    with tempfile.TemporaryDirectory(prefix="loadgen-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(
            wrk_script(parts.path or "/", spec.bodies_path, unique=spec.unique, threads=threads),
            encoding="utf-8",
        )
        command = [
            wrk,
            f"--threads={threads}",
            f"--connections={spec.connections}",
            f"--duration={max(1, round(spec.duration_s))}s",
            f"--timeout={WRK_TIMEOUT_S}s",
            "--latency",
            f"--script={script}",
            f"{parts.scheme}://{parts.netloc}",
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=spec.duration_s + 60, check=False
        )
    if done.returncode != 0:
        raise LoadGenError(f"wrk exited with {done.returncode}: {done.stderr or done.stdout}")
    report = parse_wrk_output(done.stdout)
    return LoadResult(
        generator="wrk",
        url=spec.url,
        requests=report.requests,
        duration_s=report.duration_s,
        requests_per_s=report.requests_per_s,
        p50_ms=report.percentiles_ms[50],
        p99_ms=report.percentiles_ms[99],
        non_2xx=report.non_2xx,
        socket_errors=report.socket_errors,
        exhausted=report.exhausted_threads > 0,
    )


def _run_python_process(spec: LoadSpec) -> LoadResult:
    command = [
        sys.executable,
        "-m",
        "offline.bench.loadgen",
        "--url",
        spec.url,
        "--bodies",
        spec.bodies_path,
        "--duration",
        str(spec.duration_s),
        "--connections",
        str(spec.connections),
    ]
    if spec.unique:
        command.append("--unique")
    done = subprocess.run(
        command, capture_output=True, timeout=spec.duration_s + 60, check=False
    )
    if done.returncode != 0:
        raise LoadGenError(
            f"python load generator exited with {done.returncode}: {done.stderr.decode()}"
        )
    return msgspec.json.decode(done.stdout, type=LoadResult)


# --- the Python fallback ------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], level: float) -> float:
    """Nearest-rank percentile of already sorted values (``level`` in [0, 100])."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = max(1, math.ceil(level / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def read_bodies(path: str | Path) -> list[bytes]:
    """The non-empty lines of a bodies file."""
    lines = Path(path).read_bytes().splitlines()
    bodies = [line for line in lines if line.strip()]
    if not bodies:
        raise LoadGenError(f"no request bodies in {path}")
    return bodies


class _Counters:
    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.non_2xx = 0
        self.socket_errors = 0


class _Bodies:
    """Pre-built requests handed out in order; shared by all connections of one event loop."""

    def __init__(self, requests: list[bytes], *, unique: bool) -> None:
        self._requests = requests
        self._unique = unique
        self._position = -1
        self.exhausted = False

    def next(self) -> bytes:
        self._position += 1
        if self._position == len(self._requests):
            self._position = 0
            self.exhausted = self.exhausted or self._unique
        return self._requests[self._position]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Status and keep-alive flag of one response; the body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    chunked = False
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif key == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, keep_alive


async def _connection(
    host: str, port: int, bodies: _Bodies, deadline: float, counters: _Counters
) -> None:
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    while time.perf_counter() < deadline:
        try:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection(host, port)
            started = time.perf_counter()
            writer.write(bodies.next())
            status, keep_alive = await asyncio.wait_for(
                _read_response(reader), timeout=WRK_TIMEOUT_S
            )
            counters.latencies_ms.append((time.perf_counter() - started) * 1e3)
            if not 200 <= status < 300:
                counters.non_2xx += 1
            if not keep_alive:
                writer.close()
                writer = reader = None
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            counters.socket_errors += 1
            if writer is not None:
                writer.close()
            writer = reader = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def generate_load(spec: LoadSpec) -> LoadResult:
    """The Python fallback itself: ``connections`` keep-alive connections for ``duration_s``."""
    parts = urlsplit(spec.url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    target = parts.path or "/"
    requests = [
        (
            f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in read_bodies(spec.bodies_path)
    ]
    bodies = _Bodies(requests, unique=spec.unique)
    counters = _Counters()
    started = time.perf_counter()
    deadline = started + spec.duration_s
    await asyncio.gather(
        *(_connection(host, port, bodies, deadline, counters) for _ in range(spec.connections))
    )
    elapsed = time.perf_counter() - started
    latencies = sorted(counters.latencies_ms)
    if not latencies:
        raise LoadGenError(f"no response from {spec.url} in {spec.duration_s:g} s")
    return LoadResult(
        generator="python",
        url=spec.url,
        requests=len(latencies),
        duration_s=elapsed,
        requests_per_s=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        non_2xx=counters.non_2xx,
        socket_errors=counters.socket_errors,
        exhausted=bodies.exhausted,
    )


def _event_loop_runner(spec: LoadSpec) -> LoadResult:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with litestar[standard]
        return asyncio.run(generate_load(spec))
    return uvloop.run(generate_load(spec))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m offline.bench.loadgen``: run the Python fallback and print its result as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m offline.bench.loadgen",
        description="Python HTTP/1.1 keep-alive load generator",
    )
    parser.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8000/echo")
    parser.add_argument("--bodies", required=True, help="file with one JSON body per line")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--connections", type=int, default=16, help="default 16")
    parser.add_argument("--unique", action="store_true", help="send every body at most once")
    args = parser.parse_args(argv)
    spec = LoadSpec(
        url=args.url,
        bodies_path=args.bodies,
        duration_s=args.duration,
        connections=args.connections,
        unique=args.unique,
    )
    try:
        result = _event_loop_runner(spec)
    except LoadGenError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(msgspec.json.encode(result) + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
