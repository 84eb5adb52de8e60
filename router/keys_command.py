"""``router keys``: list the stored API keys, revoke one, or print a key's id.

A key is named by its id, the first hex digits of its HMAC hash under the server secret; the
key itself is never printed or stored. Revocation is written to the database and running
services refuse the key within ``[auth] revocation_poll_interval_s``; it stays refused even
while the key is still configured (remove it from ``ROUTER__AUTH__API_KEYS`` too).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from router.settings import Settings, SettingsError, load_settings


def configure_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="keys_command", required=True)
    listing = actions.add_parser("list", help="stored keys: id, tenant, created, revoked")
    revoke = actions.add_parser("revoke", help="refuse a key from now on, in every process")
    revoke.add_argument("key_id", help="the key's id (at least 8 hex digits; see `keys list`)")
    key_id = actions.add_parser("id", help="print the id of the key read from standard input")
    for sub in (listing, revoke, key_id):
        sub.add_argument("--config", help="TOML config (default: configs/default.toml)")
        sub.add_argument("--database-url", help="SQLAlchemy async URL of the event log")


def _settings(args: argparse.Namespace) -> Settings:
    environ = dict(os.environ)
    if args.database_url:
        environ["ROUTER__STORAGE__URL"] = args.database_url
    return load_settings(args.config or environ.get("ROUTER_CONFIG"), environ)


def run(args: argparse.Namespace) -> int:
    from router.errors import StorageUnavailableError
    from router.storage.api_keys import KeyStoreError

    try:
        settings = _settings(args)
        if args.keys_command == "id":
            return _print_id(settings)
        return asyncio.run(_main(args, settings))
    except (SettingsError, KeyStoreError, StorageUnavailableError) as exc:
        print(f"router keys: {exc}", file=sys.stderr)
        return 2


def _print_id(settings: Settings) -> int:
    from router.auth import ConfiguredKeys, key_id
    from router.server_secret import load_keyring

    key = sys.stdin.readline().strip()
    if not key:
        print("router keys id: write the key to standard input", file=sys.stderr)
        return 2
    keys = ConfiguredKeys({key: "-"}, load_keyring(settings))
    print(key_id(keys.hasher(key)))
    return 0


async def _main(args: argparse.Namespace, settings: Settings) -> int:
    from router.storage.api_keys import ApiKeyStore
    from router.storage.database import create_engine, migrate

    engine = create_engine(settings.storage.url)
    try:
        await migrate(engine)
        store = ApiKeyStore(engine)
        if args.keys_command == "revoke":
            key = await store.revoke(args.key_id)
            print(f"revoked key {key.key_id} of tenant {key.tenant_id!r}; running services "
                  f"refuse it within {settings.auth.revocation_poll_interval_s:g} s")
            return 0
        print(f"{'id':<14}{'tenant':<24}{'created (UTC)':<22}revoked (UTC)")
        for key in await store.keys():
            revoked = "-" if key.revoked_at is None else f"{key.revoked_at:%Y-%m-%d %H:%M:%S}"
            print(f"{key.key_id:<14}{key.tenant_id:<24}{key.created_at:%Y-%m-%d %H:%M:%S}  "
                  f"{revoked}")
        return 0
    finally:
        await engine.dispose()
