"""What the offline tools and the benchmarks may use of the service: the one door from
``offline`` into ``router`` (a test fails on any other ``router`` import there).

- configuration: :class:`Settings` and its sections used offline (:class:`RetentionSettings`,
  :class:`ServerSettings`), :func:`load_settings`, :class:`SettingsError`, and
  :func:`load_keyring` (the server secret that seals stored models and learner state);
- the service itself, in-process or served: :func:`create_app`, :class:`RoutingService`,
  :func:`allowed_actions`, :class:`BatchView`, the request bodies :class:`RouteRequest` and
  :class:`FeedbackRequest`, :func:`create_server_config` and :func:`run_server`;
- the event log: :func:`create_engine`, :func:`migrate`, :class:`EventLog` (with
  :class:`DatasetCounts`), its tables :class:`Decision`, :class:`Outcome`, :class:`Tenant` and
  :class:`Checkpoint`, :func:`as_utc`, :func:`learn_event_of` (a stored decision with its
  outcome as the learners fold it);
- batch models: :class:`ModelRegistry` (:class:`NewVersion`, :class:`VersionInfo`, its
  :class:`GateResult`, :data:`CURRENT`, :class:`RegistryError`), the promotion gate
  (:func:`train_and_register`, :func:`promote_version`, :class:`TrainReport`,
  :func:`known_catalogs`, :func:`load_log_history`);
- policies: :class:`PolicyStore` (:class:`NewPromotion`, :class:`PromotionWindow`, the gate's
  :class:`GateEvidence` with each policy's :class:`PolicyEvidence`) and the logged shadow
  probabilities (:class:`ShadowDecision`);
- history rows, shared by ``router export``, history files and retention's archive:
  :class:`HistoryRow` (:data:`TEXT_COLUMNS`, :func:`parquet_schema`, :func:`row_cells`,
  :func:`history_table`) and its one builder :func:`history_row` over :data:`HISTORY_COLUMNS`
  (with :func:`catalog_action_ids`, :class:`UnknownCatalogError`);
- retention: :func:`run_retention` and its :class:`RetentionReport`;
- errors: :class:`StorageUnavailableError`.
"""

from __future__ import annotations

from router.app import create_app
from router.errors import StorageUnavailableError
from router.schemas import FeedbackRequest, RouteRequest
from router.server import create_server_config, run_server
from router.server_secret import load_keyring
from router.services.allowed import allowed_actions
from router.services.batch import BatchView
from router.services.promotion import (
    TrainReport,
    known_catalogs,
    load_log_history,
    promote_version,
    train_and_register,
)
from router.services.routing import RoutingService
from router.settings import (
    RetentionSettings,
    ServerSettings,
    Settings,
    SettingsError,
    load_settings,
)
from router.storage.database import create_engine, migrate
from router.storage.history_rows import (
    HISTORY_COLUMNS,
    TEXT_COLUMNS,
    HistoryRow,
    UnknownCatalogError,
    catalog_action_ids,
    history_row,
    history_table,
    parquet_schema,
    row_cells,
)
from router.storage.models import Checkpoint, Decision, Outcome, Tenant
from router.storage.policy_store import (
    GateEvidence,
    NewPromotion,
    PolicyEvidence,
    PolicyStore,
    PromotionWindow,
    ShadowDecision,
)
from router.storage.registry import (
    CURRENT,
    GateResult,
    ModelRegistry,
    NewVersion,
    RegistryError,
    VersionInfo,
)
from router.storage.repository import DatasetCounts, EventLog, as_utc, learn_event_of
from router.storage.retention import RetentionReport, run_retention

__all__ = [
    "CURRENT",
    "HISTORY_COLUMNS",
    "TEXT_COLUMNS",
    "BatchView",
    "Checkpoint",
    "DatasetCounts",
    "Decision",
    "EventLog",
    "FeedbackRequest",
    "GateEvidence",
    "GateResult",
    "HistoryRow",
    "ModelRegistry",
    "NewPromotion",
    "NewVersion",
    "Outcome",
    "PolicyEvidence",
    "PolicyStore",
    "PromotionWindow",
    "RegistryError",
    "RetentionReport",
    "RetentionSettings",
    "RouteRequest",
    "RoutingService",
    "ServerSettings",
    "Settings",
    "SettingsError",
    "ShadowDecision",
    "StorageUnavailableError",
    "Tenant",
    "TrainReport",
    "UnknownCatalogError",
    "VersionInfo",
    "allowed_actions",
    "as_utc",
    "catalog_action_ids",
    "create_app",
    "create_engine",
    "create_server_config",
    "history_row",
    "history_table",
    "known_catalogs",
    "learn_event_of",
    "load_keyring",
    "load_log_history",
    "load_settings",
    "migrate",
    "parquet_schema",
    "promote_version",
    "row_cells",
    "run_retention",
    "run_server",
    "train_and_register",
]
