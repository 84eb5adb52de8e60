"""The ``router`` command: serve, keys, simulate, train, models, import, export, replay,
promote, retention and the benchmarks (bench, bench-instructions, bench-models, bench-replay,
bench-real, bench-shadows, bench-suite).

Every command logs to stderr through the service's one setup (router/logs.py), at the level and
in the format of the options before the command (``router --log-format json train``):
``serve``'s default to its configuration's ``[server] log_level`` and ``log_format``, the other
commands' to warnings, as aligned text on a terminal and JSON lines otherwise.

An offline command's module is imported only when that command runs, so that ``router serve``
loads only the service. The benchmarks live in ``offline/bench/``, which a source checkout has
and the wheel leaves out: installed from the wheel, a ``router bench*`` command says so in one
line.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NamedTuple

from router.logs import LogFormat, configure_logging
from router.settings import SettingsError, load_settings

LOG_OPTIONS = ("--log-level", "--log-format")  # the options before the command


def _serve(args: argparse.Namespace) -> int:
    from router.server import create_server_config, run_server

    overrides: dict[str, str] = {}
    if args.database_url:
        overrides["ROUTER__STORAGE__URL"] = args.database_url
    if args.config:
        overrides["ROUTER_CONFIG"] = args.config
    if args.log_level:
        overrides["ROUTER__SERVER__LOG_LEVEL"] = args.log_level
    if args.log_format:
        overrides["ROUTER__SERVER__LOG_FORMAT"] = args.log_format
    environ = {**os.environ, **overrides}
    try:
        settings = load_settings(environ.get("ROUTER_CONFIG"), environ)
    except SettingsError as exc:
        print(f"router: invalid configuration: {exc}", file=sys.stderr)
        return 2
    # uvicorn applies the same setup again (create_server_config); the migration logs alike.
    configure_logging(settings.server.log_level, settings.server.log_format)
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


class OfflineCommand(NamedTuple):
    """A command whose ``configure`` and ``run`` functions live in the offline ``module``."""

    name: str
    module: str
    help: str
    configure: str = "configure_parser"
    run: str = "run"


OFFLINE_COMMANDS = (
    OfflineCommand("simulate", "offline.simulate", "drive the router with a simulated world"),
    OfflineCommand("train", "offline.train", "train the batch models and register a version",
                   "configure_train_parser", "run_train"),
    OfflineCommand("models", "offline.train",
                   "list, promote or roll back batch-model versions",
                   "configure_models_parser", "run_models"),
    OfflineCommand("import", "offline.import_export", "load a history file into the event log",
                   "configure_import_parser", "run_import"),
    OfflineCommand("export", "offline.export",
                   "dataset statistics; the log as a history file"),
    OfflineCommand("replay", "offline.replay.cli",
                   "off-policy evaluation of target policies on a log"),
    OfflineCommand("promote", "offline.promote",
                   "replace the served policy by a candidate that the logs show is better"),
    OfflineCommand("retention", "offline.retention",
                   "archive old decisions to Parquet and delete them from the log"),
)
BENCHMARK_PACKAGE = "offline.bench"
BENCHMARK_COMMANDS = (
    OfflineCommand("bench", "offline.bench.throughput", "HTTP and in-process latency benchmark"),
    OfflineCommand("bench-instructions", "offline.bench.instructions",
                   "CPU instructions per route decision, counted by callgrind"),
    OfflineCommand("bench-models", "offline.bench.models",
                   "batch-model training and serving speed"),
    OfflineCommand("bench-shadows", "offline.bench.shadows",
                   "route latency without and with shadows"),
    OfflineCommand("bench-replay", "offline.bench.replay",
                   "off-policy evaluation speed on a 1M-row log"),
    OfflineCommand("bench-real", "offline.bench.realdata.cli",
                   "route real prompts against real outcomes"),
    OfflineCommand("bench-suite", "offline.bench.suite.cli",
                   "learning quality on many environments against baselines"),
)


def _benchmarks_absent(args: argparse.Namespace) -> int:
    print(f"router {args.command}: the benchmarks are not installed; they run from a source "
          "checkout of the router (offline/bench/)", file=sys.stderr)
    return 2


def _configure(parser: argparse.ArgumentParser, command: OfflineCommand) -> None:
    try:
        module = importlib.import_module(command.module)
    except ModuleNotFoundError as exc:
        if command not in BENCHMARK_COMMANDS or exc.name != BENCHMARK_PACKAGE:
            raise
        parser.set_defaults(handler=_benchmarks_absent)
        return
    getattr(module, command.configure)(parser)
    parser.set_defaults(handler=getattr(module, command.run))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser. With ``command``, only that command's arguments are
    configured (and only its module imported); without, every command's."""
    parser = argparse.ArgumentParser(prog="router", description="Adaptive router for LLM codegen")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                        help="lowest level logged (default: serve's [server] log_level, "
                        "warning for the other commands)")
    parser.add_argument("--log-format", choices=["json", "text"],
                        help="log lines on stderr as JSON objects or aligned text (default: "
                        "serve's [server] log_format; for the other commands text on a "
                        "terminal, json otherwise)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--config", help="TOML config (default: configs/default.toml)")
    serve.add_argument("--host", help="bind address (default from config: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default from config: 8000)")
    serve.add_argument("--database-url", help="SQLAlchemy async URL of the event log")
    serve.add_argument("--workers", type=int, help="worker processes (default from config: 1)")
    serve.set_defaults(handler=_serve)

    key = commands.add_parser("keys", help="list API keys (by id) or revoke one")
    if command in (None, "keys"):
        from router import keys_command

        keys_command.configure_parser(key)
        key.set_defaults(handler=keys_command.run)

    for offline in OFFLINE_COMMANDS + BENCHMARK_COMMANDS:
        sub = commands.add_parser(offline.name, help=offline.help)
        if command in (None, offline.name):
            _configure(sub, offline)
    return parser


def _command_of(arguments: Sequence[str]) -> str | None:
    """The command's name: the first word that is neither an option nor a log option's value."""
    words = iter(arguments)
    for word in words:
        if word in LOG_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_of(arguments))
    args, unknown = parser.parse_known_args(arguments)
    if unknown and args.handler is not _benchmarks_absent:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command != "serve":  # serve's setup comes from its configuration
        log_format: LogFormat = args.log_format or (
            "text" if sys.stderr.isatty() else "json")
        configure_logging(args.log_level or "warning", log_format)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
