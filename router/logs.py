"""The service's one logging setup: standard-library loggers, rendered by structlog.

Every module logs through :mod:`logging` (so do uvicorn, Litestar, SQLAlchemy and alembic), and
one handler on the root logger renders each record with structlog's ``ProcessorFormatter``: a
JSON object per line by default (``[server] log_format = "json"``), or aligned text for a
terminal (``"text"``). Each line has ``timestamp`` (UTC, ISO 8601), ``level``, ``logger`` and
``event`` (the message); the keys a record was given with ``extra=`` and those bound to the
request with :func:`bind_decision` are added, so every line written while a decision is routed,
given feedback or read carries its ``decision_id`` and ``tenant``.

``router serve`` hands :func:`logging_config` to uvicorn, which applies it in the supervisor and
in every worker process; the other ``router`` commands apply it with :func:`configure_logging`
(router/cli.py), and so does the SQLite writer process, with the level and format of the process
that starts it (:func:`current_setup`). An app built otherwise (tests, another ASGI server) logs
wherever its host configured logging.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from contextvars import ContextVar
from typing import Any, Literal

import structlog

LogFormat = Literal["json", "text"]
ACCESS_LOGGER = "router.access"
# (decision_id, tenant) of the request being handled. A context variable is per request by
# construction: ASGI servers run each request in a task of its own, whose context ends with it,
# and background tasks keep the context they were started in. One variable holding a tuple
# costs a tenth of structlog's bind_contextvars (one variable per key) on every route call.
_DECISION: ContextVar[tuple[str, str] | None] = ContextVar("router_decision", default=None)


class RouterFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter, knowing its ``log_format`` (for :func:`current_setup`)."""

    log_format: LogFormat = "json"


def create_formatter(log_format: LogFormat = "json") -> RouterFormatter:
    """The formatter of every service log line (``log_format``: ``json`` or ``text``)."""
    renderer: structlog.typing.Processor
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    pre_chain: list[structlog.typing.Processor] = [
        _add_decision,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_message_copies,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if log_format == "json":  # the console renderer prints tracebacks itself
        pre_chain.append(structlog.processors.format_exc_info)
    formatter = RouterFormatter(
        foreign_pre_chain=pre_chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    formatter.log_format = log_format
    return formatter


def _drop_message_copies(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    # Copies of `event`: uvicorn gives some records an ANSI-coloured one as `extra`, and a
    # formatter of another handler that ran first leaves `message` on the record.
    event.pop("color_message", None)
    event.pop("message", None)
    return event


def logging_config(level: str | int, log_format: LogFormat) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dictionary: one stderr handler on the root logger
    with :func:`create_formatter`'s formatter; uvicorn's loggers propagate to it. ``level`` is
    a level's name (``info``) or number."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "router": {"()": f"{__name__}.create_formatter", "log_format": log_format},
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "router",
                       "stream": "ext://sys.stderr"},
        },
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
        "root": {"handlers": ["stderr"],
                 "level": level.upper() if isinstance(level, str) else level},
    }


def configure_logging(level: str | int, log_format: LogFormat) -> None:
    """Apply :func:`logging_config` to this process (it replaces the root logger's handlers)."""
    logging.config.dictConfig(logging_config(level, log_format))


def current_setup() -> tuple[int, LogFormat]:
    """This process's root level and the format of its :func:`create_formatter` handler
    (``json`` when its host configured logging otherwise): how a child process it starts logs
    alike."""
    root = logging.getLogger()
    formats = [handler.formatter.log_format for handler in root.handlers
               if isinstance(handler.formatter, RouterFormatter)]
    return root.getEffectiveLevel(), formats[0] if formats else "json"


def bind_decision(decision_id: str, tenant: str) -> None:
    """Add ``decision_id`` and ``tenant`` to every line logged from here to the end of the
    request."""
    _DECISION.set((decision_id, tenant))


def _add_decision(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    decision = _DECISION.get()
    if decision is not None:
        event.setdefault("decision_id", decision[0])
        event.setdefault("tenant", decision[1])
    return event


def log_access(method: str, path: str, route: str, status: int, seconds: float) -> None:
    """One access line, with the decision the request concerned (when it bound one)."""
    logging.getLogger(ACCESS_LOGGER).info(
        "%s %s %d", method, path, status,
        extra={"method": method, "path": path, "route": route, "status": status,
               "duration_ms": round(seconds * 1000.0, 3)},
    )
