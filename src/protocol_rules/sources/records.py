"""The door in for patient records as `evaluate` takes them: dicts, or JSON Lines files.

Each record is read by the interpreter's own `PatientReader`, so a malformed record gets exactly
the diagnostics `evaluate` would raise, and a valid one exactly its normalised values; the
values then go into columns (`Population`). A record's ``"id"`` is the patient's identifier;
a record without one is identified by its position (1, 2, …).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..check.types import SeriesT
from ..diagnostics import Diagnostic, error
from ..evaluate_time import past_problems
from ..facts import UNKNOWN
from .population import (
    AS_OF,
    AT,
    ID,
    ROW,
    SEQ,
    VALUE,
    Population,
    column_value,
    dtype,
    is_collection,
)

ID_KEY = "id"


def from_records(
    records: Iterable[Any],
    program: Any,
    as_of: float | None,
    *,
    ignore_unknown: bool = False,
    keep: bool = True,
) -> Population:
    """A `Population` from patient records; `as_of` (seconds) overrides each record's own."""
    import polars as pl

    facts = program.checked.facts
    scalars = [f for f in facts if not is_collection(f)]
    collections = [f for f in facts if is_collection(f)]
    columns: dict[str, list[Any]] = {f.name: [] for f in facts}
    observations: dict[str, tuple[list[int], list[Any], list[Any]]] = {
        f.name: ([], [], []) for f in collections
    }
    ids: list[Any] = []
    as_ofs: list[Any] = []
    errors: dict[int, tuple[Diagnostic, ...]] = {}
    kept: list[Any] = []
    for row, record in enumerate(records):
        if keep:
            kept.append(record)
        pid, values, moment, problems = _read(program, record, row, as_of, ignore_unknown)
        ids.append(pid)
        as_ofs.append(moment)
        if problems:
            errors[row] = tuple(problems)
        for fact in scalars:
            value = values[fact.index] if values else UNKNOWN
            columns[fact.name].append(column_value(value))
        for fact in collections:
            value = values[fact.index] if values else UNKNOWN
            columns[fact.name].append(None if value is UNKNOWN else True)
            if value is UNKNOWN:
                continue
            rows, ats, vals = observations[fact.name]
            if isinstance(fact.type, SeriesT):
                times, items = value
                rows.extend([row] * len(items))
                ats.extend(times)
                vals.extend(items)
            else:
                items = sorted(value, key=str)
                rows.extend([row] * len(items))
                ats.extend([None] * len(items))
                vals.extend(items)
    patients = pl.DataFrame(
        [
            pl.Series(ROW, range(len(ids)), dtype=pl.UInt32),
            _ids(ids),
            pl.Series(AS_OF, as_ofs, dtype=pl.Float64),
            *(pl.Series(f.name, columns[f.name], dtype=dtype(f.type)) for f in scalars),
            *(pl.Series(f.name, columns[f.name], dtype=pl.Boolean) for f in collections),
        ]
    )
    frames = {
        f.name: pl.DataFrame(
            [
                pl.Series(ROW, observations[f.name][0], dtype=pl.UInt32),
                pl.Series(AT, observations[f.name][1], dtype=pl.Float64),
                pl.Series(VALUE, observations[f.name][2], dtype=dtype(f.type)),
                pl.Series(SEQ, range(len(observations[f.name][0])), dtype=pl.UInt32),
            ]
        )
        for f in collections
    }
    source = kept if keep else None
    return Population(patients, frames, errors, lambda row: _as_record(source, row), as_of)


def _read(
    program: Any, record: Any, row: int, as_of: float | None, ignore_unknown: bool
) -> tuple[Any, list[Any] | None, Any, list[Diagnostic]]:
    """(patient id, normalised values or None, as_of seconds, problems) of one record."""
    pid: Any = row + 1
    if isinstance(record, _BadLine):
        return pid, None, None, [bad_line_diagnostic(record)]
    if isinstance(record, Mapping) and ID_KEY in record:
        pid = record[ID_KEY]
        record = {k: v for k, v in record.items() if k != ID_KEY}
    values, raw_as_of, problems = program.reader.read(record, ignore_unknown)
    if problems and problems[0].code == "PR401":
        return pid, None, None, problems
    if as_of is not None:
        moment: Any = as_of
    else:
        moment = program._as_of(None, raw_as_of, problems)
    if program.past_facts and not problems:  # `past` dates after as_of, as `evaluate` refuses
        problems += past_problems(program.past_facts, values, moment)
    return pid, values, (None if moment is UNKNOWN else moment), problems


def _ids(ids: list[Any]) -> Any:
    import polars as pl

    if all(type(i) is int for i in ids):
        return pl.Series(ID, ids, dtype=pl.Int64)
    return pl.Series(ID, [None if i is None else str(i) for i in ids], dtype=pl.String)


def _as_record(source: list[Any] | None, row: int) -> dict[str, Any]:
    if source is None:
        raise LookupError("the records were not kept")
    record = source[row]
    if isinstance(record, Mapping):
        return {k: v for k, v in record.items() if k != ID_KEY}
    return record  # type: ignore[no-any-return]


def read_jsonl(path: str) -> Iterable[Any]:
    """The records of a JSON Lines file, one a line (blank lines skipped).

    A line that is not JSON becomes a non-object, which the reader reports as PR401 for that
    patient: one bad line does not stop a screen.
    """
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                yield _BadLine(number, exc.msg)


class _BadLine:
    """A line of a JSON Lines file that is not JSON."""

    def __init__(self, number: int, message: str) -> None:
        self.number, self.message = number, message

    def __repr__(self) -> str:
        return f"line {self.number}: {self.message}"


def bad_line_diagnostic(line: _BadLine) -> Diagnostic:
    return error(
        "PR401",
        f"line {line.number} is not valid JSON: {line.message}",
        None,
        path=f"line {line.number}",
        help='a patient is a JSON object such as {"id": "P1", "age": 54}',
    )
