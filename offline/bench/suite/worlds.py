"""Simulated worlds of the learning suite: structures unlike the project's own simulator.

Each world draws realistic requests (:mod:`offline.bench.suite.contexts`), scores every catalog
action with a seeded logistic structure (:mod:`offline.bench.suite.logistic`) and realises a
Bernoulli reward around the expected one. What changes between worlds is what the structure
rewards: price and quality uncorrelated or anti-correlated, one strong model among many weak
ones, a rare flag that flips the best model, sparse success, 2 or 300 actions, abrupt or gradual
drift, delayed feedback. The world's structure is fixed (``STRUCTURE_SEED``); the seed of a
stream draws its requests, delays and rewards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from learners.catalog import Catalog, ModelSpec, TemplateSpec
from offline.bench.suite.contexts import LANGUAGES, draw_contexts
from offline.bench.suite.environment import Environment, FloatArray, Kind, SuiteStep
from offline.bench.suite.logistic import Structure, draw_structure, expected_rewards
from offline.bench.suite.simulator_env import SimulatorEnvironment

STRUCTURE_SEED = 2026
STEPS = 4000
_STYLES = ("minimal", "specification", "reasoning", "tests", "examples")


class SyntheticWorld:
    """A world over ``catalog`` whose expected rewards come from ``structure``.

    ``drift(fraction)`` gives the drift schedule: per step, the multiple of ``structure.drift``
    added to the logits at that fraction of the stream (None: stationary). ``delay`` is the
    range of feedback delays, in decisions (None: immediate).
    """

    def __init__(self, *, name: str, catalog: Catalog, structure: Structure, steps: int = STEPS,
                 drift: Callable[[FloatArray], FloatArray] | None = None,
                 delay: tuple[int, int] | None = None, rare_rate: float = 0.05) -> None:
        self._name = name
        self._catalog = catalog
        self.structure = structure
        self.n_steps = steps
        self.drift = drift
        self.delay = delay
        self.rare_rate = rare_rate

    @property
    def name(self) -> str:
        return self._name

    @property
    def kind(self) -> Kind:
        return "world"

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def lengthened(self, scale: float) -> SyntheticWorld:
        return SyntheticWorld(name=self._name, catalog=self._catalog, structure=self.structure,
                              steps=round(self.n_steps * scale), drift=self.drift,
                              delay=self.delay, rare_rate=self.rare_rate)

    def expected(self, seed: int) -> tuple[list[SuiteStep], FloatArray]:
        """The steps of ``seed`` and their expected rewards as one matrix."""
        rng = np.random.default_rng([seed, 202])
        draws = draw_contexts(self.n_steps, rng, rare_rate=self.rare_rate)
        shift = None
        if self.drift is not None:
            shift = self.drift(np.arange(self.n_steps, dtype=np.float64) / self.n_steps)
        table = expected_rewards(self.structure, self._catalog, draws, shift)
        delays = (np.zeros(self.n_steps, dtype=np.int64) if self.delay is None
                  else rng.integers(self.delay[0], self.delay[1] + 1, self.n_steps))
        steps = [SuiteStep(index=i, context=draws.contexts[i], expected=table[i],
                           delay=int(delays[i])) for i in range(self.n_steps)]
        return steps, table

    def steps(self, seed: int) -> Iterator[SuiteStep]:
        yield from self.expected(seed)[0]

    def reward(self, step: SuiteStep, action: int, rng: np.random.Generator) -> float:
        return 1.0 if rng.random() < float(step.expected[action]) else 0.0

    def skyline(self, seed: int) -> float | None:
        return None


def make_catalog(prices: list[float], latencies: list[float], *, temperatures: tuple[float, ...]
                 = (0.2,), templates: int = 1, prefix: str = "model") -> Catalog:
    """Models ``{prefix}-00``... with these output prices (input: a fifth) and latencies,
    ``templates`` generic templates and these temperatures."""
    models = [ModelSpec(name=f"{prefix}-{i:02d}", input_price_per_mtok=round(price / 5, 4),
                        output_price_per_mtok=round(price, 4),
                        typical_latency_s=round(latency, 2))
              for i, (price, latency) in enumerate(zip(prices, latencies, strict=True))]
    specs = [TemplateSpec(name=f"tpl-{_STYLES[j]}", style=_STYLES[j],
                          prompt_tokens=200 + 250 * j) for j in range(templates)]
    return Catalog(models=models, templates=specs, temperatures=list(temperatures))


def _prices(rng: np.random.Generator, n: int) -> tuple[list[float], list[float]]:
    prices = np.exp(rng.uniform(np.log(0.2), np.log(30.0), n))
    latencies = np.exp(rng.uniform(np.log(2.0), np.log(40.0), n))
    return [float(p) for p in prices], [float(x) for x in latencies]


def uncorrelated() -> SyntheticWorld:
    """Price and latency drawn independently of quality; context matters a lot."""
    prices, latencies = _prices(np.random.default_rng(1), 8)
    catalog = make_catalog(prices, latencies, temperatures=(0.0, 0.7), templates=3)
    return SyntheticWorld(name="world-uncorrelated", catalog=catalog,
                          structure=draw_structure(catalog, STRUCTURE_SEED, skill=0.6,
                                                   affinity=0.6))


def anticorrelated() -> SyntheticWorld:
    """The cheaper and faster a model, the better: pricier models are worse."""
    n = 6
    prices = [0.3 * 2.2**i for i in range(n)]
    catalog = make_catalog(prices, [3.0 + 6.0 * i for i in range(n)], templates=3)
    structure = draw_structure(catalog, STRUCTURE_SEED + 1, affinity=0.35)
    structure.skill = np.linspace(1.0, -1.0, n)
    return SyntheticWorld(name="world-anticorrelated", catalog=catalog, structure=structure)


def one_strong() -> SyntheticWorld:
    """Fifteen weak models and one strong, mid-priced one."""
    n = 16
    prices, latencies = _prices(np.random.default_rng(3), n)
    catalog = make_catalog(prices, latencies, templates=2)
    structure = draw_structure(catalog, STRUCTURE_SEED + 2, intercept=-0.8, skill=0.15,
                               affinity=0.2, slope=0.3)
    strong = int(np.argsort(prices)[n // 2])
    structure.skill[strong] = 1.6
    return SyntheticWorld(name="world-one-strong", catalog=catalog, structure=structure)


def rare_feature() -> SyntheticWorld:
    """``legacy_mainframe`` (in ~5% of requests) flips the best model: the usual best fails
    there, a model that is poor everywhere else is the only good one."""
    prices, latencies = _prices(np.random.default_rng(4), 5)
    catalog = make_catalog(prices, latencies, templates=2)
    structure = draw_structure(catalog, STRUCTURE_SEED + 3, affinity=0.25, slope=0.3)
    structure.skill = np.array([1.2, 0.5, 0.3, 0.0, -1.2])
    structure.rare[0] = -3.0
    structure.rare[4] = 3.6
    return SyntheticWorld(name="world-rare-feature", catalog=catalog, structure=structure,
                          steps=6000)


def sparse() -> SyntheticWorld:
    """Success is rare (~5% on average; the best actions reach ~10-20%)."""
    prices, latencies = _prices(np.random.default_rng(5), 10)
    catalog = make_catalog(prices, latencies, templates=2)
    return SyntheticWorld(name="world-sparse", catalog=catalog, steps=6000,
                          structure=draw_structure(catalog, STRUCTURE_SEED + 4, intercept=-3.3,
                                                   skill=0.6, affinity=0.5))


def two_actions() -> SyntheticWorld:
    """Two models; which one is better depends on the language and the change size."""
    catalog = make_catalog([15.0, 0.6], [25.0, 4.0])
    structure = draw_structure(catalog, STRUCTURE_SEED + 5, skill=0.0, affinity=0.0,
                               slope=0.0, temperature=0.0, template=0.0)
    structure.language[0] = np.where(np.isin(LANGUAGES, ("rust", "go", "java")), 1.0, -0.6)
    structure.slope[:] = (2.5, -1.5)
    return SyntheticWorld(name="world-two-actions", catalog=catalog, structure=structure)


def many_actions() -> SyntheticWorld:
    """300 actions: 20 models × 3 temperatures × 5 templates."""
    prices, latencies = _prices(np.random.default_rng(7), 20)
    catalog = make_catalog(prices, latencies, temperatures=(0.0, 0.4, 0.9), templates=5)
    return SyntheticWorld(name="world-300-actions", catalog=catalog, steps=6000,
                          structure=draw_structure(catalog, STRUCTURE_SEED + 6, skill=0.3,
                                                   affinity=0.7, temperature=0.5, template=0.5))


def abrupt_drift() -> SyntheticWorld:
    """The best model collapses at the middle of the stream; a mediocre one becomes best."""
    prices, latencies = _prices(np.random.default_rng(8), 6)
    catalog = make_catalog(prices, latencies, templates=2)
    structure = draw_structure(catalog, STRUCTURE_SEED + 7, affinity=0.3)
    structure.skill = np.array([1.2, 0.6, 0.2, 0.0, -0.4, -0.8])
    structure.drift = np.array([-2.4, 0.0, 1.6, 0.0, 0.0, 0.0])
    return SyntheticWorld(name="world-abrupt-drift", catalog=catalog, structure=structure,
                          drift=lambda x: (x >= 0.5).astype(np.float64))


def gradual_drift() -> SyntheticWorld:
    """Two models trade places linearly over the stream."""
    prices, latencies = _prices(np.random.default_rng(9), 6)
    catalog = make_catalog(prices, latencies, templates=2)
    structure = draw_structure(catalog, STRUCTURE_SEED + 8, affinity=0.3)
    structure.skill = np.array([1.0, 0.4, -1.0, 0.0, -0.3, -0.6])
    structure.drift = np.array([-1.6, 0.0, 2.4, 0.0, 0.0, 0.0])
    return SyntheticWorld(name="world-gradual-drift", catalog=catalog, structure=structure,
                          drift=lambda x: x)


def delayed() -> SyntheticWorld:
    """Outcomes arrive 50-200 decisions after their decision."""
    prices, latencies = _prices(np.random.default_rng(10), 10)
    catalog = make_catalog(prices, latencies, templates=2)
    return SyntheticWorld(name="world-delayed", catalog=catalog, delay=(50, 200),
                          structure=draw_structure(catalog, STRUCTURE_SEED + 9, skill=0.6,
                                                   affinity=0.5))


def feature_driven() -> SyntheticWorld:
    """The free features decide: template by repo tier, model by change size."""
    prices, latencies = _prices(np.random.default_rng(11), 5)
    catalog = make_catalog(prices, latencies, templates=4)
    return SyntheticWorld(name="world-feature-driven", catalog=catalog,
                          structure=draw_structure(catalog, STRUCTURE_SEED + 10, skill=0.2,
                                                   affinity=0.1, slope=3.0, template=1.0))


def environments() -> list[Environment]:
    """Every simulated world of the suite."""
    return [SimulatorEnvironment(), uncorrelated(), anticorrelated(), one_strong(),
            rare_feature(), sparse(), two_actions(), many_actions(), abrupt_drift(),
            gradual_drift(), delayed(), feature_driven()]
