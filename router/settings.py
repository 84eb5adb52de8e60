"""Settings: one TOML file decoded by msgspec, plus ``ROUTER__SECTION__KEY`` overrides.

``load_settings(path, environ)`` is the only way settings are made; it is pure (the environment
is passed in), so tests build their own settings without touching ``os.environ``. A file may
hold only a catalog (``temperatures``, ``[[models]]``, ``[[templates]]``); every other section has
defaults. Secrets come only from the environment: ``ROUTER__AUTH__API_KEYS`` holds a JSON object
mapping each key to its tenant id, ``ROUTER__SECURITY__SECRET`` the server secret.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from learners.bandit.settings import BanditSettings
from learners.batch.settings import TrainSettings
from learners.catalog import Catalog, CatalogError, ModelSpec, Temperature, TemplateSpec
from learners.drift import BanditDriftSettings
from learners.reward import DEFAULT_PROFILES, RewardProfile

ENV_PREFIX = "ROUTER__"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.toml"


class SettingsError(ValueError):
    """The configuration is invalid; the message names the key and the reason."""


class LearningSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Checkpointing and log tailing of the online learners."""

    checkpoint_every_outcomes: Annotated[int, Meta(ge=1)] = 5000
    checkpoint_every_s: Annotated[float, Meta(gt=0.0)] = 60.0
    checkpoints_kept: Annotated[int, Meta(ge=1, le=100)] = 3
    tail_interval_s: Annotated[float, Meta(gt=0.0, le=60.0)] = 0.25
    # How often each process looks for a newly promoted bandit configuration (router promote).
    policy_poll_interval_s: Annotated[float, Meta(gt=0.0, le=3600.0)] = 5.0
    # Off: every tenant has its own learner state, fed only by its own outcomes (DESIGN.md
    # rule 7). On: all tenants learn into one state (for tenants that trust each other).
    share_across_tenants: bool = False


class CodeMetricsSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Static metrics of feedback code (config section ``[code_metrics]``): code longer than
    ``max_chars`` is not measured, and a measurement is given up after ``timeout_s``."""

    max_chars: Annotated[int, Meta(ge=0)] = 200_000
    timeout_s: Annotated[float, Meta(gt=0.0, le=60.0)] = 2.0


class BatchSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Serving of the batch models (config section ``[batch]``).

    With ``conservative`` on, a decision whose greedy action the success model rates high-risk
    is re-drawn among the safer actions: temperature at most ``conservative_max_temperature``
    and one of the ``conservative_templates`` best-ranked templates.
    """

    poll_interval_s: Annotated[float, Meta(gt=0.0, le=3600.0)] = 5.0
    conservative: bool = True
    conservative_max_temperature: Annotated[float, Meta(ge=0.0, le=2.0)] = 0.2
    conservative_templates: Annotated[int, Meta(ge=1, le=100)] = 2


class StorageSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: Annotated[str, Meta(min_length=1)] = "sqlite+aiosqlite:///router.db"
    echo: bool = False
    pool_size: Annotated[int, Meta(ge=1, le=200)] = 10
    migrate_on_start: bool = True
    # Longest wait for the database before a request fails with 503 + Retry-After: PostgreSQL
    # statement_timeout and lock_timeout, connect and pool checkout; SQLite's busy timeout.
    statement_timeout_s: Annotated[float, Meta(gt=0.0, le=600.0)] = 5.0


class RetentionSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Archiving of old decisions and outcomes to Parquet (config section ``[retention]``).

    ``router retention run`` archives once; with ``enabled`` the service also runs it every
    ``interval_s`` (router/storage/retention.py, docs/operations.md "Retention").
    """

    enabled: bool = False
    keep_days: Annotated[float, Meta(gt=0.0)] = 30.0
    archive_dir: Annotated[str, Meta(min_length=1)] = "archive"
    interval_s: Annotated[float, Meta(ge=1.0)] = 3600.0
    batch_rows: Annotated[int, Meta(ge=1, le=20_000)] = 1000


class ServerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``router serve``'s HTTP server and its limits on one client (router/server.py)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8000
    workers: Annotated[int, Meta(ge=1, le=64)] = 1
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # One JSON object per line, or aligned text for reading in a terminal (router/logs.py).
    log_format: Literal["json", "text"] = "json"
    # One line per HTTP request (method, path, route, status, duration, decision_id, tenant).
    access_log: bool = False
    max_header_bytes: Annotated[int, Meta(ge=1024, le=1_048_576)] = 16_384
    max_headers: Annotated[int, Meta(ge=8, le=1000)] = 100
    request_timeout_s: Annotated[float, Meta(gt=0.0, le=3600.0)] = 10.0
    keep_alive_s: Annotated[int, Meta(ge=1, le=3600)] = 5
    max_connections: Annotated[int, Meta(ge=1, le=1_000_000)] = 1000
    graceful_shutdown_s: Annotated[int, Meta(ge=0, le=3600)] = 30


class AuthSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """API keys map to tenants. No keys: single-tenant mode without authentication."""

    api_keys: dict[Annotated[str, Meta(min_length=8)], Annotated[str, Meta(min_length=1)]] = {}
    default_tenant: Annotated[str, Meta(min_length=1, max_length=64)] = "default"
    # Tenants allowed to call /v1/admin/* (the single tenant is always allowed without keys).
    admin_tenants: tuple[Annotated[str, Meta(min_length=1)], ...] = ("default",)
    # How often each process reads revocations (`router keys revoke`) from the database.
    revocation_poll_interval_s: Annotated[float, Meta(gt=0.0, le=3600.0)] = 2.0


class SecuritySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The server secret that seals stored blobs and keys the API-key hashes
    (router/server_secret.py). ``secret`` and ``previous_secrets`` come only from the environment
    (``ROUTER__SECURITY__SECRET``, ``ROUTER__SECURITY__PREVIOUS_SECRETS`` as a JSON list);
    without ``secret`` it is read from (or created in) ``secret_file``, by default the SQLite
    database's path plus ``.secret``."""

    secret: str = ""
    previous_secrets: tuple[Annotated[str, Meta(min_length=1)], ...] = ()
    secret_file: str = ""


