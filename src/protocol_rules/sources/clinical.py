"""From rows of a clinical data model to patient records, through a data map
(docs/clinical-data.md).

The OMOP and FHIR adapters (`sources.omop`, `sources.fhir`) read their data into the same two
pieces — persons, and a table of coded *events* — and `build_records` applies the data map to
them: it selects each fact's rows by source and code, converts values into the fact's unit with
the project's UCUM conversions (`units.conversion`), and combines rows as the map says (`take`).

Events (a polars DataFrame): ``person`` (text), ``source`` (an OMOP table or FHIR resource
type), ``code`` (canonical ``SYSTEM#code``), ``at`` (seconds since the epoch, UTC; null when
the row has no time), ``value`` (float), ``unit`` (UCUM text) and ``row`` (where the row comes
from, for diagnostics: ``MEASUREMENT measurement_id=12``, ``Observation/abc``). A row with
several codes (a FHIR CodeableConcept) is several events with the same ``row``.

A row that cannot give its fact a value — no time, no value, a unit that is not UCUM or does
not fit the fact — is skipped and reported (PR852-PR854) with where it came from; the person is
still screened on the rest. Facts without rows stay unknown, unless the map says a boolean's
absence means false (``absent = "false"``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import attrs

from .. import units
from ..check.types import BoolT, ChoiceT, CodeT, NumT, QtyT, SeriesT, SetT, TimeT
from ..datamap import DataMap, FactMap
from ..diagnostics import Diagnostic, warning

EVENT_COLUMNS = ("person", "source", "code", "at", "value", "unit", "row")


@attrs.frozen
class Person:
    """A person of the data: id (text), birth (seconds, UTC) and sex (`male`, `female`, …)."""

    id: str
    birth: float | None = None
    sex: str | None = None


def as_of_seconds(as_of: Any) -> float:
    """`as_of` (a datetime, a date, ISO text or None: now) as seconds since the epoch."""
    from ..facts import parse_instant

    if as_of is None:
        return datetime.now(UTC).timestamp()
    if isinstance(as_of, int | float):
        return float(as_of)
    return parse_instant(as_of, "a datetime")


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def build_records(
    persons: Iterable[Person],
    events: Any,
    data_map: DataMap,
    as_of: Any = None,
    problems: list[Diagnostic] | None = None,
    *,
    distinct_rows: bool = False,
) -> list[dict[str, Any]]:
    """One patient record per person (``"id"``, ``"as_of"`` and the mapped facts).
    `distinct_rows`: no two events of a fact share a ``row`` (OMOP), so none is dropped as a
    repeat of another (FHIR: a resource with several matching codings counts once)."""

    moment = as_of_seconds(as_of)
    problems = problems if problems is not None else []
    people = list(persons)
    records = {p.id: {"id": p.id, "as_of": iso(moment)} for p in people}
    declared = {f.name: f for f in data_map.protocol.facts}
    for fm in data_map.facts:
        fact = declared[fm.fact]
        if fm.field is not None:
            for person in people:
                value = _person_field(fm.field, fact, person, moment)
                if value is not None:
                    records[person.id][fm.fact] = value
            continue
        rows = events.filter(selects(fm))
        if not distinct_rows:
            rows = rows.unique(subset=["row"], keep="first", maintain_order=True)
        found: dict[str, list[tuple[float | None, Any]]] = {}
        for person, at, value, unit, row, code in rows.select(
            "person", "at", "value", "unit", "row", "code"
        ).iter_rows():
            item = _row_value(fm, fact, at, value, unit, row, code, problems)
            if item is not None and person in records:
                found.setdefault(person, []).append((at, item))
        for person, items in found.items():
            value = _combine(fm, fact, items, moment)
            if value is not None:
                records[person][fm.fact] = value
        if fm.absent == "false":
            for person in people:
                records[person.id].setdefault(fm.fact, False)
    return [records[p.id] for p in people]


def selects(fm: FactMap) -> Any:
    """The events of fact `fm` (a polars expression): its source, and a code of its `codes`,
    or one below a ``prefix``-system code written with ``*`` (``ICD10CM#N17*`` selects
    ``ICD10CM#N17.9``). The adapters expand other ``*`` codes into `codes` before (OMOP:
    `omop._as_concepts`, through CONCEPT_ANCESTOR)."""
    import polars as pl

    code = pl.col("code")
    chosen = code.is_in(list(fm.codes))
    for prefix in fm.prefixes():
        chosen = chosen | code.str.starts_with(prefix)
    return (pl.col("source") == fm.source) & chosen


def _person_field(field: str, fact: Any, person: Person, moment: float) -> Any:
    type_ = fact.type
    if field == "age":
        if person.birth is None:
            return None
        born = datetime.fromtimestamp(person.birth, UTC).date()
        today = datetime.fromtimestamp(moment, UTC).date()
        years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        return {"value": years, "unit": "a"} if isinstance(type_, QtyT) else years
    if field == "birth_date":
        return None if person.birth is None else _day(person.birth)
    if field == "sex":
        choices = type_.choices if isinstance(type_, ChoiceT) else ()
        return person.sex if person.sex in choices else None
    return None  # pragma: no cover - the data map checks the fields


def _day(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).date().isoformat()


def _row_value(
    fm: FactMap,
    fact: Any,
    at: float | None,
    value: float | None,
    unit: str | None,
    row: str,
    code: str,
    problems: list[Diagnostic],
) -> Any:
    """What one row gives the fact (a value in the fact's unit, a code, True), or None: the
    row is skipped and reported."""
    type_ = fact.type
    element = type_.element if isinstance(type_, SeriesT | SetT) else type_
    if at is None and not isinstance(type_, SetT):
        problems.append(_problem("PR854", f"no date or time; not used for `{fm.fact}`", row))
        return None
    if isinstance(element, CodeT):
        return code
    if isinstance(element, BoolT | TimeT):
        return True
    if value is None:
        problems.append(_problem("PR852", f"no value; not used for `{fm.fact}`", row))
        return None
    if isinstance(element, NumT):
        return value
    assert isinstance(element, QtyT)
    if not unit:
        problems.append(
            _problem("PR853", f"no UCUM unit; not used for `{fm.fact}` in '{element.unit}'", row)
        )
        return None
    try:
        convert = units.conversion(unit, element.unit, element.molar_mass)
    except units.UnitError as exc:
        problems.append(
            _problem(
                "PR853",
                f"unit '{unit}' cannot give `{fm.fact}` in '{element.unit}': {exc}",
                row,
            )
        )
        return None
    return convert(float(value))


def _combine(fm: FactMap, fact: Any, items: list[tuple[float | None, Any]], moment: float) -> Any:
    type_ = fact.type
    if isinstance(type_, SeriesT):
        unit = type_.element.unit if isinstance(type_.element, QtyT) else None
        out = []
        for at, value in sorted(items, key=lambda i: (i[0], str(i[1]))):
            obs: dict[str, Any] = {"value": value, "at": iso(at)}  # type: ignore[arg-type]
            if unit is not None:
                obs["unit"] = unit
            out.append(obs)
        return out
    if isinstance(type_, SetT):
        return sorted({value for at, value in items if at is None or at <= moment})
    timed = [(at, value) for at, value in items if at is not None and at <= moment]
    if fm.within is not None:
        timed = [(at, value) for at, value in timed if at > moment - fm.within]
    if isinstance(type_, BoolT):
        return True if timed else None
    if not timed:
        return None
    # ties on the time: the row that comes last (latest) or first (first) in the data
    if fm.take == "latest":
        at, value = max(enumerate(timed), key=lambda i: (i[1][0], i[0]))[1]
    else:
        at, value = min(enumerate(timed), key=lambda i: (i[1][0], i[0]))[1]
    if isinstance(type_, TimeT):
        return iso(at) if type_.has_time else _day(at)
    if isinstance(type_, QtyT):
        return {"value": value, "unit": type_.unit}
    return value


def _problem(code: str, message: str, row: str) -> Diagnostic:
    return warning(code, message, None, path=row, help=_HELP[code])


_HELP = {
    "PR852": "the row is skipped; fill its value (OMOP: value_as_number; FHIR: valueQuantity)",
    "PR853": "the row is skipped; record the unit in UCUM (OMOP: unit_source_value or a UCUM "
    "unit_concept_id; FHIR: valueQuantity.code with system http://unitsofmeasure.org)",
    "PR854": "the row is skipped; record when it happened (OMOP: the *_date / *_datetime "
    "column; FHIR: effective[x], onset[x], authoredOn, performed[x])",
}


def empty_events() -> Any:
    import polars as pl

    return pl.DataFrame(
        schema={
            "person": pl.String,
            "source": pl.String,
            "code": pl.String,
            "at": pl.Float64,
            "value": pl.Float64,
            "unit": pl.String,
            "row": pl.String,
        }
    )
