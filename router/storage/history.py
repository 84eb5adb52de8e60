"""Training histories from the event log: every decision with an outcome contributes the
context record and history features logged when it was decided (no recomputation, no leakage).
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from learners.batch.labels import OutcomeLabels
from learners.batch.training import History
from learners.catalog import ACTION_SEPARATOR, Catalog
from learners.code_metrics import CodeMetrics
from learners.decision import StoredFeatures
from learners.reward import Verdict
from learners.tabular import ActionAttributes, TrainingExample
from router.storage.models import Decision, Outcome
from router.storage.repository import as_utc


async def history_from_log(engine: AsyncEngine, catalogs: dict[str, Catalog]) -> History:
    """Every decision with an outcome, in decision order, with its logged features."""
    query = (
        select(
            Decision.created_at, Decision.catalog_fingerprint, Decision.features,
            Decision.chosen_action, Outcome.verdict, Outcome.quality,
            Outcome.generation_time_s, Outcome.regenerations, Outcome.complexity,
            Outcome.code_metrics, Outcome.reward,
        )
        .join(Outcome, Outcome.decision_id == Decision.id)
        .order_by(Decision.created_at, Decision.id)
    )
    examples: list[TrainingExample] = []
    labels: list[OutcomeLabels] = []
    times: list[datetime] = []
    decoder = msgspec.json.Decoder(StoredFeatures)
    async with engine.connect() as conn:
        result = await conn.stream(query)
        async for row in result:
            stored = msgspec.convert(row.features, StoredFeatures) if isinstance(
                row.features, dict) else decoder.decode(row.features)
            if stored.record is None or stored.history is None:
                continue  # logged before context records existed
            catalog = catalogs.get(row.catalog_fingerprint)
            action = catalog.get(row.chosen_action) if catalog else None
            if action is None:
                model, temperature, template = row.chosen_action.split(ACTION_SEPARATOR)
                attributes = ActionAttributes(model=model, template=template,
                                              temperature=float(temperature))
            else:
                attributes = ActionAttributes.of(action)
            examples.append(TrainingExample(context=stored.record, history=stored.history,
                                            action=attributes))
            metrics = (msgspec.convert(row.code_metrics, CodeMetrics)
                       if row.code_metrics is not None else None)
            labels.append(OutcomeLabels(
                verdict=Verdict(row.verdict), quality=row.quality,
                generation_time_s=row.generation_time_s, regenerations=row.regenerations,
                complexity_rating=row.complexity, code_metrics=metrics, reward=row.reward))
            times.append(as_utc(row.created_at))
    return History(examples=examples, labels=labels, times=times)