# Shadow names are lower case so that ROUTER__SHADOW__<NAME>__<KEY> overrides reach them.
SHADOW_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
ShadowName = Annotated[str, Meta(pattern=SHADOW_NAME_PATTERN)]
MAX_SHADOWS = 8


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything the service reads at start; see configs/default.toml for the documented keys."""

    models: list[ModelSpec]
    templates: list[TemplateSpec]
    temperatures: tuple[Temperature, ...] = (0.0, 0.2, 0.5, 0.8)
    reward_profiles: dict[str, RewardProfile] = {}
    default_profile: str = "balanced"
    bandit: BanditSettings = BanditSettings()
    drift: BanditDriftSettings = BanditDriftSettings()
    # Candidate bandit configurations run in shadow (``[shadow.<name>]``): each decides on every
    # route call and learns from every outcome, never changing what is served. A table holds
    # overrides of ``[bandit]``; keys it leaves out take the ``[bandit]`` value.
    shadow: Annotated[dict[ShadowName, BanditSettings], Meta(max_length=MAX_SHADOWS)] = {}
    learning: LearningSettings = LearningSettings()
    code_metrics: CodeMetricsSettings = CodeMetricsSettings()
    batch: BatchSettings = BatchSettings()
    training: TrainSettings = TrainSettings()
    storage: StorageSettings = StorageSettings()
    retention: RetentionSettings = RetentionSettings()
    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    security: SecuritySettings = SecuritySettings()

    @property
    def catalog(self) -> Catalog:
        """The expanded catalog; build it once at start and pass it along."""
        return Catalog(models=self.models, templates=self.templates, temperatures=self.temperatures)

    @property
    def profiles(self) -> dict[str, RewardProfile]:
        """Configured reward profiles, with the built-in ones for any name not configured."""
        return {**DEFAULT_PROFILES, **self.reward_profiles}


def load_settings(path: str | Path | None, environ: Mapping[str, str]) -> Settings:
    """Settings from the TOML file at ``path`` (default config when None) and ``environ``."""
    config_path = Path(path) if path is not None else DEFAULT_CONFIG
    try:
        raw: dict[str, Any] = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SettingsError(f"config file {config_path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {config_path} is not valid TOML: {exc}") from exc
    _refuse_file_secrets(raw, config_path)
    apply_overrides(raw, environ)
    inherit_bandit(raw)
    _check_shadows(raw, config_path)
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"{config_path}: {_config_path_message(exc)}") from exc
    try:
        settings.catalog  # noqa: B018 - expanding the catalog validates it
    except CatalogError as exc:
        raise SettingsError(f"{config_path}: {exc}") from exc
    if settings.default_profile not in settings.profiles:
        raise SettingsError(
            f"{config_path}: default_profile: unknown reward profile {settings.default_profile!r}"
        )
    return settings


ENV_ONLY = ("secret", "previous_secrets")


def _refuse_file_secrets(raw: dict[str, Any], config_path: Path) -> None:
    # A config file is copied, committed and shown around; a secret in it is no secret.
    security = raw.get("security")
    if isinstance(security, dict):
        for key in ENV_ONLY:
            if key in security:
                raise SettingsError(
                    f"{config_path}: security.{key}: secrets come only from the environment "
                    f"(ROUTER__SECURITY__{key.upper()}); remove it from the file"
                )


def apply_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Set ``raw[section][key]`` from each ``ROUTER__SECTION__KEY`` variable.

    Values are TOML/JSON literals when they parse as such (``8001``, ``true``, ``[0.2]``,
    ``{"k": "tenant"}``) and plain strings otherwise; msgspec then checks their types.
    """
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if not keys:
            continue
        node = raw
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise SettingsError(f"{name}: {key!r} is not a section")
            node = child
        node[keys[-1]] = _parse_literal(environ[name])


def inherit_bandit(raw: dict[str, Any]) -> None:
    """Complete each ``[shadow.<name>]`` table with the ``[bandit]`` keys it does not set."""
    shadows, base = raw.get("shadow"), raw.get("bandit", {})
    if not isinstance(shadows, dict) or not isinstance(base, dict):
        return  # msgspec reports the wrong type with its key
    raw["shadow"] = {
        name: {**base, **table} if isinstance(table, dict) else table
        for name, table in shadows.items()
    }


def _check_shadows(raw: dict[str, Any], config_path: Path) -> None:
    # msgspec elides dictionary keys in its error paths ("shadow[...].epsilon"); checking each
    # table on its own lets the message name the shadow.
    shadows = raw.get("shadow")
    if not isinstance(shadows, dict):
        return
    pattern = re.compile(SHADOW_NAME_PATTERN)
    for name, table in shadows.items():
        if not pattern.match(str(name)):
            raise SettingsError(
                f"{config_path}: shadow.{name}: a shadow name is 1-32 characters of a-z, 0-9, "
                "'_' and '-', starting with a letter or digit"
            )
        try:
            msgspec.convert(table, BanditSettings, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(
                f"{config_path}: {_config_path_message(exc, f'shadow.{name}')}"
            ) from exc


def _parse_literal(text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return msgspec.json.decode(stripped)
        except msgspec.DecodeError:
            return text
    try:
        return tomllib.loads(f"v = {stripped}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _config_path_message(exc: msgspec.ValidationError, section: str = "") -> str:
    # msgspec says "... - at `$.bandit.epsilon`"; turn the JSON path into a config key.
    message = str(exc)
    if " - at `$" in message:
        reason, _, where = message.partition(" - at `$")
        key = ".".join(part for part in (section, where.rstrip("`").lstrip(".")) if part)
        return f"{key or '(top level)'}: {reason}"
    return f"{section}: {message}" if section else message
