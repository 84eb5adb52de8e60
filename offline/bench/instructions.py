"""``router bench-instructions``: CPU instructions per ``RoutingService.route``, under callgrind.

Wall-clock timings on the shared machines move by up to 2x within minutes, so a change worth 5%
of a route's CPU cannot be seen in ``router bench``. Valgrind's callgrind counts the instructions
executed instead: the same code, inputs and environment give the same count whatever else the
machine is doing. It counts user-space instructions only (not the kernel's work in system calls,
such as SQLite's writes), and it weighs every instruction alike; a count is a measure for
comparing two versions of the code, not a latency.

The command starts a child process under ``valgrind --tool=callgrind --instr-atstart=no``. The
child builds the service in-process (the config's catalog, a temporary SQLite event log), routes
``--warmup`` requests, and then ``--n`` requests in groups of ``--concurrency`` concurrent calls
(so decision rows are committed in batches, as under HTTP load); collection is switched on with
``callgrind_control`` for those ``--n`` only. Startup and warm-up are not counted.

``--target`` says what one counted request is: ``service`` (the default) a call of
``RoutingService.route``; ``route`` a whole ``POST /v1/route`` through the router's ASGI app
(Litestar's routing, body decoding, dependencies and response encoding included; no socket and
no HTTP server: an ASGI call with the body in memory); ``echo`` the same ``POST`` through the
``router bench`` echo app (offline/bench/echo_app.py). ``route`` and ``echo`` counted in one machine
give the route's cost in echo requests, the instruction-count analogue of ``router bench``'s
route/echo throughput ratio without uvicorn's HTTP parsing and the kernel's socket work (which
each request of both pays alike, so the ratio with a server is closer to 1).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

WAIT_S = 900.0  # for the child under valgrind (startup is about 15 s on the shared machine)
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")
# One line of ``callgrind_annotate``'s function list: "1,234 (5.6%)  file:function [object]".
_FUNCTION_LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+.*\[(?P<object>[^\]]+)\]\s*$")


TARGETS = ("service", "route", "echo")


_UNITS = {"service": "RoutingService.route calls", "route": "POST /v1/route (ASGI)",
          "echo": "POST /echo (ASGI)"}


class InstructionReport(msgspec.Struct, frozen=True):
    command: str
    n: int
    concurrency: int
    instructions: int
    per_route: float  # per counted request (of the target)
    by_object: dict[str, float]  # share of the counted instructions, per shared object
    target: str = "service"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=400, help="routes counted (default 400)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="concurrent route calls per group (default 8)")
    parser.add_argument("--warmup", type=int, default=100,
                        help="routes before counting starts (default 100)")
    parser.add_argument("--config", help="TOML config (default: configs/default.toml)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated task bodies")
    parser.add_argument("--target", choices=TARGETS, default="service",
                        help="what one counted request is: RoutingService.route (service), "
                             "POST /v1/route through the ASGI app (route) or POST /echo "
                             "through the echo app (echo); default service")
    parser.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    parser.add_argument("--child", metavar="MARKER", help=argparse.SUPPRESS)


def parse_collected(valgrind_log: str) -> int:
    """The instruction count callgrind printed at exit."""
    found = _COLLECTED.search(valgrind_log)
    if found is None:
        raise ValueError("no 'Collected :' line in valgrind's output")
    return int(found.group(1))


def shares_by_object(annotate_output: str) -> dict[str, float]:
    """Share of the instructions per shared object (file name only), largest first, from
    ``callgrind_annotate --threshold=100`` output."""
    totals: dict[str, int] = defaultdict(int)
    for line in annotate_output.splitlines():
        match = _FUNCTION_LINE.match(line)
        if match:
            totals[Path(match.group("object")).name] += int(match.group(1).replace(",", ""))
    grand = sum(totals.values())
    if grand == 0:
        return {}
    ordered = sorted(totals.items(), key=lambda item: item[1], reverse=True)
    return {name: count / grand for name, count in ordered}


def _command_line(args: argparse.Namespace) -> str:
    parts = ["router bench-instructions", f"--n {args.n}", f"--concurrency {args.concurrency}",
             f"--warmup {args.warmup}"]
    if args.target != "service":
        parts.append(f"--target {args.target}")
    if args.config:
        parts.append(f"--config {args.config}")
    if args.seed:
        parts.append(f"--seed {args.seed}")
    return " ".join(parts)


def _wait_for(path: Path, what: str, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait for the marker file ``path`` (``what`` names it in errors), failing when
    ``process`` exits first. In the child this blocks its event loop on purpose: no background
    task of the service runs (and is counted) while collection is being switched."""
    deadline = time.monotonic() + WAIT_S
    while not path.exists():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the child exited with {process.returncode} before {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come within {WAIT_S:g} s")
        time.sleep(0.05)


def _callgrind_control(switch: str, pid: int) -> None:
    """Switch callgrind's collection in process ``pid`` on or off."""
    subprocess.run(["callgrind_control", "-i", switch, str(pid)], check=True,
                   capture_output=True, timeout=60)


def measure(args: argparse.Namespace, tmp: Path) -> InstructionReport:
    marker = tmp / "marker"
    out = tmp / "callgrind.out"
    log_path = tmp / "valgrind.log"
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               f"--callgrind-out-file={out}", sys.executable, "-m", "offline.bench.instructions",
               "--child", str(marker), "--n", str(args.n), "--concurrency",
               str(args.concurrency), "--warmup", str(args.warmup), "--seed", str(args.seed),
               "--target", args.target]
    if args.config:
        command += ["--config", args.config]
    print(f"bench-instructions: starting the service under callgrind ({args.warmup} warm-up "
          f"routes, not counted)", file=sys.stderr, flush=True)
    # A fixed hash seed: dict and set layouts, and so the instructions, repeat run to run.
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env=environment)
    try:
        _wait_for(marker.with_suffix(".ready"), "the end of the warm-up", process)
        _callgrind_control("on", process.pid)
        marker.with_suffix(".go").touch()
        print(f"bench-instructions: counting {args.n} routes", file=sys.stderr, flush=True)
        _wait_for(marker.with_suffix(".done"), "the end of the counted routes", process)
        _callgrind_control("off", process.pid)
        marker.with_suffix(".stop").touch()
        process.wait(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"the child exited with {process.returncode}:\n"
                           f"{log_path.read_text(errors='replace')[-3000:]}")
    instructions = parse_collected(log_path.read_text(errors="replace"))
    annotate = subprocess.run(["callgrind_annotate", "--threshold=100", str(out)],
                              capture_output=True, text=True, check=False, timeout=300)
    return InstructionReport(command=_command_line(args), n=args.n, target=args.target,
                             concurrency=args.concurrency, instructions=instructions,
                             per_route=instructions / args.n,
                             by_object=shares_by_object(annotate.stdout))


