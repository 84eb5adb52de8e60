"""The real-outcome data set of ``../shared/data/llmrouter``: prompts, per-model scores, prices.

``outcomes.jsonl.gz`` holds, per prompt, the score each of 9 models obtained (``code_eval``
prompts: pass/fail of the unit tests); ``models.json`` holds the models' prices. Costs are not
in the data: :func:`estimate_costs` estimates them from the prompt length and the prices (see
:data:`CHARS_PER_TOKEN` and :data:`ASSUMED_OUTPUT_TOKENS`).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

from learners.catalog import Catalog, ModelSpec, TemplateSpec
from learners.estimates import CHARS_PER_TOKEN

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Subset = Literal["code", "all"]

CODE_TASKS = frozenset({"mbpp", "human_eval"})
# The data has no completion lengths. Every model is charged this many output tokens per prompt
# (about a 25-line Python function); input tokens are the prompt's characters / CHARS_PER_TOKEN.
ASSUMED_OUTPUT_TOKENS = 256
# The data has no latencies either; ModelSpec requires one, so every model gets the same value,
# which makes the bandit's latency feature constant (it carries no information).
UNKNOWN_LATENCY_S = 1.0
TEMPLATE = "plain"
TEMPERATURE = 0.0


class RealDataError(ValueError):
    """The data directory is missing or its files do not have the documented shape."""


class OutcomeRecord(msgspec.Struct, frozen=True):
    """One line of ``outcomes.jsonl.gz``."""

    id: str
    split: Literal["train", "test"]
    task: str
    metric: str
    prompt: str
    scores: dict[str, float]


class ModelPrice(msgspec.Struct, frozen=True):
    """One entry of ``models.json`` (USD per million tokens)."""

    input_price_per_mtok: float
    output_price_per_mtok: float
    size: str = ""
    provider_model: str = ""


@dataclass(frozen=True)
class RealData:
    """Prompts with their scores as a (prompt × model) matrix, and the models' prices.

    ``task`` is kept for selecting subsets and for reporting only; routers never see it.
    """

    ids: list[str]
    splits: list[str]
    tasks: list[str]
    prompts: list[str]
    scores: FloatArray
    models: list[str]
    prices: dict[str, ModelPrice]

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, mask: BoolArray) -> RealData:
        """The rows where ``mask`` is true, in their order."""
        keep = np.flatnonzero(mask)
        return RealData(
            ids=[self.ids[i] for i in keep],
            splits=[self.splits[i] for i in keep],
            tasks=[self.tasks[i] for i in keep],
            prompts=[self.prompts[i] for i in keep],
            scores=self.scores[keep],
            models=self.models,
            prices=self.prices,
        )

    def subset(self, subset: Subset) -> RealData:
        """``code``: the mbpp and human_eval prompts; ``all``: every prompt."""
        if subset == "all":
            return self
        return self.select(np.array([t in CODE_TASKS for t in self.tasks], dtype=np.bool_))

    def split(self, name: str) -> RealData:
        return self.select(np.array([s == name for s in self.splits], dtype=np.bool_))

    def without_prompts_of(self, other: RealData) -> RealData:
        """The rows whose prompt text does not occur in ``other`` (train/test de-duplication)."""
        seen = set(other.prompts)
        return self.select(np.array([p not in seen for p in self.prompts], dtype=np.bool_))


def default_data_dir() -> Path:
    """``../shared/data/llmrouter`` relative to the repository root."""
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "llmrouter"


def load_real_data(directory: Path) -> RealData:
    """Read ``outcomes.jsonl.gz`` and ``models.json`` from ``directory``.

    Models are the ones scored on every prompt, in ``models.json`` order; each must have a price.
    """
    outcomes_path = directory / "outcomes.jsonl.gz"
    prices_path = directory / "models.json"
    for path in (outcomes_path, prices_path):
        if not path.is_file():
            raise RealDataError(f"{path}: no such file (is --data the llmrouter directory?)")
    try:
        prices = msgspec.json.decode(prices_path.read_bytes(), type=dict[str, ModelPrice])
    except msgspec.ValidationError as exc:
        raise RealDataError(f"{prices_path}: {exc}") from exc
    decoder = msgspec.json.Decoder(OutcomeRecord)
    records: list[OutcomeRecord] = []
    with gzip.open(outcomes_path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(decoder.decode(line))
            except msgspec.ValidationError as exc:
                raise RealDataError(f"{outcomes_path}: line {number}: {exc}") from exc
    if not records:
        raise RealDataError(f"{outcomes_path}: no outcome")
    scored = set.intersection(*(set(r.scores) for r in records))
    unpriced = sorted(scored - set(prices))
    if unpriced:
        raise RealDataError(f"{prices_path}: no price for {', '.join(unpriced)}")
    models = [name for name in prices if name in scored]
    scores = np.array([[r.scores[m] for m in models] for r in records], dtype=np.float64)
    return RealData(
        ids=[r.id for r in records],
        splits=[r.split for r in records],
        tasks=[r.task for r in records],
        prompts=[r.prompt for r in records],
        scores=scores,
        models=models,
        prices={m: prices[m] for m in models},
    )


def estimate_costs(data: RealData, output_tokens: int = ASSUMED_OUTPUT_TOKENS) -> FloatArray:
    """Estimated USD cost of each (prompt, model): prompt characters / 4 input tokens plus
    ``output_tokens`` output tokens, at the model's prices."""
    input_tokens = np.array([len(p) for p in data.prompts], dtype=np.float64) / CHARS_PER_TOKEN
    price_in = np.array([data.prices[m].input_price_per_mtok for m in data.models])
    price_out = np.array([data.prices[m].output_price_per_mtok for m in data.models])
    costs: FloatArray = (np.outer(input_tokens, price_in) + output_tokens * price_out) / 1e6
    return costs


def build_catalog(data: RealData) -> Catalog:
    """Pure model routing: the data's models with their prices, one temperature, one template."""
    models = [
        ModelSpec(
            name=name,
            input_price_per_mtok=data.prices[name].input_price_per_mtok,
            output_price_per_mtok=data.prices[name].output_price_per_mtok,
            typical_latency_s=UNKNOWN_LATENCY_S,
            tier=f"size-{data.prices[name].size}" if data.prices[name].size else "",
        )
        for name in data.models
    ]
    return Catalog(models=models, templates=[TemplateSpec(name=TEMPLATE)],
                   temperatures=[TEMPERATURE])
