"""``router bench-replay``: time off-policy evaluation of a large log, and its memory.

Writes (once; reused when present) a Parquet log of ``--rows`` decisions over ``--actions``
actions from a non-uniform logging policy, then, each in a fresh process so that peak RSS is
the measurement's own:

- the reference: a plain NumPy pass over the same file in the same chunks (read the three
  columns, IPS of the uniform policy), i.e. the floor any evaluator pays for I/O;
- ``router replay``'s evaluation (both passes: validation and estimates) of the uniform policy
  and one fixed action with DM, IPS, SNIPS, DR and Switch-DR, analytic intervals and the
  Poisson bootstrap, at each ``--chunk-rows`` value.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from offline.progress import progress_bar


def action_name(index: int) -> str:
    return f"a{index:03d}"


def write_log(path: Path, rows: int, actions: int, seed: int, chunk_rows: int = 100_000) -> None:
    """Each row prefers one action (drawn from a skewed distribution) with probability 0.6 and
    spreads the rest uniformly; rewards are Bernoulli with per-action means and a small
    bonus for the preferred action. Written chunk by chunk, so memory stays bounded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    means = rng.uniform(0.2, 0.8, actions)
    popularity = rng.dirichlet(np.full(actions, 0.5))
    names = np.asarray([action_name(i) for i in range(actions)], dtype=object)
    start = np.datetime64("2026-01-01T00:00:00", "s")
    tmp = path.with_suffix(".partial")
    writer: Any = None
    try:
        for first in range(0, rows, chunk_rows):
            n = min(chunk_rows, rows - first)
            preferred = rng.choice(actions, size=n, p=popularity)
            explore = rng.random(n) >= 0.6
            chosen = np.where(explore, rng.integers(0, actions, n), preferred)
            propensity = np.where(chosen == preferred, 0.6, 0.0) + 0.4 / actions
            success = means[chosen] + np.where(chosen == preferred, 0.1, 0.0)
            reward = (rng.random(n) < success).astype(np.float64)
            stamps = start + np.arange(first, first + n) * np.timedelta64(30, "s")
            table = pa.table({"action": names[chosen], "propensity": propensity,
                              "reward": reward, "timestamp": stamps.astype("datetime64[ms]")})
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(path)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure_reference(path: str, chunk_rows: int, actions: int) -> dict[str, float]:
    """Plain NumPy: read the columns chunk by chunk and compute uniform-policy IPS."""
    import pyarrow.parquet as pq

    started = time.perf_counter()
    total, n = 0.0, 0
    for batch in pq.ParquetFile(path).iter_batches(
            batch_size=chunk_rows, columns=["action", "propensity", "reward"]):
        frame = batch.to_pandas()
        weights = (1.0 / actions) / frame["propensity"].to_numpy()
        total += float((weights * frame["reward"].to_numpy()).sum())
        n += len(frame)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": n, "ips_uniform": total / n,
            "peak_rss_mb": _peak_rss_mb()}


def measure_replay(path: str, chunk_rows: int, bootstrap: int) -> dict[str, Any]:
    from offline.replay.estimators import EstimatorOptions
    from offline.replay.evaluate import evaluate
    from offline.replay.log import FileLog
    from offline.replay.policies import FixedPolicy, UniformPolicy

    started = time.perf_counter()
    report = evaluate(FileLog(path, chunk_rows=chunk_rows),
                      [UniformPolicy(), FixedPolicy(action_name(0))],
                      EstimatorOptions(bootstrap=bootstrap))
    seconds = time.perf_counter() - started
    estimates = {name: {e: report.policies[name].estimates[e].value
                        for e in ("ips", "snips", "dr")} for name in report.policies}
    return {"seconds": seconds, "rows": report.n, "estimates": estimates,
            "peak_rss_mb": _peak_rss_mb()}


def _child(kind: str, path: Path, chunk_rows: int, actions: int,
           bootstrap: int) -> dict[str, Any]:
    code = ("import json, sys; from offline.replay import bench; "
            f"print(json.dumps(bench.measure_{kind}(*json.loads(sys.argv[1]))))")
    arguments = [str(path), chunk_rows, actions if kind == "reference" else bootstrap]
    done = subprocess.run([sys.executable, "-c", code, json.dumps(arguments)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} measurement failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--actions", type=int, default=100)
    parser.add_argument("--log", default="bench-replay.parquet",
                        help="the generated log (reused when it exists with the same size)")
    parser.add_argument("--chunk-rows", type=int, action="append",
                        help="chunk sizes to measure (repeatable; default 25000 and 100000)")
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    path = Path(args.log)
    meta_path = path.with_suffix(".json")
    meta = {"rows": args.rows, "actions": args.actions, "seed": args.seed}
    fresh = path.exists() and meta_path.exists() and json.loads(meta_path.read_text()) == meta
    if not fresh:
        print(f"writing {args.rows:,} decisions over {args.actions} actions to {path} …",
              file=sys.stderr, flush=True)
        started = time.perf_counter()
        write_log(path, args.rows, args.actions, args.seed)
        meta_path.write_text(json.dumps(meta))
        print(f"written in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    rows = pq.ParquetFile(path).metadata.num_rows
    print(f"log: {path} ({rows:,} rows, {args.actions} actions, "
          f"{path.stat().st_size / 1e6:.1f} MB Parquet)")
    print(f"{'measurement':<44}{'chunk':>9}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>13}"
          f"{'ratio':>8}")
    sizes = args.chunk_rows or [25_000, 100_000]
    for number, chunk_rows in enumerate(sizes, start=1):
        with progress_bar(f"bench-replay: chunk size {number}/{len(sizes)}", 2) as bar:
            reference = _child("reference", path, chunk_rows, args.actions, args.bootstrap)
            bar.advance()
            replay = _child("replay", path, chunk_rows, args.actions, args.bootstrap)
        print(f"{'plain NumPy pass (reference)':<44}{chunk_rows:>9,}"
              f"{reference['seconds']:>10.2f}{rows / reference['seconds']:>12,.0f}"
              f"{reference['peak_rss_mb']:>13.0f}{1.0:>8.1f}")
        label = f"replay: 2 policies, 5 estimators, {args.bootstrap} boot."
        print(f"{label:<44}{chunk_rows:>9,}{replay['seconds']:>10.2f}"
              f"{rows / replay['seconds']:>12,.0f}{replay['peak_rss_mb']:>13.0f}"
              f"{replay['seconds'] / reference['seconds']:>8.1f}")
        ips = replay["estimates"]["uniform"]["ips"]
        if abs(ips - reference["ips_uniform"]) > 1e-9 * max(1.0, abs(ips)):
            print(f"error: replay's uniform IPS {ips} differs from the reference "
                  f"{reference['ips_uniform']}", file=sys.stderr)
            return 1
    return 0