def format_report(report: InstructionReport) -> str:
    lines = [f"command: {report.command}",
             f"{report.n} {_UNITS[report.target]} in groups of {report.concurrency}: "
             f"{report.instructions:,} instructions, {report.per_route:,.0f} per request "
             f"(user space; callgrind)",
             "", "share by shared object:"]
    for name, share in list(report.by_object.items())[:10]:
        lines.append(f"  {share:6.1%}  {name}")
    return "\n".join(lines)


Call = Callable[[int], Awaitable[object]]


async def _count(args: argparse.Namespace, marker: Path, call: Call) -> None:
    """``--warmup`` calls, then (between the markers the parent switches counting at) ``--n``
    calls in groups of ``--concurrency``."""
    for i in range(args.warmup):
        await call(i)
    marker.with_suffix(".ready").touch()
    _wait_for(marker.with_suffix(".go"), "the start of counting")
    for start in range(0, args.n, args.concurrency):
        await asyncio.gather(*(call(i) for i in range(start, min(start + args.concurrency,
                                                                   args.n))))
    marker.with_suffix(".done").touch()
    _wait_for(marker.with_suffix(".stop"), "the end of counting")


def asgi_post(app: Any, path: str) -> Callable[[bytes], Awaitable[int]]:
    """A ``POST`` of a JSON body to ``path`` of the ASGI ``app``, in memory; returns the
    status (the body is read and dropped)."""
    async def post(body: bytes) -> int:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": b"",
            "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80), "state": {},
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status = 0

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])

        await app(scope, receive, send)
        if status != 200:
            raise RuntimeError(f"POST {path} answered {status}")
        return status
    return post


async def _child(args: argparse.Namespace) -> None:
    from offline.bench.echo_app import create_echo_app
    from offline.bench.throughput import generate_route_bodies
    from router.public import RouteRequest, RoutingService, create_app, load_settings

    marker = Path(args.child)
    bodies = generate_route_bodies(300, args.seed)
    encoded = [msgspec.json.encode(body) for body in bodies]
    if args.target == "echo":
        echo = create_echo_app()
        post = asgi_post(echo, "/echo")
        async with echo.lifespan():
            await _count(args, marker, lambda i: post(encoded[i % len(encoded)]))
        return
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        settings = load_settings(args.config,
                                 {"ROUTER__STORAGE__URL": f"sqlite+aiosqlite:///{tmp}/log.db"})
        requests = [msgspec.convert(body, RouteRequest) for body in bodies]
        tenant = settings.auth.default_tenant
        app = create_app(settings)
        async with app.lifespan():  # on this loop: routes call the app's objects directly
            routing: RoutingService = app.state.routing
            if args.target == "route":
                post = asgi_post(app, "/v1/route")
                await _count(args, marker, lambda i: post(encoded[i % len(encoded)]))
            else:
                await _count(args, marker,
                             lambda i: routing.route(tenant, requests[i % len(requests)]))


def run(args: argparse.Namespace) -> int:
    if args.n < 1 or args.concurrency < 1 or args.warmup < 0:
        print("router bench-instructions: --n and --concurrency must be positive, --warmup >= 0",
              file=sys.stderr)
        return 2
    if args.child:
        asyncio.run(_child(args))
        return 0
    missing = [tool for tool in ("valgrind", "callgrind_control", "callgrind_annotate")
               if shutil.which(tool) is None]
    if missing:
        print(f"router bench-instructions: {', '.join(missing)} not found; install valgrind "
              "(Debian package valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        try:
            report = measure(args, Path(tmp))
        except (RuntimeError, ValueError, OSError, subprocess.SubprocessError) as exc:
            print(f"router bench-instructions: error: {exc}", file=sys.stderr)
            return 1
    print(format_report(report))
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(report)))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.bench.instructions")
    configure_parser(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
