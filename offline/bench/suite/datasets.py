"""Classification sets turned into bandit feedback (the contextual-bandit bake-off protocol).

Each class is an action (a model named ``class-<label>``, all with the same prices and latency,
one temperature, one template); the reward is 1 for the true label and 0 otherwise, so rewards
are deterministic. The example's attributes are sent as the request's free-form ``features``
(numeric values as numbers, categorical ones as strings); the task fields are constant and only
name the data set, so the features are all a router can learn from.

Only data shipped inside installed packages is used (no download): scikit-learn's bundled
iris, wine and breast-cancer tables, River's bundled phishing table and River's seeded synthetic
generators. scikit-learn's ``digits`` and River's ``ImageSegments`` are kept for held-out checks
and must not appear here.

Every seed gives its own stream: a seeded shuffle of a bundled table (cycled through several
shuffled passes when the table is small), or a generator seeded with it. Streams hold
:data:`STEPS` examples.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np
from river import compose, linear_model, multiclass, preprocessing
from river import datasets as river_datasets
from river.datasets import synth
from sklearn import datasets as sklearn_datasets

from learners.catalog import Catalog, ModelSpec, TemplateSpec
from learners.context import MAX_FEATURES, DecisionContext, Task
from offline.bench.suite.environment import Environment, FloatArray, Kind, SuiteStep

STEPS = 3_000
TASK_TYPE = "classify"
TASK_LANGUAGE = "text"
TEMPLATE = "plain"
TEMPERATURE = 0.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")

FeatureValue = float | str
Example = tuple[dict[str, FeatureValue], int]  # (features, label index)


def feature_name(raw: str) -> str:
    """A data set's column name as a valid request feature name (``mean radius`` →
    ``mean_radius``; ``od280/od315_of_diluted_wines`` → ``od280_od315_of_diluted_wines``)."""
    name = _UNSAFE.sub("_", raw.strip()).strip("_")
    if not name:
        raise ValueError(f"column {raw!r} has no usable character for a feature name")
    return name[:64]


@dataclass(frozen=True)
class Source:
    """Where one environment's examples come from and what they look like."""

    name: str  # environment name, ``cls-<data set>``
    description: str  # the request's task description: names the data set
    labels: tuple[str, ...]  # class names, in label-index (= catalog) order
    numeric: tuple[str, ...]  # feature names sent as numbers
    categorical: tuple[str, ...]  # feature names sent as strings
    examples: Callable[[int], list[Example]] = field(repr=False)  # the stream of a seed


class ClassificationEnvironment:
    """One classification set as a suite environment (see the module docstring)."""

    def __init__(self, source: Source) -> None:
        features = len(source.numeric) + len(source.categorical)
        if features > MAX_FEATURES:
            raise ValueError(f"{source.name}: {features} features, the limit is {MAX_FEATURES}")
        self.source = source
        self._catalog = Catalog(
            models=[
                ModelSpec(name=f"class-{label}", input_price_per_mtok=1.0,
                          output_price_per_mtok=1.0, typical_latency_s=1.0)
                for label in source.labels
            ],
            templates=[TemplateSpec(name=TEMPLATE)],
            temperatures=[TEMPERATURE],
        )
        self._task = Task(type=TASK_TYPE, language=TASK_LANGUAGE, description=source.description)
        self._rewards = np.eye(len(source.labels), dtype=np.float64)
        self._rewards.setflags(write=False)
        self._skylines: dict[int, float] = {}

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def kind(self) -> Kind:
        return "classification"

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def steps(self, seed: int) -> Iterator[SuiteStep]:
        for index, (features, label) in enumerate(self.source.examples(seed)):
            sent: dict[str, bool | float | str] = dict(features)
            yield SuiteStep(
                index=index,
                context=DecisionContext(task=self._task, features=sent),
                expected=self._expected(label),
            )

    def _expected(self, label: int) -> FloatArray:
        row: FloatArray = self._rewards[label]
        return row

    def reward(self, step: SuiteStep, action: int, rng: np.random.Generator) -> float:
        """1.0 for the true label's action, 0.0 otherwise (no draw: ``rng`` is unused)."""
        return float(step.expected[action])

    def skyline(self, seed: int) -> float:
        """Progressive accuracy (predict, then learn the true label) of a full-information
        online learner over the stream of ``seed``: numeric features standardised, categorical
        ones one-hot encoded, one River logistic regression per class (one-vs-rest).

        Why this learner: it is of the same class as the router's bandit (linear in the sent
        features), so the ratio router / skyline measures what bandit feedback costs, as in
        the bake-off; standardising makes it insensitive to the columns' units (breast-cancer
        areas are ~1,000, smoothness ~0.1); River's defaults, no tuning; deterministic. VW's
        ``--oaa`` on the same features was measured lower on 8 of the 9 sets.
        """
        cached = self._skylines.get(seed)
        if cached is None:
            cached = progressive_accuracy(self.source, self.source.examples(seed))
            self._skylines[seed] = cached
        return cached


