"""The batch models' feature table: one row per (decision context, action).

:class:`TabularEncoder` turns a logged :class:`~learners.features.ContextRecord`, the
:class:`~learners.history.HistoryFeatures` known at the decision and a catalog action into a
numeric row. Training and serving call the same methods, so a model sees at serving exactly the
columns it was trained on (the encoder is saved inside the model artifact, and its
:attr:`TabularEncoder.spec_hash` is recorded in the registry).

Categorical columns hold vocabulary codes (``NaN`` for values outside the training vocabulary,
which the tree models treat as missing); numeric columns hold values (``NaN`` when unknown).
The static part of each action's columns is built once per catalog; a request builds only its
context vector and looks up each action's model and template history.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from learners.catalog import Action, Catalog
from learners.estimates import REFERENCE_OUTPUT_TOKENS, estimate_output_tokens
from learners.features import ContextRecord
from learners.history import EMPTY, HistoryFeatures, RateSummary

FloatArray = npt.NDArray[np.float64]

CONTEXT_CATEGORICAL = ("task_type", "language", "framework", "agent", "objective")
CONTEXT_NUMERIC = (
    "description_words",
    "requirements",
    "technical_terms",
    "complexity_heuristic",
    "rag_examples",
    "rag_similarity",
    "rag_quality",
    "hour",
    "weekday",
    "project_age_days",
    "similar_success",
    "similar_n",
    "project_success",
    "project_n",
    "agent_success",
    "agent_quality",
    "agent_n",
)
ACTION_CATEGORICAL = ("model", "template")
ACTION_STATIC = (
    "temperature",
    "log_input_price",
    "log_output_price",
    "log_typical_latency",
    "prompt_tokens",
    "output_factor",
)
ACTION_DYNAMIC = (
    "log_prior_time_s",
    "model_success",
    "model_quality",
    "model_n",
    "template_success",
    "template_quality",
    "template_n",
)
MIN_CATEGORY_COUNT = 3
MAX_CATEGORIES = 200

# Words for the columns, used to explain predictions to users (risk factors).
DESCRIPTIONS: dict[str, str] = {
    "task_type": "task type",
    "language": "language",
    "framework": "framework",
    "agent": "calling agent",
    "objective": "objective",
    "description_words": "description length",
    "requirements": "number of explicit requirements",
    "technical_terms": "technical terms in the description",
    "complexity_heuristic": "task complexity",
    "rag_examples": "number of retrieved examples",
    "rag_similarity": "similarity of retrieved examples",
    "rag_quality": "quality of retrieved examples",
    "hour": "hour of day",
    "weekday": "day of week",
    "project_age_days": "project maturity",
    "similar_success": "recent success rate of similar tasks",
    "similar_n": "number of similar past tasks",
    "project_success": "project's recent success rate",
    "project_n": "project's number of past outcomes",
    "agent_success": "agent's recent success rate",
    "agent_quality": "agent's recent quality",
    "agent_n": "agent's number of past outcomes",
    "model": "model choice",
    "template": "template choice",
    "temperature": "temperature",
    "log_input_price": "model input price",
    "log_output_price": "model output price",
    "log_typical_latency": "model latency",
    "prompt_tokens": "template prompt length",
    "output_factor": "template output length",
    "log_prior_time_s": "expected generation time",
    "model_success": "model's recent success rate",
    "model_quality": "model's recent quality",
    "model_n": "model's number of past outcomes",
    "template_success": "template's recent success rate",
    "template_quality": "template's recent quality",
    "template_n": "template's number of past outcomes",
}


class ActionAttributes(msgspec.Struct, frozen=True):
    """The chosen action as the batch models see it (``None``: unknown, e.g. an imported
    model that is not in the catalog)."""

    model: str
    template: str
    temperature: float
    input_price_per_mtok: float | None = None
    output_price_per_mtok: float | None = None
    typical_latency_s: float | None = None
    prompt_tokens: int | None = None
    output_factor: float | None = None

    @classmethod
    def of(cls, action: Action) -> ActionAttributes:
        return cls(
            model=action.model.name,
            template=action.template.name,
            temperature=action.temperature,
            input_price_per_mtok=action.model.input_price_per_mtok,
            output_price_per_mtok=action.model.output_price_per_mtok,
            typical_latency_s=action.model.typical_latency_s,
            prompt_tokens=action.template.prompt_tokens,
            output_factor=action.template.output_factor,
        )


class TrainingExample(msgspec.Struct, frozen=True):
    """One logged decision's inputs: its context, the history then, and the chosen action."""

    context: ContextRecord
    history: HistoryFeatures
    action: ActionAttributes


