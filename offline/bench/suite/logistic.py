"""Seeded logistic reward structures over (context, action), vectorised over a whole stream.

The expected reward of action ``a = (model m, temperature t, template p)`` on context ``i`` is

    sigmoid(intercept + skill[m] + type[m, type_i] + language[m, language_i]
            + slope[m] · (size_i − 0.5) + temperature[t, type_i] + template[p, tier_i]
            + rare[m] · rare_i + drift[m] · shift(i))

with every table drawn once from a structure seed, so that a world is the same across the
seeds of its stream. Worlds pick the scales (how much context matters) and overwrite single
entries (a strong model, a flag that flips the best model, a drift).
"""

from __future__ import annotations

import msgspec
import numpy as np
import numpy.typing as npt

from learners.catalog import Catalog
from offline.bench.suite.contexts import LANGUAGES, REPO_TIERS, TASK_TYPES, ContextDraws

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class Structure(msgspec.Struct):
    """The tables of one world (mutable while a world sets its special entries)."""

    intercept: float
    skill: FloatArray  # per model
    task_type: FloatArray  # model × task type
    language: FloatArray  # model × language
    slope: FloatArray  # per model: effect of the change size
    temperature: FloatArray  # temperature × task type
    template: FloatArray  # template × repo tier
    rare: FloatArray  # per model: shift when the rare flag is set
    drift: FloatArray  # per model: shift scaled by the world's drift schedule


def draw_structure(catalog: Catalog, seed: int, *, intercept: float = 0.0,
                   skill: float = 0.6, affinity: float = 0.5, slope: float = 0.8,
                   temperature: float = 0.4, template: float = 0.4) -> Structure:
    """Tables for ``catalog`` drawn from ``seed`` with the given standard deviations."""
    rng = np.random.default_rng([seed, 7919])
    n_models, n_temps = len(catalog.models), len(_temperatures(catalog))
    return Structure(
        intercept=intercept,
        skill=rng.normal(0.0, skill, n_models),
        task_type=rng.normal(0.0, affinity, (n_models, len(TASK_TYPES))),
        language=rng.normal(0.0, affinity, (n_models, len(LANGUAGES))),
        slope=rng.normal(0.0, slope, n_models),
        temperature=rng.normal(0.0, temperature, (n_temps, len(TASK_TYPES))),
        template=rng.normal(0.0, template, (len(catalog.templates), len(REPO_TIERS))),
        rare=np.zeros(n_models),
        drift=np.zeros(n_models),
    )


def action_parts(catalog: Catalog) -> tuple[IntArray, IntArray, IntArray]:
    """Model, temperature and template index of every catalog action."""
    models = {m.name: i for i, m in enumerate(catalog.models)}
    temps = {t: i for i, t in enumerate(_temperatures(catalog))}
    templates = {t.name: i for i, t in enumerate(catalog.templates)}
    actions = catalog.actions
    return (np.array([models[a.model.name] for a in actions], dtype=np.int64),
            np.array([temps[a.temperature] for a in actions], dtype=np.int64),
            np.array([templates[a.template.name] for a in actions], dtype=np.int64))


def expected_rewards(structure: Structure, catalog: Catalog, draws: ContextDraws,
                     shift: FloatArray | None = None) -> FloatArray:
    """Expected reward (steps × actions); ``shift`` (per step) scales ``structure.drift``."""
    model, temp, template = action_parts(catalog)
    s = structure
    logit = (s.intercept + s.skill[model][None, :]
             + s.task_type[model][:, draws.task_type].T
             + s.language[model][:, draws.language].T
             + np.outer(draws.size - 0.5, s.slope[model])
             + s.temperature[temp][:, draws.task_type].T
             + s.template[template][:, draws.tier].T
             + np.outer(draws.rare.astype(np.float64), s.rare[model]))
    if shift is not None:
        logit = logit + np.outer(shift, s.drift[model])
    result: FloatArray = 1.0 / (1.0 + np.exp(-logit))
    return result


def _temperatures(catalog: Catalog) -> list[float]:
    return sorted({a.temperature for a in catalog.actions})