def create_skyline_learner(source: Source) -> Any:
    """A fresh River pipeline: scaled numeric ∪ one-hot categorical → one-vs-rest logistic."""
    parts: list[Any] = []
    if source.numeric:
        parts.append(compose.Select(*source.numeric) | preprocessing.StandardScaler())
    if source.categorical:
        # Not through StandardScaler: a one-hot column is only present when it is 1, so the
        # scaler would see a constant and turn it into 0.
        parts.append(compose.Select(*source.categorical) | preprocessing.OneHotEncoder())
    union = parts[0] if len(parts) == 1 else compose.TransformerUnion(*parts)
    return union | multiclass.OneVsRestClassifier(linear_model.LogisticRegression())


def progressive_accuracy(source: Source, examples: Sequence[Example]) -> float:
    """Share of ``examples`` the skyline learner predicts right before learning each."""
    model = create_skyline_learner(source)
    hits = 0
    for features, label in examples:
        hits += int(model.predict_one(features) == label)
        model.learn_one(features, label)
    return hits / len(examples)


# --- the data sets ----------------------------------------------------------------------------


def _cycled(table: Sequence[Example], seed: int, steps: int = STEPS) -> list[Example]:
    """``steps`` examples: shuffled passes over ``table`` (each pass its own permutation)."""
    rng = np.random.default_rng(seed)
    out: list[Example] = []
    while len(out) < steps:
        out.extend(table[i] for i in rng.permutation(len(table)))
    return out[:steps]


def _sklearn_source(key: str, loader: Callable[..., Any], title: str) -> Source:
    bunch = loader()
    names = tuple(feature_name(str(n)) for n in bunch.feature_names)
    labels = tuple(feature_name(str(n)) for n in bunch.target_names)
    rows: list[Example] = [
        ({n: float(v) for n, v in zip(names, x, strict=True)}, int(y))
        for x, y in zip(bunch.data, bunch.target, strict=True)
    ]
    description = (f"Classify one {title} example ({len(rows)} examples, {len(labels)} classes, "
                   "scikit-learn's bundled copy) from its numeric features.")
    return Source(name=f"cls-{key}", description=description, labels=labels, numeric=names,
                  categorical=(), examples=lambda seed: _cycled(rows, seed))


def _phishing() -> Source:
    rows: list[Example] = [
        ({feature_name(k): float(v) for k, v in x.items()}, int(bool(y)))
        for x, y in river_datasets.Phishing()
    ]
    return Source(
        name="cls-phishing",
        description=("Tell whether a web page is a phishing page (River's bundled phishing "
                     "set, 1,250 pages) from its numeric features."),
        labels=("legitimate", "phishing"), numeric=tuple(rows[0][0]), categorical=(),
        examples=lambda seed: _cycled(rows, seed),
    )


_AGRAWAL_NUMERIC = ("salary", "commission", "age", "hvalue", "hyears", "loan")
_AGRAWAL_CATEGORICAL = ("elevel", "car", "zipcode")


