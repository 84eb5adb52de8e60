"""Typed records out of JSON columns that hold floats which may be NaN or infinite.

The engine writes JSON with msgspec, which stores a non-finite float as ``null`` (JSON has no
NaN). Reading such a document back into a record with a ``float`` field, :func:`convert_stored`
reads that ``null`` as NaN: the value was not a number when it was written. A ``null`` where the
record allows ``None`` stays ``None``.
"""

from __future__ import annotations

import math
from typing import TypeVar

import msgspec
import msgspec.inspect as inspect

T = TypeVar("T")


def convert_stored(document: object, record: type[T]) -> T:
    """``document`` (a decoded JSON column, or a dict of columns) as ``record``, with ``null``
    read as NaN wherever ``record`` has a plain ``float``."""
    expected = _TYPES.get(record)
    if expected is None:
        expected = _TYPES[record] = inspect.type_info(record)  # 0.3 ms: once per record type
    return msgspec.convert(_nan_for_null(document, expected), record)


_TYPES: dict[type[object], inspect.Type] = {}


def _nan_for_null(value: object, expected: inspect.Type) -> object:
    if value is None:
        return math.nan if isinstance(expected, inspect.FloatType) else None
    if isinstance(expected, inspect.UnionType):
        present = [t for t in expected.types if not isinstance(t, inspect.NoneType)]
        return _nan_for_null(value, present[0]) if len(present) == 1 else value
    if isinstance(expected, inspect.StructType) and isinstance(value, dict):
        fields = {field.encode_name: field.type for field in expected.fields}
        return {key: _nan_for_null(item, fields[key]) if key in fields else item
                for key, item in value.items()}
    if isinstance(expected, inspect.DictType) and isinstance(value, dict):
        return {key: _nan_for_null(item, expected.value_type) for key, item in value.items()}
    if isinstance(expected, inspect.TupleType) and isinstance(value, list | tuple):
        if len(value) != len(expected.item_types):
            return value  # msgspec.convert reports the wrong length
        return [_nan_for_null(item, item_type)
                for item, item_type in zip(value, expected.item_types, strict=True)]
    if isinstance(expected, inspect.ListType | inspect.VarTupleType) and isinstance(
            value, list | tuple):
        return [_nan_for_null(item, expected.item_type) for item in value]
    return value
