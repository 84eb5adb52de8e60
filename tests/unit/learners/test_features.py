from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from learners.context import CallerContext, DecisionContext, Rag, Task
from learners.features import (
    _MODAL,
    _REQUIREMENT_LINE,
    _STOPWORDS,
    _TOKEN,
    _UNSAFE,
    MAX_DESCRIPTION_TOKENS,
    count_modal,
    count_requirements,
    description_tokens,
    estimate_complexity,
    extract_features,
    sanitize,
)


def test_complexity_grows_with_size_requirements_and_technical_terms() -> None:
    small = Task(type="x", language="python", description="add two numbers")
    big = Task(
        type="backend",
        language="python",
        description=(
            "Build a distributed job scheduler with a postgres database, retry and idempotent "
            "handlers, oauth authentication, caching and websocket streaming.\n"
            "- must survive restarts\n- should shard queues\n1. expose a REST api\n"
        )
        * 3,
        requirements=["p99 under 50ms", "audit log"],
    )
    assert estimate_complexity(small) < 3.0
    assert estimate_complexity(big) > 7.0
    assert 0.0 <= estimate_complexity(big) <= 10.0


def test_requirements_count_bullets_numbers_and_modals() -> None:
    task = Task(
        type="x",
        language="go",
        description="Intro\n- one\n* two\n1. three\nIt must log and should retry.",
        requirements=["a", "b"],
    )
    assert count_requirements(task) == 2 + 3 + 2


def test_tokens_are_distinct_lowercase_without_stopwords() -> None:
    assert description_tokens("The API and the api, using Redis") == ["api", "redis"]


def _tokens_of_every_match(text: str, after: list[str]) -> list[str]:
    """description_tokens as first written: every match in turn, repeats included."""
    seen: dict[str, None] = dict.fromkeys(after)
    if len(seen) >= MAX_DESCRIPTION_TOKENS:
        return list(seen)
    for token in _TOKEN.findall(text.lower()):
        token = token.rstrip(".-")
        if len(token) > 1 and token not in _STOPWORDS and token not in seen:
            seen[token] = None
            if len(seen) >= MAX_DESCRIPTION_TOKENS:
                break
    return list(seen)


_WORDS = st.sampled_from(["api", "api.", "API-", "redis", "the", "x", "a.b", "c++", "c#", "db..",
                          "db", "k8s", "-", ".", "Ünïcode"]
                         + [f"w{i}" for i in range(70)])


@given(st.lists(_WORDS, max_size=150), st.lists(_WORDS.map(str.lower), max_size=70))
def test_tokens_equal_going_through_every_match(words: list[str], after: list[str]) -> None:
    text = " ".join(words)
    assert description_tokens(text, after=after) == _tokens_of_every_match(text, after)


def test_sanitize_removes_vw_separators_and_control_characters() -> None:
    assert sanitize("a b:c|d") == "a_b_c_d"
    assert sanitize("x\x01\x12y") == "x_y"
    assert sanitize("Déjà-vu") == "déjà-vu"


def test_free_numbers_are_squashed() -> None:
    task = Task(type="x", language="go", description="d")
    context = DecisionContext(task=task, features={"big": 1e9, "tiny": 1e-200, "neg": -3.0})
    free = extract_features(context).namespaces["free"]
    assert free == {"big": pytest.approx(20.723266), "neg": pytest.approx(-1.386294)}


def test_features_do_not_depend_on_dict_order_or_mutate_input() -> None:
    task = Task(type="Backend", language="Python", description="Build an API", framework="FastAPI")
    caller = CallerContext(project_id="p 1", agent="impl", rag=Rag(examples=3, avg_similarity=0.7))
    first = DecisionContext(task=task, caller=caller, features={"a": 1.0, "b": "x", "c": True})
    second = DecisionContext(task=task, caller=caller, features={"c": True, "b": "x", "a": 1.0})
    features = extract_features(first)
    assert features == extract_features(second)
    assert first.features == {"a": 1.0, "b": "x", "c": True}
    ns = features.namespaces
    assert ns["task"]["type=backend"] == 1.0
    assert ns["task"]["framework=fastapi"] == 1.0
    assert ns["caller"]["project=p_1"] == 1.0
    assert ns["caller"]["rag_similarity"] == 0.7
    assert ns["free"] == {"a": 0.693147, "b=x": 1.0, "c": 1.0}
    assert "api" in ns["description"]


