"""``router import FILE``.

Import loads a history file (:mod:`offline.history_file`) into the event log as decisions with
outcomes, so that the batch models train on it and the online learners fold it in (the running
service's tail picks the outcomes up). Each row is keyed by the SHA-256 of its content: importing
the same file twice adds nothing. Features are computed by the serving pipeline; the history
features of an imported row come from the file's earlier rows (outcomes known before it, of
the row's own tenant unless ``[learning] share_across_tenants``), summarised per configured
model and template: what the service would have logged. Rows
without a ``propensity`` are taken as logged uniformly over the catalog actions allowed for
their language (1 / n). Rows with ``allowed`` (and ``probabilities``) keep those allowed
actions (and the logged probability vector, from which a missing propensity is taken), as
``router export`` writes them; without, the vector is unknown (logged empty). The action and
the allowed actions must be in the configured catalog, so that the bandit can learn from them.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from learners.batch.training import History
from learners.catalog import Action, Catalog, format_action_id
from learners.decision import StoredFeatures
from learners.estimates import estimate_action_cost
from learners.features import extract_features
from learners.reward import Outcome as RewardOutcome
from learners.reward import compute_reward
from offline.dataset import decision_context, history_from_rows, row_labels
from offline.history_file import HistoryFileError, HistoryRow, read_history
from offline.progress import Bar, progress_bar
from offline.train import add_common_options, open_engine, settings_from_args
from router.public import Decision, EventLog, Outcome, Settings, SettingsError, Tenant

BATCH_ROWS = 1000
POLICY = "imported"


class ImportReport(msgspec.Struct, frozen=True):
    rows: int
    imported: int
    duplicates: int


def content_hash(row: HistoryRow) -> str:
    return hashlib.sha256(msgspec.json.encode(row)).hexdigest()


def _check_actions(rows: Sequence[HistoryRow], catalog: Catalog) -> None:
    unknown: dict[str, int] = {}
    for row in rows:
        model, temperature, template = row.action_parts()
        for action_id in {format_action_id(model, temperature, template), *row.allowed}:
            if catalog.get(action_id) is None:
                unknown[action_id] = unknown.get(action_id, 0) + 1
    if unknown:
        listed = ", ".join(f"{a} ({n} rows)" for a, n in sorted(unknown.items())[:10])
        raise HistoryFileError(
            f"{sum(unknown.values())} rows name actions outside the configured catalog: {listed}"
            " — add their models/templates to the config or drop the rows")


def _logged_choice(row: HistoryRow, action: Action, catalog: Catalog
                   ) -> tuple[list[int], list[float], int, float]:
    """(allowed catalog indices, logged probabilities, chosen position, propensity)."""
    if row.allowed:
        allowed = [_known(catalog, action_id).index for action_id in row.allowed]
    else:
        allowed = list(catalog.indices_for_language(row.language))
        if action.index not in allowed:
            allowed.append(action.index)
    position = allowed.index(action.index)
    probabilities = list(row.probabilities)
    if row.propensity is not None:
        propensity = row.propensity
    elif probabilities:
        propensity = probabilities[position]
    else:
        propensity = 1.0 / len(allowed)
    return allowed, probabilities, position, propensity


def _known(catalog: Catalog, action_id: str) -> Action:
    action = catalog.get(action_id)
    assert action is not None  # checked by _check_actions
    return action


def _values(row: HistoryRow, history: History, position: int, catalog: Catalog,
            settings: Settings, digest: str) -> tuple[dict[str, Any], dict[str, Any]]:
    context = decision_context(row)
    features = extract_features(context)
    model, temperature, template = row.action_parts()
    action = _known(catalog, format_action_id(model, temperature, template))
    allowed, probabilities, chosen, propensity = _logged_choice(row, action, catalog)
    rag = row.rag_examples or 0
    estimate = estimate_action_cost(action, context.task, features.complexity, rag)
    example = history.examples[position]
    decision_id = digest[:32]
    decision = {
        "id": decision_id, "tenant_id": row.tenant, "request_id": None,
        "request_hash": digest, "created_at": row.decided_at(),
        "catalog_fingerprint": catalog.fingerprint, "objective": row.objective,
        "request": {"task": msgspec.to_builtins(context.task),
                    "context": msgspec.to_builtins(context.caller),
                    "features": row.features, "objective": row.objective,
                    "source_decision_id": row.decision_id},
        "features": msgspec.to_builtins(StoredFeatures(
            namespaces=features.namespaces, complexity=features.complexity,
            prior_time_s=estimate.latency_s, record=example.context, history=example.history)),
        "allowed": allowed, "probabilities": probabilities, "chosen_action": action.id,
        "chosen_position": chosen, "propensity": propensity,
        "explored": bool(probabilities) and chosen != probabilities.index(max(probabilities)),
        "policy_name": POLICY, "policy_version": POLICY,
        "model_versions": {"batch": None, "online": None}, "learner_seq": 0,
        "response": {"model": action.model.name, "temperature": action.temperature,
                     "template": action.template.name, "propensity": propensity},
        "project_id": row.project_id, "task_type": example.context.task_type,
        "language": example.context.language, "model": action.model.name,
        "content_hash": digest,
    }
    labels = row_labels(row)
    if row.reward is not None:
        reward, source = row.reward, "explicit"
    else:
        profile = settings.profiles.get(row.objective) or settings.profiles[
            settings.default_profile]
        reward = compute_reward(RewardOutcome(
            verdict=labels.verdict, quality=row.quality, generation_time_s=row.generation_time_s,
            cost_usd=row.cost_usd, regenerations=labels.regenerations), profile)
        source = f"profile:{row.objective}"
    outcome = {
        "decision_id": decision_id, "tenant_id": row.tenant, "created_at": row.known_at(),
        "verdict": labels.verdict.value, "quality": row.quality,
        "generation_time_s": row.generation_time_s, "cost_usd": row.cost_usd,
        "tokens": row.tokens, "regenerations": labels.regenerations, "code": row.code,
        "reward": reward, "reward_source": source, "complexity": row.complexity,
        "code_metrics": None if labels.code_metrics is None
        else msgspec.to_builtins(labels.code_metrics),
    }
    return decision, outcome


async def import_history(engine: AsyncEngine, settings: Settings, path: str) -> ImportReport:
    with progress_bar("router import: reading") as bar:
        return await _import(engine, settings, path, bar)


async def _import(engine: AsyncEngine, settings: Settings, path: str, bar: Bar) -> ImportReport:
    catalog = settings.catalog
    rows: list[HistoryRow] = []
    for chunk in read_history(path):
        rows.extend(chunk)
        bar.advance(len(chunk))
    _check_actions(rows, catalog)
    rows.sort(key=lambda r: r.decided_at())
    bar.stage("router import: history features", None)
    history = await asyncio.to_thread(
        functools.partial(history_from_rows, rows, [catalog], summarised=catalog,
                          shared=settings.learning.share_across_tenants))
    digests = [content_hash(r) for r in rows]
    log = EventLog(engine)
    await log.ensure_catalog(catalog)
    async with engine.connect() as conn:
        known: set[str] = set()
        for start in range(0, len(digests), BATCH_ROWS):
            part = digests[start:start + BATCH_ROWS]
            found = await conn.scalars(
                select(Decision.content_hash).where(Decision.content_hash.in_(part)))
            known.update(str(h) for h in found)
        tenants = set((await conn.scalars(select(Tenant.id))).all())
    fresh = [i for i, d in enumerate(digests) if d not in known]
    bar.stage("router import: decisions", len(fresh))
    pairs = []
    for i in fresh:
        pairs.append(_values(rows[i], history, i, catalog, settings, digests[i]))
        bar.advance()
    outcomes = sorted((o for _, o in pairs), key=lambda o: o["created_at"])
    bar.stage("router import: writing", 2 * len(pairs))
    async with engine.begin() as conn:
        for tenant in sorted({r.tenant for r in rows} - tenants):
            await conn.execute(insert(Tenant).values(id=tenant, created_at=rows[0].decided_at()))
        for start in range(0, len(pairs), BATCH_ROWS):
            decisions = [d for d, _ in pairs[start:start + BATCH_ROWS]]
            await conn.execute(insert(Decision), decisions)
            bar.advance(len(decisions))
        for start in range(0, len(outcomes), BATCH_ROWS):
            await conn.execute(insert(Outcome), outcomes[start:start + BATCH_ROWS])
            bar.advance(len(outcomes[start:start + BATCH_ROWS]))
        # The tenants' decision counts (GET /v1/stats) include the imported decisions.
        for tenant, n in sorted(Counter(rows[i].tenant for i in fresh).items()):
            await conn.execute(update(Tenant).where(Tenant.id == tenant)
                               .values(decisions=Tenant.decisions + n))
    return ImportReport(rows=len(rows), imported=len(pairs), duplicates=len(rows) - len(pairs))


def configure_import_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="history file (.jsonl, .csv or .parquet)")
    add_common_options(parser)


def run_import(args: argparse.Namespace) -> int:
    async def main() -> ImportReport:
        settings = settings_from_args(args)
        engine = await open_engine(settings)
        try:
            return await import_history(engine, settings, args.file)
        finally:
            await engine.dispose()

    try:
        report = asyncio.run(main())
    except (SettingsError, HistoryFileError) as exc:
        print(f"router import: {exc}", file=sys.stderr)
        return 2
    print(f"{report.rows} rows read, {report.imported} imported, "
          f"{report.duplicates} already in the log")
    return 0
