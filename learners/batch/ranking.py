"""Template ranking queries for the ranker: decisions grouped by time window and task, one row
per template tried often enough in a group, its relevance from the group's success rate."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING

import msgspec
import numpy as np
import numpy.typing as npt

from learners.batch.models import ranker_columns
from learners.tabular import TabularEncoder

if TYPE_CHECKING:
    from learners.batch.training import History

FloatArray = npt.NDArray[np.float64]
RANK_WINDOW = 6000  # decisions per time window when grouping tasks into ranking queries
RANK_MIN_ROWS = 5  # decisions of a template in a group before it is a ranking row


class RankingGroups(msgspec.Struct, frozen=True):
    rows: list[list[float]]
    relevance: list[float]
    sizes: list[int]


def ranking_groups(history: History, matrix: FloatArray, encoder: TabularEncoder
                   ) -> RankingGroups:
    """Ranking queries: decisions grouped by time window, task type, language and complexity
    third; one row per template tried at least ``RANK_MIN_ROWS`` times in the group (its
    context and template columns averaged), relevance ``round(3 × success rate)`` (0–3)."""
    columns = ranker_columns(encoder)
    categorical = np.asarray([encoder.categorical[c] for c in columns])
    template_col = encoder.columns.index("template")
    groups: dict[tuple[int, str, str, int], dict[float, list[int]]] = defaultdict(
        lambda: defaultdict(list))
    for i, example in enumerate(history.examples):
        context = example.context
        key = (i // RANK_WINDOW, context.task_type, context.language,
               min(int(context.complexity // 3.34), 2))
        groups[key][float(matrix[i, template_col])].append(i)
    rows: list[list[float]] = []
    relevance: list[float] = []
    sizes: list[int] = []
    for by_template in groups.values():
        kept = [idx for code, idx in sorted(by_template.items())
                if len(idx) >= RANK_MIN_ROWS and not math.isnan(code)]
        if len(kept) < 2:
            continue
        for idx in kept:
            block = matrix[np.asarray(idx)][:, columns]
            known = ~np.isnan(block)
            counts = known.sum(axis=0)
            sums = np.where(known, block, 0.0).sum(axis=0)
            mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
            mean = np.where(categorical, block[0], mean)
            rows.append(mean.tolist())
            rate = float(np.mean([history.labels[i].success for i in idx]))
            relevance.append(float(round(3 * rate)))
        sizes.append(len(kept))
    return RankingGroups(rows=rows, relevance=relevance, sizes=sizes)


def split_groups(groups: RankingGroups, scores: FloatArray
                 ) -> list[tuple[FloatArray, FloatArray]]:
    """(relevance, scores) of each ranking query, for NDCG."""
    out, start = [], 0
    relevance = np.asarray(groups.relevance, dtype=np.float64)
    for size in groups.sizes:
        out.append((relevance[start:start + size], scores[start:start + size]))
        start += size
    return out
