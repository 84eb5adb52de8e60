"""TabularEncoder: serving rows equal training rows, unknown categories are missing, codes decode
back to categories, the spec hash follows the vocabularies, pickling keeps the layout."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from learners.catalog import Catalog
from learners.features import ContextRecord
from learners.history import EMPTY, HistoryFeatures, RateSummary
from learners.tabular import ActionAttributes, TabularEncoder, TrainingExample
from router.settings import load_settings


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_settings("configs/default.toml", {}).catalog


def record(
    *,
    task_type: str = "backend",
    language: str = "python",
    framework: str | None = "fastapi",
    agent: str | None = "implementation",
    rag_examples: int | None = 3,
) -> ContextRecord:
    return ContextRecord(
        task_type=task_type, language=language, framework=framework, agent=agent,
        objective="balanced", description_words=42, requirements=3, technical_terms=2,
        complexity=5.5, rag_examples=rag_examples,
        rag_similarity=None if rag_examples is None else 0.7,
        rag_quality=None if rag_examples is None else 8.0, hour=14, weekday=2,
    )


def history(catalog: Catalog) -> HistoryFeatures:
    # Some models and templates have history, the others are absent from the dicts.
    models = {m.name: RateSummary(success=0.1 * (i + 1), quality=5.0 + i, n=10 * (i + 1))
              for i, m in enumerate(catalog.models[::2])}
    templates = {catalog.templates[0].name: RateSummary(success=0.5, quality=None, n=4)}
    return HistoryFeatures(
        similar=RateSummary(success=0.6, quality=7.5, n=12), project=EMPTY,
        agent=RateSummary(success=0.25, quality=4.0, n=8), models=models, templates=templates,
        project_age_days=3.25,
    )


def examples(catalog: Catalog) -> list[TrainingExample]:
    """Enough examples that backend/frontend, python/typescript, fastapi and implementation
    enter the vocabularies; 'cobol' appears once (below the minimum count)."""
    out = []
    for i, action in enumerate(catalog.actions):
        context = record(task_type=("backend", "frontend")[i % 2],
                         language=("python", "typescript")[i % 2],
                         framework="cobol" if i == 0 else "fastapi")
        out.append(TrainingExample(context=context, history=history(catalog),
                                   action=ActionAttributes.of(action)))
    return out


@pytest.fixture(scope="module")
def encoder(catalog: Catalog) -> TabularEncoder:
    return TabularEncoder.fit(examples(catalog), catalog)


def column(encoder: TabularEncoder, name: str) -> int:
    return encoder.columns.index(name)


def test_serving_rows_equal_training_rows_for_every_action(
    encoder: TabularEncoder, catalog: Catalog
) -> None:
    context, known = record(), history(catalog)
    indices = list(range(len(catalog)))
    served = encoder.matrix(context, known, catalog, indices)
    assert served.shape == (len(catalog), len(encoder.columns))
    for row, index in enumerate(indices):
        trained = encoder.example_row(TrainingExample(
            context=context, history=known, action=ActionAttributes.of(catalog.actions[index])))
        np.testing.assert_array_equal(served[row], trained)


def test_serving_rows_follow_the_requested_indices(
    encoder: TabularEncoder, catalog: Catalog
) -> None:
    context, known = record(rag_examples=None), history(catalog)
    indices = [len(catalog) - 1, 0, 5, 5]
    served = encoder.matrix(context, known, catalog, indices)
    full = encoder.matrix(context, known, catalog, list(range(len(catalog))))
    np.testing.assert_array_equal(served, full[indices])
    assert encoder.matrix(context, known, catalog, []).shape == (0, len(encoder.columns))


def test_rows_carry_the_history_of_their_model_and_template(
    encoder: TabularEncoder, catalog: Catalog
) -> None:
    known = history(catalog)
    action = catalog.actions[0]
    row = encoder.matrix(record(), known, catalog, [0])[0]
    model = known.models[action.model.name]
    assert row[column(encoder, "model_success")] == model.success
    assert row[column(encoder, "model_quality")] == model.quality
    assert row[column(encoder, "model_n")] == model.n
    assert row[column(encoder, "similar_success")] == 0.6
    assert row[column(encoder, "project_age_days")] == 3.25
    assert math.isnan(row[column(encoder, "project_success")])
    assert row[column(encoder, "project_n")] == 0.0
    absent = next(a for a in catalog.actions if a.model.name not in known.models)
    row = encoder.matrix(record(), known, catalog, [absent.index])[0]
    assert math.isnan(row[column(encoder, "model_success")])
    assert row[column(encoder, "model_n")] == 0.0


def test_unknown_and_rare_categories_become_missing(
    encoder: TabularEncoder, catalog: Catalog
) -> None:
    assert "cobol" not in encoder.vocabularies["framework"]  # seen once: below the minimum
    context = record(task_type="embedded", language="cobol", framework="cobol", agent=None)
    row = encoder.example_row(TrainingExample(
        context=context, history=history(catalog),
        action=ActionAttributes(model="imported-model", template="imported", temperature=0.3)))
    for name in ("task_type", "language", "framework", "agent", "model", "template"):
        assert math.isnan(row[column(encoder, name)]), name
    # Unknown action attributes are missing too; known values are not.
    assert math.isnan(row[column(encoder, "log_input_price")])
    assert row[column(encoder, "temperature")] == 0.3
    known = encoder.matrix(record(), history(catalog), catalog, [0])[0]
    for name in ("task_type", "language", "framework", "agent", "model", "template"):
        assert not math.isnan(known[column(encoder, name)]), name


def test_category_decodes_codes_back_to_values(
    encoder: TabularEncoder, catalog: Catalog
) -> None:
    action = catalog.actions[-1]
    row = encoder.matrix(record(), history(catalog), catalog, [action.index])[0]
    assert encoder.category("model", row[column(encoder, "model")]) == action.model.name
    assert encoder.category("template", row[column(encoder, "template")]) == action.template.name
    assert encoder.category("task_type", row[column(encoder, "task_type")]) == "backend"
    assert encoder.category("framework", row[column(encoder, "framework")]) == "fastapi"
    assert encoder.category("framework", math.nan) == "other"
    assert encoder.category("framework", 999.0) == "other"
    assert encoder.category("temperature", 0.2) is None  # numeric column


def test_fit_includes_catalog_names_and_drops_categories_seen_too_rarely(
    catalog: Catalog,
) -> None:
    fitted = TabularEncoder.fit(examples(catalog)[:4], catalog)
    assert fitted.vocabularies["model"] == tuple(sorted(m.name for m in catalog.models))
    assert fitted.vocabularies["template"] == tuple(sorted(t.name for t in catalog.templates))
    assert fitted.vocabularies["task_type"] == ()  # two of each: below the minimum count
    assert fitted.categorical == [name in {"task_type", "language", "framework", "agent",
                                           "objective", "model", "template"}
                                  for name in fitted.columns]


def test_spec_hash_changes_when_vocabularies_change(encoder: TabularEncoder) -> None:
    same = TabularEncoder(vocabularies=dict(encoder.vocabularies))
    assert same.spec_hash == encoder.spec_hash
    grown = dict(encoder.vocabularies)
    grown["language"] = (*grown["language"], "zig")
    assert TabularEncoder(vocabularies=grown).spec_hash != encoder.spec_hash
    reordered = dict(encoder.vocabularies)
    reordered["model"] = tuple(reversed(reordered["model"]))
    assert TabularEncoder(vocabularies=reordered).spec_hash != encoder.spec_hash


def test_pickle_round_trip_keeps_rows_and_spec(
    encoder: TabularEncoder, catalog: Catalog
) -> None:
    context, known = record(), history(catalog)
    indices = list(range(len(catalog)))
    before = encoder.matrix(context, known, catalog, indices)  # fills the static cache
    copy = pickle.loads(pickle.dumps(encoder))
    assert copy.spec_hash == encoder.spec_hash
    assert copy.vocabularies == encoder.vocabularies
    np.testing.assert_array_equal(copy.matrix(context, known, catalog, indices), before)
    sample = examples(catalog)[:5]
    np.testing.assert_array_equal(copy.training_matrix(sample), encoder.training_matrix(sample))