def test_describe_context_equals_the_separate_functions() -> None:
    from datetime import UTC, datetime

    from learners.features import context_record, describe_context

    context = DecisionContext(
        task=Task(type="backend", language="Python", framework="FastAPI",
                  description="- must add async caching\n1. paginate the database results",
                  requirements=["should retry with JWT auth", "p95 under 100 ms"]),
    )
    at = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    features, record = describe_context(context, at)
    assert features == extract_features(context)
    assert record == context_record(context, at)


@pytest.mark.parametrize("repeat", [1, 40])
def test_task_tokens_equal_tokenising_the_joined_text(repeat: int) -> None:
    from learners.features import MAX_DESCRIPTION_TOKENS, task_tokens

    # repeat=40 fills the token cap from the description alone (the requirements add none).
    description = " ".join(f"word{i} redis" for i in range(repeat * 2))
    task = Task(type="x", language="go", description=description,
                requirements=["Kafka consumer", "postgres migrations", "redis"])
    tokens, all_tokens = task_tokens(task)
    assert tokens == description_tokens(description)
    assert all_tokens == description_tokens(description + " " + " ".join(task.requirements))
    assert len(all_tokens) <= MAX_DESCRIPTION_TOKENS
    assert ("kafka" in all_tokens) == (repeat == 1)


_CLAUSE_PIECES = st.sampled_from(
    ["must", "MUST", "Should", "shall", "needs to", "need to", "Has to", "has  to", "required",
     "requirED", "mustard", "unshall", "MU\u017fT", "\u0130", "build", " ", "\n", ".", "-", "_"]
)


@given(st.lists(st.one_of(_CLAUSE_PIECES, st.text(max_size=8)), max_size=30),
       st.sampled_from(["", " ", "\n"]))
def test_count_modal_equals_the_case_insensitive_search(pieces: list[str], sep: str) -> None:
    text = sep.join(pieces)
    assert count_modal(text) == len(_MODAL.findall(text))


@pytest.mark.parametrize(
    "clause", ["must", "Should", "SHALL", "need to", "Needs to", "has to", "required"]
)
def test_count_modal_finds_each_clause_alone(clause: str) -> None:
    assert count_modal(f"the parser {clause} be fast") == 1


def test_count_modal_counts_clauses_in_any_case() -> None:
    assert count_modal("It MUST parse; it should log and Has to retry. Tests required.") == 4
    assert count_modal("mustard and shallow needles") == 0
    assert count_modal("MU\u017fT cache") == 1  # non-ASCII: Unicode case folding, as before


_LINE_PIECES = st.sampled_from(["- a", "* b", "\u2022 c", "1. d", "12) e", "  - f", "-g", "1.x",
                                "\n", "\r", "\x0b", "\x0c", "\u2028", "\x85", " ", "must"])


@given(st.lists(st.one_of(_LINE_PIECES, st.text(max_size=6)), max_size=20))
def test_requirement_lines_equal_the_multiline_search(pieces: list[str]) -> None:
    text = "".join(pieces)
    task = Task(type="x", language="go", description=text, requirements=["r"])
    assert count_requirements(task) == 1 + len(_REQUIREMENT_LINE.findall(text)) + count_modal(
        text)


@given(st.one_of(st.text(max_size=120), st.sampled_from(["p15", "Planning", "u6", "ABC_1",
                                                         "x" * 130, "\u00e91", "\u0661"])))
def test_sanitize_equals_the_regular_expression(token: str) -> None:
    assert sanitize(token) == (_UNSAFE.sub("_", token.strip().lower())[:96] or "_")
