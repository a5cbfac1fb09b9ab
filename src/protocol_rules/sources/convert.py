"""`convert`: patient records (JSON Lines) into the columnar layout, values kept as given.

No protocol is needed: a list becomes rows of the observations table (objects with ``at``,
``value`` and ``unit`` for a series, bare values for a set; ``[]`` becomes the row that says
"known and empty"), a ``{"value": …, "unit": …}`` object a value column and a ``<fact>.unit``
column, anything else a column of its own. A column whose values are of mixed JSON types is
written as text; in a column of fact values, a string that the text reading would take for a
number or a boolean (``"54"``, ``"true"``) is written as its JSON (with its quotes), so the
screen reads it as the string it is and reports it as `evaluate` would. Nothing is converted or
checked here: that is the screen's job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .layout import (
    AT_COLUMN,
    FACT,
    PATIENT_ID,
    UNIT,
    UNIT_SUFFIX,
    VALUE_COLUMN,
    Layout,
    quoted,
)
from .records import ID_KEY, _BadLine


def to_layout(records: Iterable[Any], problems: list[str] | None = None) -> Layout:
    """A `Layout` of the records' raw values; lines that are not objects go to `problems`."""
    import polars as pl

    wide: dict[str, list[Any]] = {PATIENT_ID: []}
    long: dict[str, list[Any]] = {
        PATIENT_ID: [],
        FACT: [],
        AT_COLUMN: [],
        VALUE_COLUMN: [],
        UNIT: [],
    }
    n = 0
    for position, record in enumerate(records, 1):
        if not isinstance(record, Mapping):
            if problems is not None:
                where = repr(record) if isinstance(record, _BadLine) else f"record {position}"
                problems.append(f"{where}: not a patient record (a JSON object)")
            continue
        pid = record.get(ID_KEY, position)
        wide[PATIENT_ID].append(pid)
        for key, value in record.items():
            if key == ID_KEY or value is None:
                continue
            if isinstance(value, list):
                _long_rows(long, pid, key, value)
                continue
            if isinstance(value, Mapping) and "value" in value and set(value) <= {"value", "unit"}:
                _cell(wide, key, n, value.get("value"))
                _cell(wide, key + UNIT_SUFFIX, n, value.get("unit"))
                continue
            _cell(wide, key, n, value)
        n += 1
        for column in wide.values():
            if len(column) < n:
                column.append(None)
    patients = pl.DataFrame({k: _series(k, v, _holds_facts(k)) for k, v in wide.items()})
    observations = None
    if long[PATIENT_ID]:
        observations = pl.DataFrame({k: _series(k, v, k == VALUE_COLUMN) for k, v in long.items()})
        observations = observations.with_columns(
            pl.col(PATIENT_ID).cast(patients.schema[PATIENT_ID], strict=False)
        )
    return Layout(patients, observations)


def _cell(wide: dict[str, list[Any]], key: str, row: int, value: Any) -> None:
    column = wide.get(key)
    if column is None:
        column = wide[key] = [None] * row
    elif len(column) < row:
        column.extend([None] * (row - len(column)))
    column.append(value)


def _long_rows(long: dict[str, list[Any]], pid: Any, fact: str, items: list[Any]) -> None:
    if not items:
        _append(long, pid, fact, None, None, None)
        return
    for item in items:
        if isinstance(item, Mapping) and "code" in item and "value" not in item:
            _append(long, pid, fact, None, item, None)  # a code as a FHIR Coding (codes.md)
        elif isinstance(item, Mapping):
            value, unit = item.get("value"), item.get("unit")
            if unit is None and isinstance(value, Mapping) and "code" not in value:
                value, unit = value.get("value"), value.get("unit")
            _append(long, pid, fact, item.get("at"), value, unit)
        else:
            _append(long, pid, fact, None, item, None)


def _append(long: dict[str, list[Any]], *row: Any) -> None:
    for column, value in zip((PATIENT_ID, FACT, AT_COLUMN, VALUE_COLUMN, UNIT), row, strict=True):
        long[column].append(value)


def _holds_facts(column: str) -> bool:
    """Whether a patients column holds fact values (not the id, `as_of` or units)."""
    return column not in (PATIENT_ID, "as_of") and not column.endswith(UNIT_SUFFIX)


def _series(name: str, values: list[Any], facts: bool = False) -> Any:
    """A typed column if the values share a JSON type, else their text (`facts`: strings that
    would read as another type are quoted, see `layout.quoted`)."""
    import polars as pl

    kinds = {_kind(v) for v in values if v is not None}
    if kinds == {"int"}:
        return pl.Series(name, values, dtype=pl.Int64)
    if kinds <= {"int", "float"} and kinds:
        return pl.Series(name, [None if v is None else float(v) for v in values], dtype=pl.Float64)
    if kinds == {"bool"}:
        return pl.Series(name, values, dtype=pl.Boolean)
    texts = [_text(v) for v in values]
    if facts:
        texts = [
            json.dumps(t, ensure_ascii=False) if isinstance(v, str) and quoted(v) else t
            for v, t in zip(values, texts, strict=True)
        ]
    return pl.Series(name, texts, dtype=pl.String)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2**63) <= value < 2**63 else "other"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "other"


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


__all__ = ["to_layout"]
