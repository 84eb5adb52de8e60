"""JSON columns read into records: ``null`` is NaN where the record has a float (msgspec wrote
a non-finite float as null), and stays ``None`` where the record allows None."""

from __future__ import annotations

import math

import msgspec
import pytest

from router.storage.stored_json import convert_stored


class Inner(msgspec.Struct, frozen=True):
    value: float
    note: str | None = None


class Outer(msgspec.Struct, frozen=True):
    value: float
    optional: float | None
    pair: tuple[float, float]
    values: list[float]
    by_name: dict[str, Inner]
    maybe: Inner | None = None
    count: int = 0


def test_null_reads_as_nan_only_where_a_float_is_expected() -> None:
    document = {"value": None, "optional": None, "pair": [1.0, None], "values": [None, 2.0],
                "by_name": {"a": {"value": None, "note": None}}, "maybe": {"value": None}}
    record = convert_stored(document, Outer)
    assert math.isnan(record.value)
    assert record.optional is None
    assert record.pair[0] == 1.0
    assert math.isnan(record.pair[1])
    assert math.isnan(record.values[0])
    assert record.values[1] == 2.0
    assert math.isnan(record.by_name["a"].value)
    assert record.by_name["a"].note is None
    assert record.maybe is not None
    assert math.isnan(record.maybe.value)
    # The non-finite values encode as the same document.
    assert msgspec.to_builtins(msgspec.json.decode(msgspec.json.encode(record))) == {
        **document, "maybe": {"value": None, "note": None}, "count": 0}


def test_a_null_where_no_float_is_expected_is_still_an_error() -> None:
    document = {"value": 1.0, "optional": None, "pair": [1.0, 2.0], "values": [],
                "by_name": {}, "count": None}
    with pytest.raises(msgspec.ValidationError, match=r"\$\.count"):
        convert_stored(document, Outer)
