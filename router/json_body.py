"""Request bodies as the API accepts them: one JSON document, sent as JSON, each key once.

Litestar decodes a body with msgspec whatever its content type, lets the last of two equal keys
win, and lets msgspec's RecursionError on a deeply nested body escape as a 500. The service's
request class refuses all three with a problem naming the field (docs/api.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from litestar import Request
from litestar.datastructures import State

from router.errors import MalformedBodyError, UnsupportedMediaTypeError


def is_json_media_type(media_type: str) -> bool:
    """``application/json`` and its structured-syntax relatives (``application/*+json``)."""
    media_type = media_type.strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


# A closing quote followed by a colon: how every key of a JSON text ends. Inside a string a quote
# is escaped (``\"``), so the text holds at least as many matches as keys, and more only when a
# string itself holds an escaped quote followed by a colon.
_KEY_END = re.compile(rb'"[ \t\n\r]*:')


class _DuplicateKeyError(Exception):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _DuplicateKeyError
    return members


class _Members(dict[str, Any]):
    """An object of a body known to repeat a key; ``duplicate`` is its first repeated key."""

    duplicate: str | None = None


def _collect(pairs: list[tuple[str, Any]]) -> _Members:
    members = _Members()
    for key, value in pairs:
        if key in members and members.duplicate is None:
            members.duplicate = key
        members[key] = value
    return members


def _duplicate_path(value: Any, path: str) -> str | None:
    """The JSON path (``task.type``, ``a[2].b``) of the first repeated key under ``value``."""
    if isinstance(value, _Members):
        if value.duplicate is not None:
            return f"{path}.{value.duplicate}" if path else value.duplicate
        for key, item in value.items():
            found = _duplicate_path(item, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _duplicate_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def count_keys(value: Any) -> int:
    """How many object keys ``value`` (decoded JSON) holds, at every depth."""
    if isinstance(value, dict):
        items: Iterable[Any] = value.values()
        count = len(value)
    elif isinstance(value, list):
        items, count = value, 0
    else:
        return 0
    for item in items:
        if isinstance(item, (dict, list)):
            count += count_keys(item)
    return count


def find_duplicate_key(body: bytes) -> str | None:
    """The path of the first key ``body`` (valid JSON) repeats in one object, if any."""
    try:
        json.loads(body, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKeyError:
        return _duplicate_path(json.loads(body, object_pairs_hook=_collect), "") or "(body)"
    return None


def repeated_key(body: bytes, value: Any) -> str | None:
    """The path of the first key ``body`` repeats in one object, if any; ``value`` is ``body``
    decoded. When the value holds as many keys as the text holds key ends, no key was given
    twice; otherwise (a repeated key, or a string holding an escaped quote and a colon) the text
    is parsed again to find it. The common body costs one count."""
    if len(_KEY_END.findall(body)) == count_keys(value):
        return None
    return find_duplicate_key(body)


class JSONBodyRequest(Request[Any, Any, State]):
    """The service's request class: :meth:`json` refuses what the API does not accept."""

    async def json(self) -> Any:
        media_type, _ = self.content_type
        if not is_json_media_type(media_type):
            sent = f"not {media_type!r}" if media_type else "the request has no Content-Type"
            raise UnsupportedMediaTypeError(
                f"send the body as application/json ({sent})", field="content-type"
            )
        try:
            value = await super().json()
            body = await self.body()
            duplicate = repeated_key(body, value)
        except RecursionError:
            raise MalformedBodyError("the JSON body is nested too deeply",
                                     field="(body)") from None
        if duplicate is not None:
            raise MalformedBodyError(f"{duplicate}: the key is given twice", field=duplicate)
        return value
