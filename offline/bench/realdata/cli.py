"""``router bench-real``: route real prompts among 9 models against their real outcomes."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import msgspec

from offline.bench.realdata.batch_routers import BATCH_ROUTERS, UnknownRouterError, batch_routers
from offline.bench.realdata.benchmark import BenchmarkSpec, ProtocolResult, run_online, run_warm
from offline.bench.realdata.cv_protocol import run_crossval
from offline.bench.realdata.data import (
    ASSUMED_OUTPUT_TOKENS,
    RealDataError,
    default_data_dir,
    load_real_data,
)
from offline.bench.realdata.embeddings import (
    INSTALL_HINT,
    CachedEmbedder,
    default_cache_dir,
    embedding_extra_installed,
    load_minilm,
)
from offline.bench.realdata.policies import UnknownPolicyError, resolve_policy
from offline.bench.realdata.report import format_protocol, format_targets, save_plot
from offline.plots import plots_unavailable
from offline.progress import progress_bar

DEFAULT_LAMBDAS = (0.0, 100.0, 300.0, 1000.0)


class BenchReport(msgspec.Struct, frozen=True):
    """The ``--json`` document."""

    data: str
    output_tokens: int
    protocols: list[ProtocolResult]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``router bench-real`` options to ``parser``."""
    parser.add_argument("--data", type=Path, default=None,
                        help="directory with outcomes.jsonl.gz and models.json "
                        "(default: ../shared/data/llmrouter beside the repository)")
    parser.add_argument("--subset", choices=("code", "all"), default="code",
                        help="code: the 762 mbpp + human_eval prompts; all: 6,108 prompts")
    parser.add_argument("--lambdas", type=float, nargs="+", default=list(DEFAULT_LAMBDAS),
                        metavar="λ", help="cost weights, score per USD (default 0 100 300 1000)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per online router (default 5)")
    parser.add_argument("--protocol", choices=("online", "warm", "both", "cv"), default="both",
                        help="both = online and warm; cv: batch routers cross-validated over "
                        "every prompt of the subset, folds grouped by text (default both)")
    parser.add_argument("--folds", type=int, default=5,
                        help="cross-validation folds: the cv protocol and λ chosen by CV "
                        "(default 5)")
    parser.add_argument("--embeddings", action="store_true",
                        help="add prompt embeddings (all-MiniLM-L6-v2; needs the 'realdata' "
                        "extra): embedding batch routers and 'NAME +emb' online policies")
    parser.add_argument("--batch", action="append", metavar="NAME",
                        help="batch router of the warm and cv protocols, repeatable (default: "
                        "all; " + ", ".join(r.name for r in BATCH_ROUTERS) + "; emb* need "
                        "--embeddings)")
    parser.add_argument("--embedding-cache", type=Path, default=None, metavar="DIR",
                        help="embedding cache directory (default "
                        "$XDG_CACHE_HOME/adaptive-router/embeddings)")
    parser.add_argument("--policy", action="append", dest="policies", metavar="NAME",
                        help="online router: 'vw' (default), an exploration variant of it "
                        "(vw:squarecb=200, vw:epsilon=0.05, vw:regcbopt, ...) or "
                        "module:factory; repeatable")
    parser.add_argument("--output-tokens", type=int, default=ASSUMED_OUTPUT_TOKENS,
                        help=f"assumed completion tokens per prompt (default "
                        f"{ASSUMED_OUTPUT_TOKENS})")
    parser.add_argument("--keep-duplicates", action="store_true",
                        help="warm protocol: keep train prompts whose text is also in the test "
                        "split (leaks test outcomes into the history)")
    parser.add_argument("--config",
                        help="config whose [bandit] section the VW router uses (default "
                             "configs/default.toml)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write report.txt, report.json and costs.png into DIR")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="cost-vs-accuracy plot")
    parser.add_argument("--json", type=Path, metavar="PATH", help="the report as JSON")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by ``args``; print the tables. Returns the exit status."""
    from router.public import SettingsError, load_settings  # lazy: only the CLI needs router

    if args.seeds < 1 or not args.lambdas or args.output_tokens < 0 or args.folds < 2:
        print("bench-real: --seeds must be >= 1, --lambdas non-empty, --output-tokens >= 0, "
              "--folds >= 2", file=sys.stderr)
        return 2
    if (args.plot or args.out) and (reason := plots_unavailable()):
        print(f"bench-real: --plot/--out: {reason}", file=sys.stderr)
        return 2
    try:
        batch_routers(args.embeddings, args.batch)
    except UnknownRouterError as exc:
        print(f"bench-real: {exc}", file=sys.stderr)
        return 2
    embed = None
    if args.embeddings:
        if not embedding_extra_installed():
            print(f"bench-real: --embeddings: {INSTALL_HINT}", file=sys.stderr)
            return 2
        embed = CachedEmbedder(create_encoder=load_minilm,
                               cache_dir=args.embedding_cache or default_cache_dir()).embed
    try:
        factories = {name: resolve_policy(name) for name in (args.policies or ["vw"])}
        bandit = load_settings(args.config, dict(os.environ)).bandit
        data_dir = args.data or default_data_dir()
        data = load_real_data(data_dir).subset(args.subset)
    except (UnknownPolicyError, SettingsError, RealDataError) as exc:
        print(f"bench-real: {exc}", file=sys.stderr)
        return 2
    spec = BenchmarkSpec(subset=args.subset, lambdas=list(args.lambdas),
                         seeds=list(range(args.seeds)), policies=factories, bandit=bandit,
                         output_tokens=args.output_tokens, keep_duplicates=args.keep_duplicates,
                         embed=embed, folds=args.folds,
                         batch=None if args.batch is None else tuple(args.batch))
    results: list[ProtocolResult] = []
    with progress_bar("bench-real") as bar:
        spec = dataclasses.replace(spec, progress=bar)
        if args.protocol in ("online", "both"):
            results.append(run_online(data, spec))
        if args.protocol in ("warm", "both"):
            results.append(run_warm(data, spec))
        if args.protocol == "cv":
            results.append(run_crossval(data, spec))
    text = "\n\n".join(
        [f"data: {data_dir} ({len(data)} prompts, subset {args.subset}); cost = (prompt chars/4 "
         f"input + {args.output_tokens} output tokens) × models.json prices"
         + ("; prompt embeddings: all-MiniLM-L6-v2" if embed is not None else "")]
        + [format_protocol(r) for r in results] + [format_targets(r) for r in results]
    )
    print(text)
    report = BenchReport(data=str(data_dir), output_tokens=args.output_tokens, protocols=results)
    plot, json_path = args.plot, args.json
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.txt").write_text(text + "\n", encoding="utf-8")
        plot = plot or args.out / "costs.png"
        json_path = json_path or args.out / "report.json"
    if json_path is not None:
        json_path.write_bytes(msgspec.json.format(msgspec.json.encode(report)))
    if plot is not None:
        save_plot(results, plot)
    return 0
