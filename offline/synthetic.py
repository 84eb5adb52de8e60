"""Synthetic history files from the simulator's world: a uniform-random logging policy over
each task's allowed actions, with the world's drawn outcomes. Used by the training benchmark,
the tests and ``router simulate --history-out``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from learners.catalog import Action
from learners.reward import DEFAULT_PROFILES, Outcome, compute_reward
from offline.history_file import HistoryRow
from offline.world import SimOutcome, SimTask, World

START = datetime(2026, 1, 5, tzinfo=UTC)


def generate_history(world: World, n: int, *, seed: int, start: datetime = START,
                     mean_gap_s: float = 90.0) -> list[HistoryRow]:
    """``n`` decisions, Poisson-spaced from ``start``, each with its outcome."""
    rng = np.random.default_rng(seed)
    profile = DEFAULT_PROFILES["balanced"]
    rows: list[HistoryRow] = []
    at = start
    for step in range(n):
        at += timedelta(seconds=float(rng.exponential(mean_gap_s)))
        task = world.sample_task(rng, step=step)
        allowed = world.allowed_actions(task)
        action = allowed[int(rng.integers(len(allowed)))]
        outcome = world.outcome(task, action, rng)
        reward = compute_reward(
            Outcome(verdict=outcome.verdict, quality=outcome.quality,
                    generation_time_s=outcome.generation_time_s, cost_usd=outcome.cost_usd,
                    regenerations=outcome.regenerations), profile)
        rows.append(simulated_row(task, action, outcome, at=at, reward=reward,
                                propensity=1.0 / len(allowed), decision_id=f"sim-{seed}-{step}"))
    return rows


def simulated_row(task: SimTask, action: Action, outcome: SimOutcome, *, at: datetime,
                reward: float, propensity: float, decision_id: str) -> HistoryRow:
    """One logged decision of the simulated world in the history-file schema."""
    rag = task.rag
    return HistoryRow(
        timestamp=at, task_type=task.type, language=task.language,
        description=task.description, outcome=outcome.verdict, action=action.id,
        framework=task.framework, requirements=list(task.requirements),
        project_id=task.project_id, user_id=task.user_id, agent=task.agent,
        rag_examples=None if rag is None else rag.examples,
        rag_avg_similarity=None if rag is None else rag.avg_similarity,
        rag_avg_quality=None if rag is None else rag.avg_quality,
        decision_id=decision_id, propensity=propensity,
        quality=outcome.quality, generation_time_s=outcome.generation_time_s,
        cost_usd=round(outcome.cost_usd, 8), tokens=outcome.tokens,
        regenerations=outcome.regenerations, reward=round(reward, 6),
    )
