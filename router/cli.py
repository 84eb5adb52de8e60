"""The ``router`` command: serve, simulate, bench, train, models, import, export, replay,
promote, retention and the benchmarks (bench, bench-instructions, bench-models, bench-replay,
bench-real, bench-shadows, bench-suite).

Offline commands import their modules lazily so that ``router serve`` loads only the service.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from router.settings import SettingsError, load_settings


def _serve(args: argparse.Namespace) -> int:
    from router.server import create_server_config, run_server

    overrides: dict[str, str] = {}
    if args.database_url:
        overrides["ROUTER__STORAGE__URL"] = args.database_url
    if args.config:
        overrides["ROUTER_CONFIG"] = args.config
    environ = {**os.environ, **overrides}
    try:
        settings = load_settings(environ.get("ROUTER_CONFIG"), environ)
    except SettingsError as exc:
        print(f"router: invalid configuration: {exc}", file=sys.stderr)
        return 2
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    workers = args.workers or settings.server.workers
    # Migrate, create the server secret and store the configured keys once here, so that
    # worker processes never race on the schema, the secret file or the key rows.
    from router.auth import ConfiguredKeys
    from router.server_secret import load_keyring
    from router.storage.api_keys import ApiKeyStore
    from router.storage.database import create_engine, migrate

    try:
        keys = ConfiguredKeys(settings.auth.api_keys, load_keyring(settings))
    except SettingsError as exc:
        print(f"router: {exc}", file=sys.stderr)
        return 2

    async def _prepare() -> None:
        engine = create_engine(settings.storage.url)
        try:
            await migrate(engine)
            await ApiKeyStore(engine).sync(keys.hashes, keys.aliases,
                                           [settings.auth.default_tenant])
        finally:
            await engine.dispose()

    asyncio.run(_prepare())
    os.environ.update(overrides)
    os.environ["ROUTER__STORAGE__MIGRATE_ON_START"] = "false"
    config = create_server_config(
        "router.app:create_app_from_environ", settings.server, host=host, port=port,
        workers=workers,
    )
    return 0 if run_server(config) else 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="router", description="Adaptive router for LLM codegen")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--config", help="TOML config (default: configs/default.toml)")
    serve.add_argument("--host", help="bind address (default from config: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default from config: 8000)")
    serve.add_argument("--database-url", help="SQLAlchemy async URL of the event log")
    serve.add_argument("--workers", type=int, help="worker processes (default from config: 1)")
    serve.set_defaults(handler=_serve)

    from router import keys_command

    key = commands.add_parser("keys", help="list API keys (by id) or revoke one")
    keys_command.configure_parser(key)
    key.set_defaults(handler=keys_command.run)

    from offline import bench, simulate

    sim = commands.add_parser("simulate", help="drive the router with a simulated world")
    simulate.configure_parser(sim)
    sim.set_defaults(handler=simulate.run)

    ben = commands.add_parser("bench", help="HTTP and in-process latency benchmark")
    bench.configure_parser(ben)
    ben.set_defaults(handler=bench.run)

    from offline import bench_instructions

    bin_ = commands.add_parser("bench-instructions",
                               help="CPU instructions per route decision, counted by callgrind")
    bench_instructions.configure_parser(bin_)
    bin_.set_defaults(handler=bench_instructions.run)

    from offline import bench_models, train

    bmo = commands.add_parser("bench-models", help="batch-model training and serving speed")
    bench_models.configure_parser(bmo)
    bmo.set_defaults(handler=bench_models.run)

    tra = commands.add_parser("train", help="train the batch models and register a version")
    train.configure_train_parser(tra)
    tra.set_defaults(handler=train.run_train)

    mod = commands.add_parser("models", help="list, promote or roll back batch-model versions")
    train.configure_models_parser(mod)
    mod.set_defaults(handler=train.run_models)

    from offline import import_export

    imp = commands.add_parser("import", help="load a history file into the event log")
    import_export.configure_import_parser(imp)
    imp.set_defaults(handler=import_export.run_import)

    from offline import export

    exp = commands.add_parser("export", help="dataset statistics; the log as a history file")
    export.configure_parser(exp)
    exp.set_defaults(handler=export.run)

    from offline.replay import cli as replay

    rep = commands.add_parser("replay", help="off-policy evaluation of target policies on a log")
    replay.configure_parser(rep)
    rep.set_defaults(handler=replay.run)

    from offline import promote

    pro = commands.add_parser(
        "promote", help="replace the served policy by a candidate that the logs show is better"
    )
    promote.configure_parser(pro)
    pro.set_defaults(handler=promote.run)

    from offline import retention

    ret = commands.add_parser("retention",
                              help="archive old decisions to Parquet and delete them from the log")
    retention.configure_parser(ret)
    ret.set_defaults(handler=retention.run)

    from offline import bench_shadows

    bsh = commands.add_parser("bench-shadows", help="route latency without and with shadows")
    bench_shadows.configure_parser(bsh)
    bsh.set_defaults(handler=bench_shadows.run)

    from offline.replay import bench as replay_bench

    brp = commands.add_parser("bench-replay", help="off-policy evaluation speed on a 1M-row log")
    replay_bench.configure_parser(brp)
    brp.set_defaults(handler=replay_bench.run)

    from offline.realdata import cli as realdata_cli

    real = commands.add_parser("bench-real", help="route real prompts against real outcomes")
    realdata_cli.configure_parser(real)
    real.set_defaults(handler=realdata_cli.run)

    from offline.suite import cli as suite_cli

    suite = commands.add_parser("bench-suite",
                                help="learning quality on many environments against baselines")
    suite_cli.configure_parser(suite)
    suite.set_defaults(handler=suite_cli.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
