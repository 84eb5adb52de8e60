"""The request body's repeated-key check (router/json_body.py) against random JSON texts."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from router.json_body import repeated_key

# Keys and strings rich in the characters the check counts: quotes, colons, backslashes, spaces.
TEXT = st.text(alphabet=st.sampled_from('ab:"\\ {}[],\n'), max_size=6)
SEPARATORS = st.sampled_from([":", ": ", " :", "\n:\t"])
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def dumps(pairs: list[tuple[str, Any]], separator: str) -> bytes:
    """An object's text from its pairs in order, repeats kept (json.dumps would merge them)."""
    members = [json.dumps(k) + separator + json.dumps(v) for k, v in pairs]
    return ("{" + ", ".join(members) + "}").encode()


@given(st.dictionaries(TEXT, VALUES, max_size=5), SEPARATORS)
def test_a_body_without_repeated_keys_passes(value: dict[str, Any], separator: str) -> None:
    body = dumps(list(value.items()), separator)
    assert repeated_key(body, msgspec.json.decode(body)) is None


@given(st.lists(st.tuples(TEXT, VALUES), min_size=1, max_size=5), st.data(), SEPARATORS)
def test_a_repeated_key_is_found(pairs: list[tuple[str, Any]], data: st.DataObject,
                                 separator: str) -> None:
    key, _ = pairs[data.draw(st.integers(0, len(pairs) - 1))]
    pairs.insert(data.draw(st.integers(0, len(pairs))), (key, data.draw(VALUES)))
    body = dumps(pairs, separator)
    assert repeated_key(body, msgspec.json.decode(body)) is not None


def test_the_path_names_the_repeated_key_below_a_string_holding_a_quote_and_colon() -> None:
    body = b'{"a": "x\\": y", "b": {"c": 1, "c": 2}}'
    assert repeated_key(body, msgspec.json.decode(body)) == "b.c"
