"""``/health`` latency while two clients post feedback with 200,000 characters of code.

Starts ``router serve`` (SQLite) on 127.0.0.1, routes ``--decisions`` requests, then runs two
feedback clients for ``--seconds`` seconds while a third client times ``GET /health`` every 20
ms. ``--mode duplicate``: both clients replay one already-stored feedback (the duplicate path);
``--mode unique``: each post is the first feedback of its decision (the code is measured)::

    python -m offline.bench.feedback_code_load --mode duplicate
    python -m offline.bench.feedback_code_load --mode unique

Traffic goes to 127.0.0.1 only; the service and its database are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import msgspec

from offline.bench.soak_vocabulary import Decision, percentile, post, wait_ready

FUNCTION = '''
def handler_{i}(request: dict, retries: int = 3) -> str:
    """Handle one request."""
    for attempt in range(retries):
        if request.get("ok") and attempt > 0 or request.get("force"):
            return "done"
    return "failed"
'''
ROUTE = msgspec.json.encode({"task": {"type": "backend", "language": "python",
                                      "description": "Build a REST API with JWT auth"}})


def big_code() -> str:
    body = "".join(FUNCTION.format(i=i) for i in range(800))
    return body + "#" * (200_000 - len(body))


async def health_probe(port: int, stop: asyncio.Event, out: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while not stop.is_set():
        started = time.perf_counter()
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        await reader.readexactly(length)
        out.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.02)
    writer.close()


async def run(port: int, args: argparse.Namespace) -> tuple[list[float], int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ids = []
    for _ in range(args.decisions):
        _, body = await post(reader, writer, "/v1/route", ROUTE)
        ids.append(msgspec.json.decode(body, type=Decision).decision_id)
    writer.close()
    code = big_code()
    bodies = [msgspec.json.encode({"decision_id": i, "outcome": "approved", "code": code})
              for i in ids]
    if args.mode == "duplicate":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await post(reader, writer, "/v1/feedback", bodies[0])  # stored once
        writer.close()
        source: Iterator[bytes] = itertools.repeat(bodies[0])
    else:
        source = iter(bodies[1:])
    posted = 0

    async def client(stop: asyncio.Event) -> None:
        nonlocal posted
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for body in source:
            if stop.is_set():
                break
            status, _ = await post(reader, writer, "/v1/feedback", body)
            assert status == 200, status
            posted += 1
        writer.close()

    stop = asyncio.Event()
    latencies: list[float] = []
    tasks = [asyncio.create_task(client(stop)) for _ in range(2)]
    tasks.append(asyncio.create_task(health_probe(port, stop, latencies)))
    await asyncio.sleep(args.seconds)
    stop.set()
    await asyncio.gather(*tasks)
    return latencies, posted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("duplicate", "unique"), default="duplicate")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--decisions", type=int, default=400)
    parser.add_argument("--port", type=int, default=18732)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="router-code-load-") as tmp:
        env = {**os.environ, "ROUTER__SERVER__LOG_LEVEL": "warning"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "router.cli", "serve", "--host", "127.0.0.1",
             "--port", str(args.port), "--database-url", f"sqlite+aiosqlite:///{tmp}/router.db"],
            env=env,
        )
        try:
            wait_ready(args.port, proc)
            latencies, posted = asyncio.run(run(args.port, args))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
    print(f"mode {args.mode}: {posted} feedback posts of 200,000 characters in "
          f"{args.seconds:.0f} s by 2 clients")
    print(f"/health latency over {len(latencies)} probes: p50 "
          f"{statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms")


if __name__ == "__main__":
    main()