def _num(value: float | int | None) -> float:
    return math.nan if value is None else float(value)


def _summary_values(summary: RateSummary) -> tuple[float, float, float]:
    return _num(summary.success), _num(summary.quality), float(summary.n)


def _fit_vocabulary(values: Iterable[str | None]) -> tuple[str, ...]:
    counts = Counter(v for v in values if v is not None)
    kept = [v for v, c in counts.most_common(MAX_CATEGORIES) if c >= MIN_CATEGORY_COUNT]
    return tuple(sorted(kept))


def _log1p(value: float | None) -> float:
    return math.nan if value is None else math.log1p(value)


def _log(value: float | None) -> float:
    return math.nan if value is None or value <= 0 else math.log(value)


class _CatalogLayout(msgspec.Struct, frozen=True):
    """Per-catalog serving layout: static action columns and each action's model and
    template position (so a request gathers history columns instead of looping)."""

    static: FloatArray
    models: list[str]
    templates: list[str]
    model_of: npt.NDArray[np.intp]
    template_of: npt.NDArray[np.intp]


class TabularEncoder:
    """Column layout and category vocabularies, fitted on training data."""

    def __init__(self, *, vocabularies: dict[str, tuple[str, ...]]) -> None:
        self.vocabularies = vocabularies
        self._codes = {name: {v: i for i, v in enumerate(values)}
                       for name, values in vocabularies.items()}
        self._static: dict[str, _CatalogLayout] = {}

    def __getstate__(self) -> dict[str, dict[str, tuple[str, ...]]]:
        return {"vocabularies": self.vocabularies}

    def __setstate__(self, state: dict[str, dict[str, tuple[str, ...]]]) -> None:
        self.__init__(vocabularies=state["vocabularies"])  # type: ignore[misc]

    @classmethod
    def fit(cls, examples: Sequence[TrainingExample], catalog: Catalog | None) -> TabularEncoder:
        vocab = {name: _fit_vocabulary(getattr(e.context, name) for e in examples)
                 for name in CONTEXT_CATEGORICAL}
        models = {e.action.model for e in examples}
        templates = {e.action.template for e in examples}
        if catalog is not None:
            models |= {m.name for m in catalog.models}
            templates |= {t.name for t in catalog.templates}
        vocab["model"] = tuple(sorted(models))
        vocab["template"] = tuple(sorted(templates))
        return cls(vocabularies=vocab)

    @property
    def columns(self) -> list[str]:
        return [*CONTEXT_CATEGORICAL, *CONTEXT_NUMERIC, *ACTION_CATEGORICAL, *ACTION_STATIC,
                *ACTION_DYNAMIC]

    @property
    def categorical(self) -> list[bool]:
        kinds = set(CONTEXT_CATEGORICAL) | set(ACTION_CATEGORICAL)
        return [c in kinds for c in self.columns]

    @property
    def spec_hash(self) -> str:
        text = msgspec.json.encode([self.columns, self.vocabularies])
        return hashlib.sha256(text).hexdigest()[:16]

    def category(self, column: str, code: float) -> str | None:
        """The category a code stands for (``"other"`` outside the vocabulary); ``None`` for
        numeric columns."""
        vocabulary = self.vocabularies.get(column)
        if vocabulary is None:
            return None
        if math.isnan(code) or not 0 <= int(code) < len(vocabulary):
            return "other"
        return vocabulary[int(code)]

    def _code(self, column: str, value: str | None) -> float:
        if value is None:
            return math.nan
        code = self._codes[column].get(value)
        return math.nan if code is None else float(code)

    def context_vector(self, record: ContextRecord, history: HistoryFeatures) -> FloatArray:
        """The context columns of one decision."""
        similar = history.similar
        project = history.project
        agent = history.agent
        values = [self._code(name, getattr(record, name)) for name in CONTEXT_CATEGORICAL]
        values += [
            float(record.description_words),
            float(record.requirements),
            float(record.technical_terms),
            record.complexity,
            _num(record.rag_examples),
            _num(record.rag_similarity),
            _num(record.rag_quality),
            float(record.hour),
            float(record.weekday),
            _num(history.project_age_days),
            _num(similar.success),
            float(similar.n),
            _num(project.success),
            float(project.n),
            _num(agent.success),
            _num(agent.quality),
            float(agent.n),
        ]
        return np.asarray(values, dtype=np.float64)

    def _static_row(self, action: ActionAttributes) -> list[float]:
        return [
            self._code("model", action.model),
            self._code("template", action.template),
            action.temperature,
            _log1p(action.input_price_per_mtok),
            _log1p(action.output_price_per_mtok),
            _log(action.typical_latency_s),
            _num(action.prompt_tokens),
            _num(action.output_factor),
        ]

    def action_static(self, catalog: Catalog) -> FloatArray:
        """Columns that depend on the action only, one row per catalog action (cached)."""
        return self._catalog_layout(catalog).static

    def _catalog_layout(self, catalog: Catalog) -> _CatalogLayout:
        layout = self._static.get(catalog.fingerprint)
        if layout is None:
            rows = [self._static_row(ActionAttributes.of(a)) for a in catalog.actions]
            models = sorted({a.model.name for a in catalog.actions})
            templates = sorted({a.template.name for a in catalog.actions})
            layout = _CatalogLayout(
                static=np.asarray(rows, dtype=np.float64).reshape(len(rows), _STATIC_WIDTH),
                models=models,
                templates=templates,
                model_of=np.asarray([models.index(a.model.name) for a in catalog.actions],
                                    dtype=np.intp),
                template_of=np.asarray(
                    [templates.index(a.template.name) for a in catalog.actions], dtype=np.intp
                ),
            )
            self._static[catalog.fingerprint] = layout
        return layout

    def _assemble(
        self,
        record: ContextRecord,
        history: HistoryFeatures,
        static: FloatArray,
        model_history: FloatArray,
        template_history: FloatArray,
    ) -> FloatArray:
        """Rows of one context: ``static`` action columns and each row's model and template
        history columns (``(rows, 3)`` each: success, quality, n)."""
        n = static.shape[0]
        context = self.context_vector(record, history)
        output = estimate_output_tokens(record.complexity) / REFERENCE_OUTPUT_TOKENS
        out = np.empty((n, len(self.columns)), dtype=np.float64)
        width = len(context)
        out[:, :width] = context
        out[:, width:width + _STATIC_WIDTH] = static
        start = width + _STATIC_WIDTH
        with np.errstate(invalid="ignore"):
            np.log(0.3 + 0.7 * output * static[:, 7], out=out[:, start])
        out[:, start] += static[:, 5]
        out[:, start + 1:start + 4] = model_history
        out[:, start + 4:start + 7] = template_history
        return out

    def matrix(
        self,
        record: ContextRecord,
        history: HistoryFeatures,
        catalog: Catalog,
        indices: Sequence[int],
    ) -> FloatArray:
        """Rows for the actions ``indices`` of ``catalog`` in one context (vectorised: each
        model's and template's history is looked up once and gathered)."""
        layout = self._catalog_layout(catalog)
        rows = np.asarray(indices, dtype=np.intp)
        models = np.asarray([_summary_values(history.models.get(m, EMPTY))
                             for m in layout.models], dtype=np.float64).reshape(-1, 3)
        templates = np.asarray([_summary_values(history.templates.get(t, EMPTY))
                                for t in layout.templates], dtype=np.float64).reshape(-1, 3)
        return self._assemble(record, history, layout.static[rows],
                              models[layout.model_of[rows]],
                              templates[layout.template_of[rows]])

    def example_row(self, example: TrainingExample) -> FloatArray:
        """The row of one logged decision (its context and the action it chose)."""
        action = example.action
        static = np.asarray([self._static_row(action)], dtype=np.float64)
        model = np.asarray([_summary_values(example.history.models.get(action.model, EMPTY))])
        template = np.asarray(
            [_summary_values(example.history.templates.get(action.template, EMPTY))]
        )
        rows = self._assemble(example.context, example.history, static, model, template)
        row: FloatArray = rows[0]
        return row

    def training_matrix(self, examples: Sequence[TrainingExample]) -> FloatArray:
        """One row per logged decision."""
        out = np.empty((len(examples), len(self.columns)), dtype=np.float64)
        for row, example in enumerate(examples):
            out[row] = self.example_row(example)
        return out


_STATIC_WIDTH = len(ACTION_CATEGORICAL) + len(ACTION_STATIC)
