"""The server secret: from the environment, else from a file created on first start.

``ROUTER__SECURITY__SECRET`` wins; ``ROUTER__SECURITY__PREVIOUS_SECRETS`` (a JSON list) holds
secrets that still verify during a rotation. Without it, the secret lives in
``[security] secret_file`` (default: the SQLite database's path plus ``.secret``), created
atomically with mode 0600 on first use and refused if another user owns it or anyone else may
read or write it. An in-memory SQLite database gets a random secret that dies with it. Any other
database (PostgreSQL: several hosts share it) needs the secret or ``secret_file`` set, the same
on every host.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from learners.sealed import Keyring
from router.settings import Settings, SettingsError
from router.storage.database import sqlite_file_url


class SecretFileError(SettingsError):
    """The secret file cannot be trusted or read; the message names the file and the reason."""


def secret_path(settings: Settings) -> Path | None:
    """Where the secret file is: ``secret_file``, else beside a file-backed SQLite database."""
    if settings.security.secret_file:
        return Path(settings.security.secret_file)
    url = make_url(settings.storage.url)
    file_url = sqlite_file_url(url)
    if file_url is None or file_url.database is None:
        return None
    database = Path(file_url.database)
    return database.with_name(database.name + ".secret")


def load_keyring(settings: Settings) -> Keyring:
    """The keyring of this service (see the module docstring for where the secret comes from).
    ``router serve`` calls this before starting workers, so that they all read one file."""
    security = settings.security
    previous = [p.encode() for p in security.previous_secrets]
    if security.secret:
        return Keyring(security.secret.encode(), previous)
    path = secret_path(settings)
    if path is not None:
        return Keyring(read_or_create_secret(path), previous)
    if make_url(settings.storage.url).get_backend_name() == "sqlite":
        return Keyring(secrets.token_hex(32).encode(), previous)  # in memory: dies with the data
    raise SettingsError(
        "security.secret: a database other than a SQLite file needs the server secret from "
        "ROUTER__SECURITY__SECRET (the same on every host) or a [security] secret_file"
    )


def read_or_create_secret(path: Path) -> bytes:
    """The secret in ``path``, created first if the file does not exist."""
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name (mkstemp: O_EXCL, mode 0600), then linked into place:
    # link never replaces an existing file, so when two processes race, both read the winner's.
    fd, temporary = tempfile.mkstemp(prefix=".secret-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SecretFileError(f"secret file {path}: cannot open it: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileError(f"secret file {path}: not a regular file")
        if info.st_uid != os.geteuid():
            raise SecretFileError(
                f"secret file {path}: owned by user {info.st_uid}, not by this user "
                f"({os.geteuid()})"
            )
        if info.st_mode & 0o077:
            raise SecretFileError(
                f"secret file {path}: mode {stat.S_IMODE(info.st_mode):04o} lets other users "
                "read or write it; chmod 600 it (and rotate the secret if it leaked)"
            )
        secret = handle.read().strip()
    if not secret:
        raise SecretFileError(f"secret file {path}: empty")
    return secret
