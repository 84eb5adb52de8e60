"""History files and their replay into training histories.

The replay must not leak: a row's history features hold only outcomes known strictly before its
decision. File round trips keep every row; bad rows are named by row number and field.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from learners.catalog import Catalog
from learners.history import HistoryFeatures, HistoryQuery, HistoryStats, OutcomeFacts
from learners.reward import Verdict
from offline.dataset import history_from_rows
from offline.history_file import HistoryFileError, HistoryRow, read_history, write_history
from offline.synthetic import generate_history
from offline.world import World

T0 = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)


def delayed(rows: list[HistoryRow]) -> list[HistoryRow]:
    """Every fifth row's feedback arrives 20 minutes after its decision (several later
    decisions happen in between); every seventh row's feedback carries no offset."""
    out = []
    for i, row in enumerate(rows):
        if i % 5 == 0:
            row = msgspec.structs.replace(
                row, feedback_timestamp=row.decided_at() + timedelta(minutes=20))
        elif i % 7 == 0:
            naive = (row.decided_at() + timedelta(minutes=7)).replace(tzinfo=None)
            row = msgspec.structs.replace(row, feedback_timestamp=naive)
        out.append(row)
    return out


@pytest.fixture(scope="module")
def rows(catalog: Catalog) -> list[HistoryRow]:
    generated = generate_history(World(catalog=catalog, seed=11), 400, seed=12)
    # Replay must sort by decision time whatever the file order.
    return list(reversed(delayed(generated)))


def brute_force_features(rows: list[HistoryRow], row: HistoryRow, models: tuple[str, ...],
                         templates: tuple[str, ...]) -> HistoryFeatures:
    """A fresh fold of only the outcomes known strictly before ``row``'s decision, in the
    order they became known (ties in decision order)."""
    at = row.decided_at()
    by_decision = sorted(rows, key=lambda r: r.decided_at())
    known = sorted(((r.known_at(), k, r) for k, r in enumerate(by_decision)
                    if r.decided_at() < at and r.known_at() < at), key=lambda t: t[:2])
    stats = HistoryStats()
    for r in by_decision:
        if r.decided_at() < at:
            stats.observe_decision(r.tenant, r.project_id, r.decided_at())
    for _, _, r in known:
        model, _, template = r.action_parts()
        stats.learn_one(OutcomeFacts(
            tenant_id=r.tenant, decided_at=r.decided_at(), task_type=r.task_type.lower(),
            language=r.language.lower(), project_id=r.project_id,
            agent=r.agent.lower() if r.agent else None, model=model, template=template,
            approved=r.outcome is Verdict.APPROVED, quality=r.quality))
    return stats.predict_one(HistoryQuery(
        tenant_id=row.tenant, task_type=row.task_type, language=row.language,
        project_id=row.project_id, agent=row.agent, models=models, templates=templates, at=at))


def test_history_features_hold_only_outcomes_known_before_each_decision(
    rows: list[HistoryRow], catalog: Catalog
) -> None:
    history = history_from_rows(rows, [catalog])
    ordered = sorted(rows, key=lambda r: r.decided_at())
    assert history.times == [r.decided_at() for r in ordered]
    models = tuple(sorted({r.action_parts()[0] for r in rows}))
    templates = tuple(sorted({r.action_parts()[2] for r in rows}))
    pending_seen = 0
    for row, example in zip(ordered, history.examples, strict=True):
        assert example.history == brute_force_features(rows, row, models, templates)
        # The same counts by hand: outcomes per model known before this decision.
        at = row.decided_at()
        earlier = [r for r in ordered if r.decided_at() < at]
        known = [r for r in earlier if r.known_at() < at]
        pending_seen += len(earlier) - len(known)
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in known:
            counts[r.action_parts()[0]][0] += 1
            counts[r.action_parts()[0]][1] += r.outcome is Verdict.APPROVED
        for model in models:
            summary = example.history.models[model]
            n, approved = counts[model]
            assert summary.n == n
            assert summary.success == (approved / n if n else None)
        similar = [r for r in known if (r.task_type, r.language) == (row.task_type, row.language)]
        assert example.history.similar.n == len(similar)
    # The delayed feedback really kept outcomes out of later decisions' features.
    assert pending_seen > len(ordered)


def test_an_outcome_known_exactly_at_a_decision_is_not_yet_history(catalog: Catalog) -> None:
    action = catalog.actions[0]

    def row(at: datetime, outcome: Verdict, known: datetime | None = None) -> HistoryRow:
        return HistoryRow(timestamp=at, task_type="backend", language="python",
                          description="Add an endpoint", outcome=outcome, action=action.id,
                          project_id="shop", quality=7.0, generation_time_s=30.0,
                          feedback_timestamp=known)

    first = row(T0, Verdict.MODIFIED, known=T0 + timedelta(hours=1))
    tied = row(T0 + timedelta(hours=1), Verdict.APPROVED)
    after = row(T0 + timedelta(hours=1, seconds=1), Verdict.APPROVED)
    history = history_from_rows([after, tied, first], [catalog])
    n_known = [e.history.models[action.model.name].n for e in history.examples]
    assert n_known == [0, 0, 1]
    # A modified outcome is not a success; its quality still counts.
    summary = history.examples[2].history.models[action.model.name]
    assert (summary.success, summary.quality) == (0.0, 7.0)
    assert [e.history.project_age_days for e in history.examples] == [
        0.0, pytest.approx(1 / 24, abs=1e-4), pytest.approx((3600 + 1) / 86_400, abs=1e-4)]
    assert history.examples[0].action.input_price_per_mtok == action.model.input_price_per_mtok
    assert [lab.verdict for lab in history.labels] == [Verdict.MODIFIED, Verdict.APPROVED,
                                                        Verdict.APPROVED]


