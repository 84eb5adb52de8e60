"""The server secret: from the environment, else a private file created once and shared by
every process of a database; never from a config file."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from router.server_secret import SecretFileError, load_keyring, read_or_create_secret
from router.settings import SettingsError, load_settings
from tests.support import make_settings


def test_a_fresh_sqlite_database_gets_a_private_secret_file_reused_on_restart(
    tmp_path: Path,
) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/router.db")
    first = load_keyring(settings)
    path = tmp_path / "router.db.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) == 64
    assert load_keyring(settings).secrets == first.secrets
    assert [p.name for p in tmp_path.iterdir()] == ["router.db.secret"]  # no temporary left


def test_the_environment_secret_wins_and_previous_secrets_are_kept(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/router.db",
                             ROUTER__SECURITY__SECRET="from-env",
                             ROUTER__SECURITY__PREVIOUS_SECRETS='["old-1", "old-2"]')
    assert load_keyring(settings).secrets == (b"from-env", b"old-1", b"old-2")
    assert not (tmp_path / "router.db.secret").exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_secret_file_others_may_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret"
    path.write_text("x" * 64)
    path.chmod(mode)
    with pytest.raises(SecretFileError, match="mode"):
        read_or_create_secret(path)


def test_a_secret_file_of_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("x" * 64)
    path.chmod(0o600)
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    os.chown(path, 65534, -1)
    with pytest.raises(SecretFileError, match="owned by user"):
        read_or_create_secret(path)


def test_a_symlinked_secret_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("x" * 64)
    target.chmod(0o600)
    (tmp_path / "secret").symlink_to(target)
    with pytest.raises(SecretFileError):
        read_or_create_secret(tmp_path / "secret")


def test_postgresql_needs_the_secret_from_the_environment_or_a_file() -> None:
    settings = load_settings(None, {"ROUTER__STORAGE__URL": "postgresql+asyncpg://h/db"})
    with pytest.raises(SettingsError, match="ROUTER__SECURITY__SECRET"):
        load_keyring(settings)


@pytest.mark.parametrize("key", ["secret", "previous_secrets"])
def test_a_secret_in_a_config_file_is_refused(tmp_path: Path, key: str) -> None:
    config = tmp_path / "router.toml"
    value = '"s3cr3t"' if key == "secret" else '["s3cr3t"]'
    config.write_text(
        '[[models]]\nname = "m"\ninput_price_per_mtok = 1.0\noutput_price_per_mtok = 1.0\n'
        'typical_latency_s = 1.0\n\n[[templates]]\nname = "plain"\n\n'
        f"[security]\n{key} = {value}\n")
    with pytest.raises(SettingsError, match=f"security.{key}: secrets come only from the env"):
        load_settings(config, {})


def test_serve_creates_the_secret_and_stores_the_keys_before_any_worker_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from router.cli import main

    database = tmp_path / "router.db"
    seen: list[tuple[bool, int]] = []

    def run(*_: object, **options: object) -> None:  # what the workers would find
        secret = tmp_path / "router.db.secret"
        with sqlite3.connect(database) as conn:
            seen.append((secret.exists(), conn.execute("SELECT count(*) FROM api_keys")
                         .fetchone()[0]))

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setenv("ROUTER__AUTH__API_KEYS", '{"key-of-acme-123": "acme"}')
    monkeypatch.delenv("ROUTER__SECURITY__SECRET", raising=False)
    # `router serve` hands its settings to the workers through os.environ: restore it after.
    monkeypatch.setenv("ROUTER__STORAGE__URL", "unused")
    monkeypatch.setenv("ROUTER__STORAGE__MIGRATE_ON_START", "true")
    assert main(["serve", "--database-url", f"sqlite+aiosqlite:///{database}",
                 "--workers", "2"]) == 0
    assert seen == [(True, 1)]
