"""Batch routers by name: per-model P(success) classifiers on a prompt representation.

Each router learns, from prompts with every model's outcome, one classifier per model and routes
a prompt to the model with the highest ``P(success) − λ·cost``
(:func:`offline.bench.realdata.text_model.choose_by_value`). Representations:

- ``repo``, ``text``, ``repo+text``: the service's features and/or a TF-IDF of the prompt, with
  logistic regression (:class:`offline.bench.realdata.text_model.TextSuccessModel`);
- ``emb``, ``emb-knn``, ``emb-lgbm``: the prompt's all-MiniLM-L6-v2 embedding
  (:mod:`offline.bench.realdata.embeddings`) with logistic regression, cosine k-nearest neighbours
  (distance-weighted) or LightGBM;
- ``emb+repo+text``: the mean of the ``emb`` and ``repo+text`` probabilities.

Hyper-parameters are the best of a 5-fold cross-validation on the de-duplicated train code
prompts (docs/evaluation.md, "Real-data benchmark"); none was chosen on the test prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from learners.features import ContextFeatures
from offline.bench.realdata.text_model import (
    Classifier,
    FeatureSet,
    TextSuccessModel,
    fit_per_model,
    predict_per_model,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
EmbeddingLearner = Literal["logistic", "knn", "lightgbm"]


@dataclass(frozen=True)
class PromptInputs:
    """What a batch router may read of each prompt: text, the service's features and (when
    computed) the embedding, row-aligned."""

    prompts: list[str]
    features: list[ContextFeatures]
    embeddings: FloatArray | None = None

    def __post_init__(self) -> None:
        if len(self.features) != len(self.prompts) or (
            self.embeddings is not None and self.embeddings.shape[0] != len(self.prompts)
        ):
            raise ValueError("prompts, features and embeddings must describe the same prompts")

    def __len__(self) -> int:
        return len(self.prompts)

    def take(self, rows: Sequence[int] | IntArray) -> PromptInputs:
        """The inputs of ``rows``, in that order."""
        index = np.asarray(rows, dtype=np.int64)
        return PromptInputs(
            prompts=[self.prompts[i] for i in index],
            features=[self.features[i] for i in index],
            embeddings=None if self.embeddings is None else self.embeddings[index],
        )


class SuccessModel(Protocol):
    """``fit`` on prompts × models scores, then P(success) of every (prompt, model)."""

    def fit(self, inputs: PromptInputs, scores: FloatArray) -> SuccessModel: ...

    def predict_success(self, inputs: PromptInputs) -> FloatArray: ...


class MissingEmbeddingsError(ValueError):
    """An embedding router was given inputs without embeddings."""


def _embeddings(inputs: PromptInputs) -> FloatArray:
    if inputs.embeddings is None:
        raise MissingEmbeddingsError("this router needs prompt embeddings (--embeddings)")
    return inputs.embeddings


class EmbeddingSuccessModel:
    """One classifier per model on the prompt embedding (scikit-learn conventions: ``fit``
    returns ``self``, learned state ends in ``_``).

    Parameters
    ----------
    learner:
        ``logistic`` (L2, inverse strength ``c``), ``knn`` (``k`` cosine neighbours, weighted
        by inverse distance) or ``lightgbm`` (``trees`` small trees).
    c, k, trees:
        Hyper-parameters of the learners above.
    seed:
        LightGBM's row and column sampling.
    """

    def __init__(self, *, learner: EmbeddingLearner = "logistic", c: float = 1.0, k: int = 50,
                 trees: int = 100, seed: int = 0) -> None:
        self.learner = learner
        self.c = c
        self.k = k
        self.trees = trees
        self.seed = seed

    def _classifier(self, n_train: int) -> Classifier:
        match self.learner:
            case "logistic":
                logistic: Classifier = LogisticRegression(C=self.c, max_iter=2000)
                return logistic
            case "knn":
                knn: Classifier = KNeighborsClassifier(
                    n_neighbors=min(self.k, n_train), metric="cosine", weights="distance")
                return knn
            case "lightgbm":
                boosted: Classifier = lgb.LGBMClassifier(
                    n_estimators=self.trees, learning_rate=0.05, num_leaves=7,
                    min_child_samples=20, subsample=0.8, subsample_freq=1, colsample_bytree=0.5,
                    random_state=self.seed, n_jobs=1, verbose=-1)
                return boosted

    def fit(self, inputs: PromptInputs, scores: FloatArray) -> EmbeddingSuccessModel:
        x = _embeddings(inputs)
        if scores.shape[0] != x.shape[0]:
            raise ValueError("inputs and scores must describe the same prompts")
        self.classifiers_ = fit_per_model(x, scores, lambda: self._classifier(x.shape[0]))
        return self

    def predict_success(self, inputs: PromptInputs) -> FloatArray:
        return predict_per_model(_embeddings(inputs), self.classifiers_)


class TextRouterModel:
    """:class:`TextSuccessModel` behind the :class:`SuccessModel` interface."""

    def __init__(self, *, features: FeatureSet = "text") -> None:
        self.features = features

    def fit(self, inputs: PromptInputs, scores: FloatArray) -> TextRouterModel:
        self.model_ = TextSuccessModel(features=self.features).fit(
            inputs.prompts, inputs.features, scores)
        return self

    def predict_success(self, inputs: PromptInputs) -> FloatArray:
        return self.model_.predict_success(inputs.prompts, inputs.features)


class MeanSuccessModel:
    """The mean of its members' probabilities (members are fitted here)."""

    def __init__(self, *, members: Sequence[SuccessModel]) -> None:
        self.members = tuple(members)

    def fit(self, inputs: PromptInputs, scores: FloatArray) -> MeanSuccessModel:
        for member in self.members:
            member.fit(inputs, scores)
        return self

    def predict_success(self, inputs: PromptInputs) -> FloatArray:
        stacked = np.stack([m.predict_success(inputs) for m in self.members])
        mean: FloatArray = stacked.mean(axis=0)
        return mean


