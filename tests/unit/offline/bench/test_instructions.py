"""``router bench-instructions``: parsing callgrind's output, argument checks, a real count."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import msgspec
import pytest

from offline.bench import instructions as bench_instructions
from router.cli import main

ANNOTATE = """\
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
1,000,000 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                   file:function
--------------------------------------------------------------------------------
500,000 (50.00%)  Python/ceval.c:_PyEval_EvalFrameDefault [/usr/lib/libpython3.11.so.1.0]
300,000 (30.00%)  ???:d2d [/venv/site-packages/msgspec/_core.cpython-311-x86_64-linux-gnu.so]
150,000 (15.00%)  Objects/obmalloc.c:_PyObject_Free [/usr/lib/libpython3.11.so.1.0]
 50,000 ( 5.00%)  ???:0x00000000000ff650 [/usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6]
"""


def test_shares_add_up_per_shared_object_largest_first() -> None:
    shares = bench_instructions.shares_by_object(ANNOTATE)
    assert list(shares) == ["libpython3.11.so.1.0", "_core.cpython-311-x86_64-linux-gnu.so",
                            "libsqlite3.so.0.8.6"]
    assert shares["libpython3.11.so.1.0"] == pytest.approx(0.65)
    assert shares["libsqlite3.so.0.8.6"] == pytest.approx(0.05)
    assert bench_instructions.shares_by_object("no function lines") == {}


def test_the_collected_count_is_read_from_valgrinds_output() -> None:
    log = "==8024== Events    : Ir\n==8024== Collected : 379700334\n==8024== I   refs: 379,700,334"
    assert bench_instructions.parse_collected(log) == 379_700_334
    with pytest.raises(ValueError, match="Collected"):
        bench_instructions.parse_collected("valgrind: failed to start tool")


@pytest.mark.parametrize("argv", [["--n", "0"], ["--concurrency", "0"], ["--warmup", "-1"]])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench-instructions", *argv]) == 2
    assert "must be positive" in capsys.readouterr().err


def test_without_valgrind_it_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["bench-instructions"]) == 2
    assert "install valgrind" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_counts_the_instructions_of_real_routes(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    code = main(["bench-instructions", "--n", "16", "--warmup", "8", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    report = msgspec.json.decode(out.read_bytes(), type=bench_instructions.InstructionReport)
    assert report.n == 16
    # A route executes hundreds of thousands of instructions (1.6 million on the default
    # catalog); far fewer would mean the routes ran outside the counted window.
    assert report.per_route > 200_000
    assert report.per_route == pytest.approx(report.instructions / 16)
    assert any("python" in name for name in report.by_object)  # the interpreter, counted
    assert "instructions" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_counts_whole_echo_requests_through_the_asgi_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    code = main(["bench-instructions", "--target", "echo", "--n", "16", "--warmup", "8",
                 "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    report = msgspec.json.decode(out.read_bytes(), type=bench_instructions.InstructionReport)
    assert report.target == "echo"
    # Litestar decoding and encoding a RouteRequest: about 330,000 instructions a request.
    assert 50_000 < report.per_route < 1_000_000
    assert "POST /echo (ASGI)" in capsys.readouterr().out


async def test_an_asgi_post_runs_the_whole_app_and_fails_on_an_error_status() -> None:
    from offline.bench.echo_app import create_echo_app
    from offline.bench.throughput import generate_route_bodies

    app = create_echo_app()
    post = bench_instructions.asgi_post(app, "/echo")
    async with app.lifespan():
        body = msgspec.json.encode(generate_route_bodies(1, 0)[0])
        assert await post(body) == 200
        with pytest.raises(RuntimeError, match="answered 400"):
            await post(b'{"task": {"type": 7}}')  # a validation error, as over HTTP


def test_the_printed_command_reproduces_the_options() -> None:
    parser = argparse.ArgumentParser()
    bench_instructions.configure_parser(parser)
    args = parser.parse_args(["--n", "50", "--config", "configs/catalog-200.toml"])
    assert bench_instructions._command_line(args) == (
        "router bench-instructions --n 50 --concurrency 8 --warmup 100 "
        "--config configs/catalog-200.toml")
    args = parser.parse_args(["--target", "route"])
    assert bench_instructions._command_line(args) == (
        "router bench-instructions --n 400 --concurrency 8 --warmup 100 --target route")
