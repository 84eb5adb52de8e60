"""The benchmark's load generator: wrk report parsing and the Python fallback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from offline.bench.loadgen import LoadGenError, LoadSpec, parse_wrk_output, run_load

# Real wrk 4.1.0 reports, captured against ``router serve`` and the echo app (the last one with
# the script of ``wrk_script``, whose ``done`` adds the exhaustion line). wrk pads "1.33s ".
WRK_CLEAN = """\
Running 5s test @ http://127.0.0.1:8765/v1/route
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   161.21ms  289.26ms   1.61s    87.52%
    Req/Sec   380.90    104.40   540.00     70.00%
  Latency Distribution
     50%   20.09ms
     75%  156.56ms
     90%  553.73ms
     99%    1.33s\x20
  1899 requests in 5.01s, 1.95MB read
Requests/sec:    379.19
Transfer/sec:    399.12KB
"""

WRK_NON_2XX = """\
Running 2s test @ http://127.0.0.1:8765/v1/route
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.20ms    6.05ms  63.92ms   96.90%
    Req/Sec     3.29k   694.65     4.09k    85.71%
  Latency Distribution
     50%    1.07ms
     75%    1.27ms
     90%    2.07ms
     99%   41.19ms
  6875 requests in 2.10s, 2.61MB read
  Non-2xx or 3xx responses: 6875
Requests/sec:   3276.22
Transfer/sec:      1.24MB
"""

WRK_TIMEOUTS = """\
Running 3s test @ http://127.0.0.1:8765/v1/route
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    52.81ms   91.23ms 575.86ms   88.99%
    Req/Sec   347.37    121.93   575.00     73.33%
  Latency Distribution
     50%   11.28ms
     75%   56.29ms
     90%  160.54ms
     99%  437.05ms
  1040 requests in 3.01s, 1.07MB read
  Socket errors: connect 0, read 0, write 0, timeout 2
Requests/sec:    345.80
Transfer/sec:    363.91KB
"""

WRK_EXHAUSTED = """\
Running 1s test @ http://127.0.0.1:8766
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   515.38us  229.18us   5.28ms   89.86%
    Req/Sec     7.86k   778.88     8.49k    90.91%
  Latency Distribution
     50%  464.00us
     75%  545.00us
     90%  693.00us
     99%    0.98ms
  8605 requests in 1.10s, 7.00MB read
Requests/sec:   7823.53
Transfer/sec:      6.37MB
loadgen-exhausted-threads: 1
"""


def test_parse_wrk_reads_rate_and_percentiles_in_milliseconds() -> None:
    report = parse_wrk_output(WRK_CLEAN)
    assert report.requests == 1899
    assert report.duration_s == pytest.approx(5.01)
    assert report.requests_per_s == pytest.approx(379.19)
    assert report.percentiles_ms[50] == pytest.approx(20.09)
    assert report.percentiles_ms[99] == pytest.approx(1330.0)
    assert (report.non_2xx, report.socket_errors, report.exhausted_threads) == (0, 0, 0)


def test_parse_wrk_counts_failed_responses_and_socket_errors() -> None:
    non_2xx = parse_wrk_output(WRK_NON_2XX)
    assert non_2xx.non_2xx == 6875
    assert non_2xx.percentiles_ms[50] == pytest.approx(1.07)
    timeouts = parse_wrk_output(WRK_TIMEOUTS)
    assert timeouts.socket_errors == 2
    assert timeouts.non_2xx == 0


def test_parse_wrk_reads_microseconds_and_the_exhaustion_line() -> None:
    report = parse_wrk_output(WRK_EXHAUSTED)
    assert report.percentiles_ms[50] == pytest.approx(0.464)
    assert report.percentiles_ms[99] == pytest.approx(0.98)
    assert report.duration_s == pytest.approx(1.10)
    assert report.exhausted_threads == 1


def test_parse_wrk_rejects_a_report_without_latency_distribution() -> None:
    without_latency = "\n".join(
        line for line in WRK_CLEAN.splitlines() if "%" not in line or "Stdev" in line
    )
    with pytest.raises(LoadGenError, match="--latency"):
        parse_wrk_output(without_latency)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "offline.bench.echo_app", "--port", str(port),
         "--log-level", "warning"]
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"{base}/echo"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _bodies(tmp_path: Path, n: int) -> str:
    path = tmp_path / "bodies.jsonl"
    bodies = [
        {
            "task": {"type": "backend", "language": "python", "description": f"task {i}"},
            "context": {"project_id": "p1", "agent": "implementation"},
            "objective": "balanced",
        }
        for i in range(n)
    ]
    path.write_bytes(b"".join(msgspec.json.encode(body) + b"\n" for body in bodies))
    return str(path)


def test_python_fallback_measures_the_echo_app(echo_url: str, tmp_path: Path) -> None:
    spec = LoadSpec(url=echo_url, bodies_path=_bodies(tmp_path, 20), duration_s=1.0, connections=4)
    result = run_load(spec, "python")
    assert result.generator == "python"
    assert result.requests > 0
    assert result.requests_per_s > 0
    assert 0 < result.p50_ms <= result.p99_ms
    assert (result.non_2xx, result.socket_errors) == (0, 0)
    assert not result.exhausted


def test_python_fallback_reports_unique_bodies_running_out(echo_url: str, tmp_path: Path) -> None:
    spec = LoadSpec(
        url=echo_url, bodies_path=_bodies(tmp_path, 3), duration_s=1.0, connections=2, unique=True
    )
    result = run_load(spec, "python")
    assert result.requests > 3
    assert result.exhausted


def test_python_fallback_counts_rejected_requests(echo_url: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"task": {"type": "x"}, "unknown": 1}\n')
    result = run_load(
        LoadSpec(url=echo_url, bodies_path=str(path), duration_s=0.5, connections=2), "python"
    )
    assert result.requests > 0
    assert result.non_2xx == result.requests
