"""``router import FILE`` and ``router export``.

Import loads a history file (:mod:`offline.history_file`) into the event log as decisions with
outcomes, so that the batch models train on it and the online learners fold it in (the running
service's tail picks the outcomes up). Each row is keyed by the SHA-256 of its content: importing
the same file twice adds nothing. Features are computed by the serving pipeline; the history
features of an imported row come from the file's earlier rows (outcomes known before it). Rows
without a ``propensity`` are taken as logged uniformly over the catalog actions allowed for
their language (1 / n); the full probability vector of imported rows is unknown (logged empty).
The action must be in the configured catalog, so that the bandit can learn from it.

Export writes the training table (one row per decision with an outcome: context, history and
action columns, and the labels) as CSV, Parquet or JSONL, and prints the dataset statistics —
the same figures as ``GET /v1/stats``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from learners.batch.training import History
from learners.catalog import Catalog, format_action_id
from learners.decision import StoredFeatures
from learners.estimates import estimate_action_cost
from learners.features import extract_features
from learners.reward import Outcome as RewardOutcome
from learners.reward import compute_reward
from offline.dataset import decision_context, history_from_rows, row_labels
from offline.history_file import HistoryFileError, HistoryRow, read_history
from offline.train import add_common_options, open_engine, settings_from_args
from router.public import (
    DatasetCounts,
    Decision,
    EventLog,
    Outcome,
    Settings,
    SettingsError,
    Tenant,
    history_from_log,
)

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
        action_id = format_action_id(model, temperature, template)
        if catalog.get(action_id) is None:
            unknown[action_id] = unknown.get(action_id, 0) + 1
    if unknown:
        listed = ", ".join(f"{a} ({n} rows)" for a, n in sorted(unknown.items())[:10])
        raise HistoryFileError(
            f"{sum(unknown.values())} rows name actions outside the configured catalog: {listed}"
            " — add their models/templates to the config or drop the rows")


def _values(row: HistoryRow, history: History, position: int, catalog: Catalog,
            settings: Settings, digest: str) -> tuple[dict[str, Any], dict[str, Any]]:
    context = decision_context(row)
    features = extract_features(context)
    model, temperature, template = row.action_parts()
    action = catalog.get(format_action_id(model, temperature, template))
    assert action is not None  # checked by _check_actions
    allowed = list(catalog.indices_for_language(row.language))
    if action.index not in allowed:
        allowed.append(action.index)
    propensity = row.propensity if row.propensity is not None else 1.0 / len(allowed)
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
                    "features": {}, "objective": row.objective,
                    "source_decision_id": row.decision_id},
        "features": msgspec.to_builtins(StoredFeatures(
            namespaces=features.namespaces, complexity=features.complexity,
            prior_time_s=estimate.latency_s, record=example.context, history=example.history)),
        "allowed": allowed, "probabilities": [], "chosen_action": action.id,
        "chosen_position": allowed.index(action.index), "propensity": propensity,
        "explored": False, "policy_name": POLICY, "policy_version": POLICY,
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
            verdict=row.outcome, quality=row.quality, generation_time_s=row.generation_time_s,
            cost_usd=row.cost_usd, regenerations=row.regenerations), profile)
        source = f"profile:{row.objective}"
    outcome = {
        "decision_id": decision_id, "tenant_id": row.tenant, "created_at": row.known_at(),
        "verdict": row.outcome.value, "quality": row.quality,
        "generation_time_s": row.generation_time_s, "cost_usd": row.cost_usd,
        "tokens": row.tokens, "regenerations": row.regenerations, "code": row.code,
        "reward": reward, "reward_source": source, "complexity": row.complexity,
        "code_metrics": None if labels.code_metrics is None
        else msgspec.to_builtins(labels.code_metrics),
    }
    return decision, outcome


async def import_history(engine: AsyncEngine, settings: Settings, path: str) -> ImportReport:
    catalog = settings.catalog
    rows: list[HistoryRow] = []
    for chunk in read_history(path):
        rows.extend(chunk)
    _check_actions(rows, catalog)
    rows.sort(key=lambda r: r.decided_at())
    history = await asyncio.to_thread(history_from_rows, rows, [catalog])
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
    pairs = [_values(rows[i], history, i, catalog, settings, digests[i]) for i in fresh]
    outcomes = sorted((o for _, o in pairs), key=lambda o: o["created_at"])
    async with engine.begin() as conn:
        for tenant in sorted({r.tenant for r in rows} - tenants):
            await conn.execute(insert(Tenant).values(id=tenant, created_at=rows[0].decided_at()))
        for start in range(0, len(pairs), BATCH_ROWS):
            await conn.execute(insert(Decision), [d for d, _ in pairs[start:start + BATCH_ROWS]])
        for start in range(0, len(outcomes), BATCH_ROWS):
            await conn.execute(insert(Outcome), outcomes[start:start + BATCH_ROWS])
        # The tenants' decision counts (GET /v1/stats) include the imported decisions.
        for tenant, n in sorted(Counter(rows[i].tenant for i in fresh).items()):
            await conn.execute(update(Tenant).where(Tenant.id == tenant)
                               .values(decisions=Tenant.decisions + n))
    return ImportReport(rows=len(rows), imported=len(pairs), duplicates=len(rows) - len(pairs))


def format_stats(counts: DatasetCounts) -> str:
    def block(title: str, values: dict[str, int]) -> list[str]:
        return [f"{title}:", *(f"  {k:<24}{v:>10}" for k, v in sorted(values.items()))]

    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    lines = [f"decisions: {counts.decisions}", f"with outcomes: {counts.outcomes}"]
    lines += block("by task type", counts.by_task_type)
    lines += block("by outcome", counts.by_outcome)
    lines += block("by model", counts.by_model)
    lines += ["averages:", f"  success rate            {number(counts.success_rate)}",
              f"  reward                  {number(counts.reward)}",
              f"  quality                 {number(counts.quality)}",
              f"  generation time (s)     {number(counts.generation_time_s)}",
              f"  cost (USD)              {number(counts.cost_usd)}"]
    return "\n".join(lines)


def training_table(history: History) -> list[dict[str, Any]]:
    """One flat record per decision: context, history summaries, action, labels."""
    table = []
    for example, labels, at in zip(history.examples, history.labels, history.times, strict=True):
        h = example.history
        record: dict[str, Any] = {"timestamp": at.isoformat(),
                                  **msgspec.to_builtins(example.context),
                                  "project_age_days": h.project_age_days}
        for name, summary in (("similar", h.similar), ("project", h.project),
                              ("agent", h.agent)):
            record[f"{name}_success"] = summary.success
            record[f"{name}_quality"] = summary.quality
            record[f"{name}_n"] = summary.n
        model = h.models.get(example.action.model)
        template = h.templates.get(example.action.template)
        record.update(msgspec.to_builtins(example.action))
        record["model_success"] = model.success if model else None
        record["template_success"] = template.success if template else None
        record.update({"outcome": labels.verdict.value, "success": labels.success,
                       "quality": labels.quality, "generation_time_s": labels.generation_time_s,
                       "complexity": labels.complexity, "reward": labels.reward})
        table.append(record)
    return table


def write_table(path: str, table: list[dict[str, Any]]) -> None:
    import pandas as pd

    frame = pd.DataFrame(table)
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix in (".jsonl", ".json"):
        frame.to_json(path, orient="records", lines=True)
    else:
        raise HistoryFileError(f"{path}: use .csv, .parquet or .jsonl")


def configure_import_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="history file (.jsonl, .csv or .parquet)")
    add_common_options(parser)


def configure_export_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", help="write the training table here (.csv/.parquet/.jsonl)")
    parser.add_argument("--tenant", help="only this tenant's decisions (statistics)")
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


def run_export(args: argparse.Namespace) -> int:
    async def main() -> tuple[DatasetCounts, History]:
        settings = settings_from_args(args)
        engine = await open_engine(settings)
        try:
            counts = await EventLog(engine).dataset_counts(args.tenant)
            history = History([], [], [])
            if args.out:
                catalogs = await EventLog(engine).load_catalogs()
                history = await history_from_log(engine, catalogs)
            return counts, history
        finally:
            await engine.dispose()

    try:
        counts, history = asyncio.run(main())
        if args.out:
            write_table(args.out, training_table(history))
    except (SettingsError, HistoryFileError) as exc:
        print(f"router export: {exc}", file=sys.stderr)
        return 2
    print(format_stats(counts))
    if args.out:
        print(f"training table: {len(history)} rows written to {args.out}")
    return 0