def _agrawal_examples(seed: int) -> list[Example]:
    # Function 8: approved when 2/3·(salary + commission) − 5000·elevel − loan/5 − 10000 ≤ 1,
    # so the education level (sent as a category) matters and the classes are balanced.
    stream = synth.Agrawal(classification_function=8, seed=seed)
    return [
        ({**{k: float(x[k]) for k in _AGRAWAL_NUMERIC},
          **{k: str(x[k]) for k in _AGRAWAL_CATEGORICAL}}, int(y))
        for x, y in stream.take(STEPS)
    ]


_STAGGER_VALUES = {
    "size": ("small", "medium", "large"),
    "color": ("red", "blue", "green"),
    "shape": ("circle", "square", "triangle"),
}


def _stagger_examples(seed: int) -> list[Example]:
    # Function 1: positive when the colour is green or the shape a circle.
    stream = synth.STAGGER(classification_function=1, seed=seed)
    return [({k: _STAGGER_VALUES[k][int(v)] for k, v in x.items()}, int(y))
            for x, y in stream.take(STEPS)]


def _numbered(prefix: str, stream: Any) -> list[Example]:
    return [({f"{prefix}{k}": float(v) for k, v in x.items()}, int(y))
            for x, y in islice(stream, STEPS)]


_RBF_CLASSES = 5
_RBF_FEATURES = 10
_RBF_CONCEPT_SEED = 7  # the centroids: one concept for every seed, whose draws differ


def _sources() -> list[Source]:
    return [
        _sklearn_source("iris", sklearn_datasets.load_iris, "iris flower"),
        _sklearn_source("wine", sklearn_datasets.load_wine, "wine"),
        _sklearn_source("breast-cancer", sklearn_datasets.load_breast_cancer,
                        "breast-cancer biopsy"),
        _phishing(),
        Source(
            name="cls-agrawal",
            description=("Decide whether a loan applicant belongs to the approved group "
                         "(River's seeded Agrawal generator, function 8) from numeric and "
                         "categorical attributes."),
            labels=("group-a", "group-b"), numeric=_AGRAWAL_NUMERIC,
            categorical=_AGRAWAL_CATEGORICAL, examples=_agrawal_examples,
        ),
        Source(
            name="cls-stagger",
            description=("Tell whether an object is green or a circle (River's seeded STAGGER "
                         "generator) from its size, colour and shape."),
            labels=("no", "yes"), numeric=(), categorical=tuple(_STAGGER_VALUES),
            examples=_stagger_examples,
        ),
        Source(
            name="cls-led",
            description=("Read the digit shown by a seven-segment display with 10% of the "
                         "segments flipped and 17 irrelevant segments (River's seeded LED "
                         "generator)."),
            labels=tuple(str(d) for d in range(10)),
            numeric=tuple(f"seg{i}" for i in range(24)), categorical=(),
            examples=lambda seed: _numbered("seg", synth.LED(
                seed=seed, noise_percentage=0.1, irrelevant_features=True)),
        ),
        Source(
            name="cls-waveform",
            description=("Tell which of three noisy waveforms 21 samples come from (River's "
                         "seeded Waveform generator)."),
            labels=("wave-0", "wave-1", "wave-2"),
            numeric=tuple(f"w{i}" for i in range(21)), categorical=(),
            examples=lambda seed: _numbered("w", synth.Waveform(seed=seed)),
        ),
        Source(
            name="cls-rbf",
            description=("Tell which of five classes a point belongs to (River's seeded random "
                         "radial-basis-function generator, 10 dimensions, 50 centroids)."),
            labels=tuple(f"c{i}" for i in range(_RBF_CLASSES)),
            numeric=tuple(f"x{i}" for i in range(_RBF_FEATURES)), categorical=(),
            examples=lambda seed: _numbered("x", synth.RandomRBF(
                seed_model=_RBF_CONCEPT_SEED, seed_sample=seed, n_classes=_RBF_CLASSES,
                n_features=_RBF_FEATURES)),
        ),
    ]


def environments() -> list[Environment]:
    """Every classification environment, from 2 to 10 actions, numeric and categorical."""
    return [ClassificationEnvironment(source) for source in _sources()]