@dataclass(frozen=True)
class BatchRouter:
    """A named router: a fresh model per fit, and whether it reads embeddings."""

    name: str
    create: Callable[[], SuccessModel]
    needs_embeddings: bool


BATCH_ROUTERS: tuple[BatchRouter, ...] = (
    BatchRouter("repo", lambda: TextRouterModel(features="repo"), needs_embeddings=False),
    BatchRouter("text", lambda: TextRouterModel(features="text"), needs_embeddings=False),
    BatchRouter("repo+text", lambda: TextRouterModel(features="repo+text"),
                needs_embeddings=False),
    BatchRouter("emb", lambda: EmbeddingSuccessModel(learner="logistic", c=1.0),
                needs_embeddings=True),
    BatchRouter("emb-knn", lambda: EmbeddingSuccessModel(learner="knn", k=50),
                needs_embeddings=True),
    BatchRouter("emb-lgbm", lambda: EmbeddingSuccessModel(learner="lightgbm"),
                needs_embeddings=True),
    BatchRouter("emb+repo+text", lambda: MeanSuccessModel(members=(
        EmbeddingSuccessModel(learner="logistic", c=1.0),
        TextRouterModel(features="repo+text"))), needs_embeddings=True),
)


class UnknownRouterError(ValueError):
    """A batch router name that :data:`BATCH_ROUTERS` does not have."""


def batch_routers(with_embeddings: bool,
                  names: Sequence[str] | None = None) -> list[BatchRouter]:
    """The routers named ``names`` (default: all) that can run with (or without) embeddings;
    :class:`UnknownRouterError` for a name that is not a router."""
    known = {r.name for r in BATCH_ROUTERS}
    unknown = sorted(set(names or ()) - known)
    if unknown:
        raise UnknownRouterError(f"unknown batch router {', '.join(unknown)}: use "
                                 f"{', '.join(r.name for r in BATCH_ROUTERS)}")
    return [r for r in BATCH_ROUTERS if (with_embeddings or not r.needs_embeddings)
            and (names is None or r.name in names)]
