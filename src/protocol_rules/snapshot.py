"""What a result keeps of the patient record: a copy of each fact's value as given, as JSON data.

A result must not change when the caller edits or reuses the record after `evaluate`, and it
must always render: so `Program.run` keeps `snapshot(value)` of each declared fact — Mappings
as dicts, tuples as lists, `date`/`datetime` objects as ISO strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

_ATOMS = frozenset((str, int, float, bool, type(None)))


def snapshot(value: Any) -> Any:
    """A copy of a fact's value as given, as JSON-ready data, so a result never changes after
    it was made and always renders: Mappings become dicts, tuples lists, dates ISO strings.

    The common shapes (a number, a quantity dict, a list of observation dicts) are copied
    without a recursive call; anything else goes through `_plain`.
    """
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is list:  # a series or a set: copy its observations too
        return [o if type(o) in _ATOMS else _copy_object(o) for o in value]
    return _copy_object(value)


def _copy_object(value: Any) -> Any:
    if type(value) is dict:
        copy = dict(value)
        for item in copy.values():
            if type(item) not in _ATOMS:
                return _plain(value)
        return copy
    return _plain(value)


def _plain(value: Any, depth: int = 0) -> Any:
    """`value` as JSON data. Validated facts are a few levels deep; deeper parts (only in
    keys `evaluate` does not read) are cut short rather than followed."""
    if type(value) in _ATOMS:
        return value
    if depth > 8:
        return "…"
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    for plain in (bool, int, float, str):  # subclasses, e.g. numpy's float64
        if isinstance(value, plain):
            return plain(value)
    return repr(value)