def test_without_sharing_a_tenant_history_counts_only_its_own_outcomes(
        catalog: Catalog) -> None:
    action = catalog.actions[0]
    rows = [HistoryRow(timestamp=T0 + timedelta(minutes=i), task_type="backend",
                       language="python", description="Add an endpoint", tenant=tenant,
                       outcome=Verdict.APPROVED, action=action.id, generation_time_s=1.0)
            for i, tenant in enumerate(["a", "a", "b", "a"])]
    sealed = history_from_rows(rows, [catalog], shared=False)
    assert [e.history.models[action.model.name].n for e in sealed.examples] == [0, 1, 0, 2]
    assert [e.history.similar.n for e in sealed.examples] == [0, 1, 0, 2]
    shared = history_from_rows(rows, [catalog])
    assert [e.history.models[action.model.name].n for e in shared.examples] == [0, 1, 2, 3]
    # Summaries name the given catalog's models and templates, as the service logs them.
    named = history_from_rows(rows, [catalog], summarised=catalog).examples[0].history
    assert tuple(named.models) == catalog.model_order
    assert tuple(named.templates) == catalog.template_order


def test_default_feedback_time_is_decision_plus_generation_time() -> None:
    row = HistoryRow(timestamp=T0.replace(tzinfo=None), task_type="x", language="y",
                     description="z", outcome=Verdict.APPROVED, action="m|0.2|t",
                     generation_time_s=42.0)
    assert row.decided_at() == T0  # naive timestamps are UTC
    assert row.known_at() == T0 + timedelta(seconds=42)
    early = msgspec.structs.replace(row, feedback_timestamp=T0 - timedelta(hours=1))
    assert early.known_at() == T0  # never before the decision


def sample_rows(rows: list[HistoryRow]) -> list[HistoryRow]:
    extra = HistoryRow(
        timestamp=T0, task_type="data", language="sql", description='Report, with "quotes"\n'
        "and a second line", outcome=Verdict.REJECTED, model="m", temperature=0.7, template="t",
        requirements=["a; b", "c, d", "[not json]"], framework=None, quality=0.0,
        rag_examples=0, feedback_timestamp=T0 + timedelta(minutes=5))
    logged = msgspec.structs.replace(
        extra, features={"files": 3.0, "urgent": True, "team": "db, core"},
        allowed=["m|0.7|t", "m|0.2|t"], probabilities=[0.25, 0.75], propensity=0.25)
    return [*rows[:60], extra, msgspec.structs.replace(extra, requirements=[]), logged]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_history_files_round_trip(rows: list[HistoryRow], tmp_path: Path, suffix: str) -> None:
    original = sample_rows(rows)
    path = tmp_path / f"history{suffix}"
    write_history(path, original)
    read = [row for chunk in read_history(path) for row in chunk]
    assert read == original
    assert any(r.requirements for r in read)


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


GOOD: dict[str, object] = {"timestamp": "2026-02-02T12:00:00Z", "task_type": "backend",
                           "language": "python", "description": "Add an endpoint",
                           "outcome": "approved", "action": "m|0.2|t"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quality": 11}, "quality"),
        ({"outcome": None}, "outcome"),
        ({"action": "a|b"}, "action"),
        ({"action": "a|warm|b"}, "action"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"surprise": 1}, "surprise"),
        ({"allowed": ["x|0.2|t"]}, "allowed"),
        ({"allowed": ["m|0.2|t"], "probabilities": [0.5, 0.5]}, "probabilities"),
        ({"probabilities": [1.0]}, "probabilities"),
        ({"features": {"a": [1]}}, "features"),
    ],
)
def test_a_bad_row_is_named_by_row_number_and_field(
    tmp_path: Path, change: dict[str, object], field: str
) -> None:
    bad = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    path = write_jsonl(tmp_path / "history.jsonl", [GOOD, GOOD, bad])
    with pytest.raises(HistoryFileError) as raised:
        list(read_history(path))
    message = str(raised.value)
    assert "row 3" in message
    assert field in message


def test_bad_csv_rows_count_the_header_line(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text("timestamp,task_type,language,description,outcome,action,quality\n"
                    "2026-02-02T12:00:00Z,backend,python,Add it,approved,m|0.2|t,7\n"
                    "2026-02-02T12:01:00Z,backend,python,Add it,approved,m|0.2|t,11\n",
                    encoding="utf-8")
    with pytest.raises(HistoryFileError, match=r"row 3.*quality"):
        list(read_history(path))


def test_unknown_columns_are_rejected_in_every_format(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame([{**GOOD, "color": "blue"}])
    for suffix in (".csv", ".parquet"):
        path = tmp_path / f"history{suffix}"
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        with pytest.raises(HistoryFileError, match="color"):
            list(read_history(path))


def test_unknown_formats_and_missing_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(HistoryFileError, match="unknown format"):
        list(read_history(tmp_path / "history.xlsx"))
    with pytest.raises(HistoryFileError, match="no such file"):
        list(read_history(tmp_path / "missing.jsonl"))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(GOOD) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(HistoryFileError, match="row 2: not a JSON object"):
        list(read_history(broken))
