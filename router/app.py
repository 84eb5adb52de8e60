"""The one wiring point of the service: ``create_app(settings) -> Litestar``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from learners.tenant_policies import TenantPolicies
from router.api_docs import docs_handlers
from router.auth import (
    Authenticator,
    ConfiguredKeys,
    RevocationWatcher,
    require_api_key,
    warn_revoked_in_config,
)
from router.controllers.admin import AdminController, StatsController
from router.controllers.health import health, ready
from router.controllers.v1 import V1Controller
from router.dependencies import (
    provide_admin,
    provide_auth_mode,
    provide_caller,
    provide_routing,
    provide_tenant,
)
from router.errors import create_problem_details_plugin, unexpected_error_handlers
from router.json_body import JSONBodyRequest
from router.metrics import MULTIPROC_ENV, RequestObserver, ServiceMetrics, metrics
from router.openapi import ContractJsonRenderPlugin
from router.server_secret import load_keyring
from router.services.admin import AdminService
from router.services.code_metrics import CodeMetricsRunner
from router.services.learning import LearnerService
from router.services.models import ModelService
from router.services.retrain import DriftRetrainer
from router.services.routing import RoutingService
from router.services.shadow import ActivePolicyWatcher, ShadowPolicies
from router.services.tenant_stats import DecisionCounter
from router.settings import Settings, load_settings
from router.storage.api_keys import ApiKeyStore
from router.storage.database import create_engine, migrate
from router.storage.policy_store import PolicyStore
from router.storage.registry import ModelRegistry
from router.storage.repository import EventLog
from router.storage.retention import retain_forever

logger = logging.getLogger("router")
MAX_BODY_BYTES = 1_048_576


def create_app_from_environ() -> Litestar:
    """Factory for ASGI servers: config path from ``ROUTER_CONFIG``, overrides from the
    environment. Used by ``router serve`` so that every worker process builds its own app."""
    return create_app(load_settings(os.environ.get("ROUTER_CONFIG"), os.environ),
                      metrics_dir=os.environ.get(MULTIPROC_ENV))


def create_app(settings: Settings, *, metrics_dir: str | None = None) -> Litestar:
    """Assemble the service; resources open and close in the lifespan. The server secret comes
    from the settings or their secret file (router/server_secret.py). ``metrics_dir``:
    prometheus_client's multi-process directory when the process runs in that mode
    (router/metrics.py)."""
    catalog = settings.catalog
    service_metrics = ServiceMetrics(multiprocess_dir=metrics_dir)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        secret = load_keyring(settings)
        engine = create_engine(
            settings.storage.url, echo=settings.storage.echo, pool_size=settings.storage.pool_size,
            timeout_s=settings.storage.statement_timeout_s,
            sqlite_checkpoints=False,  # a SQLite file's writer process runs them all
        )
        log: EventLog | None = None
        code_metrics: CodeMetricsRunner | None = None
        try:
            if settings.storage.migrate_on_start:
                await migrate(engine)
            log = EventLog(engine)
            await log.start()  # a SQLite file's writer process
            await log.ensure_catalog(catalog)
            # The config is the source of truth for keys; revocations come from the database.
            keys = ConfiguredKeys(settings.auth.api_keys, secret)
            key_store = ApiKeyStore(engine)
            revoked = await key_store.sync(keys.hashes, keys.aliases,
                                           [settings.auth.default_tenant])
            authenticator = Authenticator(keys=keys, default_tenant=settings.auth.default_tenant,
                                          revoked=revoked)
            warn_revoked_in_config(authenticator)
            revocations = RevocationWatcher(
                key_store, authenticator,
                poll_interval_s=settings.auth.revocation_poll_interval_s)
            # `router promote` may have made another bandit configuration the served one.
            store = PolicyStore(engine)
            active = await store.active()
            if active is not None:
                logger.info("serving %s (promotion %d) instead of the config's [bandit]",
                            active.candidate, active.id)
            catalogs = await log.load_catalogs()
            shared = settings.learning.share_across_tenants
            policies = TenantPolicies(
                settings=settings.bandit if active is None else active.bandit,
                catalogs=catalogs,
                drift=settings.drift,
                shared=shared,
            )
            shadows = ShadowPolicies.create(settings.shadow, catalogs, drift=settings.drift,
                                            shared=shared)
            models = ModelService(
                ModelRegistry(engine),
                keyring=secret,
                poll_interval_s=settings.batch.poll_interval_s,
            )
            retrainer = DriftRetrainer(engine, settings, models)
            learner = LearnerService(
                policies=policies,
                log=log,
                settings=settings.learning,
                keyring=secret,
                shadows=shadows,
                on_alarm=retrainer,
            )
            await learner.start()
            watcher = ActivePolicyWatcher(
                store,
                learner,
                poll_interval_s=settings.learning.policy_poll_interval_s,
                active_id=None if active is None else active.id,
            )
            for tenant_id, project_id, first in await log.project_first_decisions():
                learner.policies.observe_decision(tenant_id, project_id, first)
            await models.refresh()
            code_metrics = CodeMetricsRunner(settings.code_metrics)
            decisions = DecisionCounter(log, flush_interval_s=settings.learning.tail_interval_s)
            app.state.authenticator = authenticator
            app.state.routing = RoutingService(
                catalog=catalog,
                profiles=settings.profiles,
                default_profile=settings.default_profile,
                learner=learner,
                log=log,
                models=models,
                batch_settings=settings.batch,
                code_metrics=code_metrics,
                decisions=decisions,
                metrics=service_metrics,
            )
            app.state.admin = AdminService(
                engine=engine,
                settings=settings,
                log=log,
                models=models,
                learner=learner,
                decisions=decisions,
                admin_tenants=frozenset(
                    settings.auth.admin_tenants
                    if authenticator.enabled
                    else [settings.auth.default_tenant]
                ),
            )
            if authenticator.enabled:
                logger.info("API keys configured: %d keys of %d tenants (%d revoked)",
                            len(keys.hashes), len(set(keys.hashes.values())),
                            len(authenticator.revoked & keys.hashes.keys()))
            else:
                logger.warning(
                    "no API key configured: single-tenant mode without authentication "
                    "(tenant %r); set ROUTER__AUTH__API_KEYS to require keys",
                    settings.auth.default_tenant,
                )
            logger.info(
                "router ready: %d catalog actions, %d outcomes learned, storage %s",
                len(catalog),
                learner.applied_seq,
                engine.url.render_as_string(hide_password=True),
            )
            # Start-up objects (catalog, parsed VW examples, SQLAlchemy and Litestar internals)
            # live for the whole process: keep them out of the cyclic GC's later passes.
            gc.collect()
            gc.freeze()
            tasks = [
                asyncio.create_task(learner.tail_forever(), name="learner-tail"),
                asyncio.create_task(models.refresh_forever(), name="model-refresh"),
                asyncio.create_task(watcher.refresh_forever(), name="policy-refresh"),
                asyncio.create_task(decisions.flush_forever(), name="decision-counts"),
            ]
            if settings.retention.enabled:
                tasks.append(asyncio.create_task(
                    retain_forever(engine, settings.retention), name="retention"))
            if authenticator.enabled:
                tasks.append(asyncio.create_task(revocations.refresh_forever(),
                                                 name="key-revocations"))
            service_metrics.learning.attach(learner)
            try:
                yield
            finally:
                service_metrics.learning.detach(learner)
                if retrainer.task is not None:
                    tasks.append(retrainer.task)
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await learner.checkpoint()
                await decisions.flush()
                learner.policies.close()
                shadows.close()
        finally:
            if code_metrics is not None:
                code_metrics.close()
            if log is not None:  # after the learner's last checkpoint, and on a failed start
                await log.aclose()
            await engine.dispose()

    app = Litestar(
        route_handlers=[
            V1Controller, StatsController, AdminController, metrics, health, ready,
            *docs_handlers(),
        ],
        state=State({"metrics": service_metrics}),
        lifespan=[lifespan],
        dependencies={
            "caller": Provide(provide_caller, sync_to_thread=False),
            "routing": Provide(provide_routing, sync_to_thread=False),
            "tenant": Provide(provide_tenant, sync_to_thread=False),
            "auth_mode": Provide(provide_auth_mode, sync_to_thread=False),
            "admin": Provide(provide_admin, sync_to_thread=False),
        },
        plugins=[create_problem_details_plugin()],
        exception_handlers=unexpected_error_handlers(),
        # The OpenAPI documents, like every route but the probes, metrics and the /docs page
        # (router/api_docs.py), need a key when keys are configured.
        openapi_config=OpenAPIConfig(
            title="Adaptive Router", version="1.0.0",
            openapi_router=Router(path="/schema", route_handlers=[], guards=[require_api_key],
                                  include_in_schema=False),
            render_plugins=[ContractJsonRenderPlugin()],
        ),
        request_max_body_size=MAX_BODY_BYTES,
        request_class=JSONBodyRequest,
        # router/logs.py is the one logging setup; Litestar's own would replace its handler.
        logging_config=None,
    )
    # Around the whole app rather than as route middleware, so that requests no route matches
    # (404, 405) are measured too.
    app.asgi_handler = RequestObserver(app.asgi_handler, service_metrics,
                                       access_log=settings.server.access_log)
    return app
