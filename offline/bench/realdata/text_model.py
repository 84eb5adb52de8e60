"""Batch per-model success classifiers from prompt text, and the routing rule on top of them.

One logistic regression per model predicts P(score ≥ 0.5 | prompt); the router picks the model
with the highest ``P − λ·estimated cost``. Feature sets:

- ``repo``: the service's features (:func:`learners.features.extract_features`: task type,
  language, length, requirement and technical-term counts, complexity heuristic, description
  tokens), hashed;
- ``text``: a hashed TF-IDF of word unigrams and bigrams of the whole prompt (sublinear tf);
- ``repo+text``: both side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression

from learners.features import ContextFeatures

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
FeatureSet = Literal["repo", "text", "repo+text"]
FEATURE_SETS: tuple[FeatureSet, ...] = ("repo", "text", "repo+text")
SUCCESS_AT = 0.5


class TextSuccessModel:
    """Per-model success classifiers on prompt features (scikit-learn conventions: ``fit``
    returns ``self``, learned state ends in ``_``).

    Parameters
    ----------
    features:
        Which representation of the prompt to use (module docstring).
    c:
        Inverse L2 regularisation strength of every logistic regression.
    text_bits, repo_bits:
        Hash space sizes (2**bits columns) of the TF-IDF and of the service's features.
    """

    def __init__(self, *, features: FeatureSet = "text", c: float = 1.0, text_bits: int = 18,
                 repo_bits: int = 14) -> None:
        self.features = features
        self.c = c
        self.text_bits = text_bits
        self.repo_bits = repo_bits

    def _matrix(self, prompts: list[str], context: list[ContextFeatures],
                fit: bool) -> csr_matrix:
        blocks: list[csr_matrix] = []
        if self.features in ("repo", "repo+text"):
            hasher = FeatureHasher(n_features=2**self.repo_bits, input_type="dict")
            blocks.append(hasher.transform(
                [{f"{ns}:{name}": value for ns, values in f.namespaces.items()
                  for name, value in values.items()} for f in context]
            ))
        if self.features in ("text", "repo+text"):
            counts = HashingVectorizer(ngram_range=(1, 2), n_features=2**self.text_bits,
                                       alternate_sign=False, norm=None).transform(prompts)
            if fit:
                self.tfidf_ = TfidfTransformer(sublinear_tf=True).fit(counts)
            blocks.append(self.tfidf_.transform(counts))
        matrix = csr_matrix(hstack(blocks).tocsr())
        if fit:
            # Only columns some training prompt uses: the weights of the others are zero under
            # L2 anyway, and L-BFGS over all 2**18 hashed columns is ~100x slower.
            self.columns_ = np.unique(matrix.indices)
        return csr_matrix(matrix[:, self.columns_])

    def fit(self, prompts: list[str], context: list[ContextFeatures],
            scores: FloatArray) -> TextSuccessModel:
        """Learn one classifier per column of ``scores`` (prompt × model)."""
        if len(prompts) != len(context) or len(prompts) != scores.shape[0]:
            raise ValueError("prompts, context and scores must describe the same prompts")
        x = self._matrix(prompts, context, fit=True)
        self.classifiers_ = fit_per_model(
            x, scores, lambda: LogisticRegression(C=self.c, max_iter=2000)
        )
        return self

    def predict_success(self, prompts: list[str], context: list[ContextFeatures]) -> FloatArray:
        """P(success) of every (prompt, model)."""
        return predict_per_model(self._matrix(prompts, context, fit=False), self.classifiers_)


class Classifier(Protocol):
    """A scikit-learn style binary classifier."""

    def fit(self, x: Any, y: npt.NDArray[np.int64]) -> object: ...

    def predict_proba(self, x: Any) -> npt.NDArray[np.float64]: ...


def fit_per_model(
    x: Any, scores: npt.NDArray[np.float64], make: Callable[[], Classifier]
) -> list[Classifier | float]:
    """One classifier per column of ``scores`` (prompt × model) on the rows of ``x``; a model
    that always (or never) succeeds on them gets its constant rate instead."""
    classifiers: list[Classifier | float] = []
    for column in scores.T:
        labels = (column >= SUCCESS_AT).astype(np.int64)
        if labels.min() == labels.max():
            classifiers.append(float(labels[0]))
        else:
            classifier = make()
            classifier.fit(x, labels)
            classifiers.append(classifier)
    return classifiers


def predict_per_model(x: Any, classifiers: list[Classifier | float]) -> npt.NDArray[np.float64]:
    """P(success) of every (row of ``x``, model) from :func:`fit_per_model`'s classifiers."""
    columns = [
        np.full(x.shape[0], c) if isinstance(c, float) else c.predict_proba(x)[:, 1]
        for c in classifiers
    ]
    return np.column_stack(columns).astype(np.float64)


def choose_by_value(success: FloatArray, costs: FloatArray, lam: float) -> IntArray:
    """Per prompt, the model with the highest predicted reward ``P(success) − λ·cost``."""
    choices: IntArray = np.argmax(success - lam * costs, axis=1).astype(np.int64)
    return choices
