"""``router bench``: alternating echo/route rounds, pooling, the report and argument checks."""

from __future__ import annotations

import argparse

import pytest

from offline.bench import throughput as bench
from offline.bench.loadgen import LoadResult, LoadSpec


def result(url: str, requests: int, duration_s: float, p50: float, p99: float) -> LoadResult:
    return LoadResult(generator="wrk", url=url, requests=requests, duration_s=duration_s,
                      requests_per_s=requests / duration_s, p50_ms=p50, p99_ms=p99, non_2xx=0,
                      socket_errors=0, exhausted=False)


def test_pool_sums_requests_and_time_and_bounds_p99_by_the_worst_round() -> None:
    pooled = bench.pool([result("u", 2000, 2.0, 5.0, 9.0), result("u", 1000, 2.0, 7.0, 15.0),
                         result("u", 3000, 2.0, 4.0, 8.0)])
    assert pooled.requests == 6000
    assert pooled.duration_s == pytest.approx(6.0)
    assert pooled.requests_per_s == pytest.approx(1000.0)  # not the mean of the rates
    assert pooled.p50_ms == 5.0
    assert pooled.p99_ms == 15.0


def test_rounds_alternate_their_order() -> None:
    assert [bench.round_order(i, ["echo", "route"]) for i in range(4)] == [
        ["echo", "route"], ["route", "echo"], ["echo", "route"], ["route", "echo"]]


def test_measure_alternating_splits_the_duration_and_warms_each_endpoint_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, float]] = []

    def fake_run_load(spec: LoadSpec, generator: object = None) -> LoadResult:
        calls.append((spec.url, spec.duration_s))
        return result(spec.url, 100, spec.duration_s, 1.0, 2.0)

    monkeypatch.setattr(bench, "run_load", fake_run_load)
    specs = {name: LoadSpec(url=name, bodies_path="b", duration_s=10.0, connections=16)
             for name in ("echo", "route")}
    rounds = bench.measure_alternating(specs, 5, 3.0, "wrk")
    assert calls == [("echo", 3.0), ("route", 3.0),
                     ("echo", 2.0), ("route", 2.0), ("route", 2.0), ("echo", 2.0),
                     ("echo", 2.0), ("route", 2.0), ("route", 2.0), ("echo", 2.0),
                     ("echo", 2.0), ("route", 2.0)]
    assert [len(rounds[name]) for name in ("echo", "route")] == [5, 5]


def test_a_failed_round_fails_the_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(spec: LoadSpec, generator: object = None) -> LoadResult:
        return LoadResult(generator="wrk", url=spec.url, requests=10, duration_s=1.0,
                          requests_per_s=10.0, p50_ms=1.0, p99_ms=2.0, non_2xx=3,
                          socket_errors=0, exhausted=False)

    monkeypatch.setattr(bench, "run_load", failing)
    spec = LoadSpec(url="u", bodies_path="b", duration_s=2.0, connections=1)
    with pytest.raises(bench.BenchError, match="3 non-2xx"):
        bench.measure_alternating({"route": spec}, 2, 0.0, "wrk")


def test_the_report_shows_the_rounds_and_the_command_reproduces_them() -> None:
    parser = argparse.ArgumentParser()
    bench.configure_parser(parser)
    args = parser.parse_args(["--rounds", "4", "--duration", "8"])
    echo = result("e", 40000, 4.0, 1.0, 3.0)
    route = result("r", 10400, 4.0, 6.0, 9.0)
    report = bench.BenchReport(
        command=bench._command_line(args), generator="wrk", connections=16, duration_s=8.0,
        warmup_s=3.0, catalog_actions=160,
        endpoints=[bench.Endpoint(name="POST /echo", load=echo, ratio_to_echo=1.0),
                   bench.Endpoint(name="POST /v1/route", load=route, ratio_to_echo=0.26)],
        in_process=[], verdicts=bench.verdicts(echo, route), rounds=4,
        round_ratios=[0.25, 0.27, 0.24, 0.28])
    text = bench.format_report(report)
    assert "--rounds 4" in text
    assert "--duration 8" in text
    assert "in 4 alternating rounds" in text
    assert "route/echo by round: 0.250 0.270 0.240 0.280 (median 0.250)" in text
    assert "PASS  route/echo throughput >= 0.25: 0.260 = 2600 / 10000 req/s" in text


@pytest.mark.parametrize("argv", [["--rounds", "0"], ["--rounds", "11"],
                                  ["--duration", "3", "--rounds", "4"]])
def test_rounds_shorter_than_a_second_are_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    bench.configure_parser(parser)
    assert bench.run(parser.parse_args(argv)) == 2
    assert "--rounds" in capsys.readouterr().err


def test_the_routers_sqlite_counters_are_read_from_its_metrics_and_reported() -> None:
    text = "\n".join([
        "# HELP router_sqlite_checkpoints_total WAL checkpoints",
        "router_sqlite_writer_process_transactions_total 2718.0",
        "router_sqlite_writer_process_starts_total 1.0",
        'router_sqlite_lookups_total{connection="loop"} 50.0',
        'router_sqlite_checkpoints_total{complete="true"} 10.0',
        'router_sqlite_checkpoints_total{complete="false"} 1.0',
        "router_sqlite_wal_frames 9417.0",
        "router_learned_outcomes 0.0",
    ])
    counters = bench.storage_counters(text)
    assert counters == {"writer process writes": 2718.0, "writer process starts": 1.0,
                        "complete checkpoints": 10.0, "incomplete checkpoints": 1.0,
                        "WAL frames at the last checkpoint": 9417.0}
    assert bench.storage_counters("router_learned_outcomes 3.0") == {}
    echo = result("e", 40000, 4.0, 1.0, 3.0)
    route = result("r", 8000, 4.0, 6.0, 9.0)
    report = bench.BenchReport(
        command="router bench", generator="wrk", connections=16, duration_s=8.0, warmup_s=3.0,
        catalog_actions=160, endpoints=[], in_process=[], verdicts=bench.verdicts(echo, route),
        storage=counters)
    assert ("router SQLite after the run: writer process writes 2718, writer process starts 1, "
            "complete checkpoints 10, incomplete checkpoints 1, "
            "WAL frames at the last checkpoint 9417"
            ) in bench.format_report(report)
