"""CodeMetricsRunner: its worker process never outlives the service, even after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SERVICE = """
import asyncio, os, sys
from router.services.code_metrics import CodeMetricsRunner
from router.settings import CodeMetricsSettings

async def main() -> None:
    runner = CodeMetricsRunner(CodeMetricsSettings(timeout_s=30.0))
    assert await runner.measure("def f(x):\\n    return x\\n", "python") is not None
    print(*Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split())
    sys.stdout.flush()
    await asyncio.sleep(60)

from pathlib import Path
asyncio.run(main())
"""


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_worker_exits_when_the_service_is_killed() -> None:
    service = subprocess.Popen(
        [sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    assert service.stdout is not None
    workers = [int(pid) for pid in service.stdout.readline().split()]
    assert workers  # the pool's worker (and multiprocessing's resource tracker)
    assert all(running(pid) for pid in workers)
    service.send_signal(signal.SIGKILL)
    service.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in workers):
        assert time.monotonic() < deadline, "the code metrics worker outlived the service"
        time.sleep(0.1)
