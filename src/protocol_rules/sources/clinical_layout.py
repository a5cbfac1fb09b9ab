"""From clinical rows to the columnar layout, vectorised: `build_records` for populations.

The same data map semantics as `clinical.build_records` (module docstring there), computed
with polars over whole columns instead of person by person, into a `Layout` (patients wide,
series and sets long) that screening reads directly. Values keep their source unit: the
layout's own checking converts each distinct unit once through `units.conversion`, as it does
for any layout. Rows that cannot be used are reported (PR852-PR854) and left out, exactly as
`build_records` does; a test screens both and compares every patient.
"""

from __future__ import annotations

from typing import Any

from .. import units
from ..check.types import BoolT, CodeT, NumT, QtyT, SeriesT, SetT, TimeT
from ..datamap import DataMap
from ..diagnostics import Diagnostic
from .clinical import _problem, as_of_seconds, iso, selects
from .layout import AT_COLUMN, FACT, PATIENT_ID, UNIT, UNIT_SUFFIX, VALUE_COLUMN, Layout

__all__ = ["build_layout"]


def build_layout(
    people: Any,
    events: Any,
    data_map: DataMap,
    as_of: Any = None,
    problems: list[Diagnostic] | None = None,
    *,
    distinct_rows: bool = False,
) -> Layout:
    """A `Layout` of the persons (a frame: ``person``, ``birth`` seconds, ``sex``) and their
    events (see `clinical`), through `data_map`, at `as_of`. `distinct_rows`: the caller knows
    no two events of a fact share a ``row`` (OMOP), so none is dropped as a repeat."""
    import polars as pl

    moment = as_of_seconds(as_of)
    problems = problems if problems is not None else []
    declared = {f.name: f for f in data_map.protocol.facts}
    wide = people.select(pl.col("person").alias(PATIENT_ID), pl.lit(iso(moment)).alias("as_of"))
    long: list[Any] = []
    coded = any(
        isinstance(declared[f.fact].type, SeriesT | SetT)
        and not isinstance(declared[f.fact].type.element, NumT | QtyT)
        for f in data_map.facts
    )
    value_type = pl.String if coded else pl.Float64
    for fm in data_map.facts:
        fact = declared[fm.fact]
        type_ = fact.type
        if fm.field is not None:
            wide = wide.with_columns(*_field(fm.field, type_, people, moment, fm.fact))
            continue
        rows = events.filter(selects(fm))
        if not distinct_rows:
            rows = rows.unique(subset=["row"], keep="first", maintain_order=True)
        rows = rows.with_row_index("order")
        rows = _usable(fm.fact, type_, rows, problems)
        if isinstance(type_, SeriesT):
            value = pl.col("code") if isinstance(type_.element, CodeT) else pl.col("value")
            long.append(
                rows.select(
                    pl.col("person").alias(PATIENT_ID),
                    pl.lit(fm.fact).alias(FACT),
                    _datetime(pl.col("at")).alias(AT_COLUMN),
                    value.cast(value_type).alias(VALUE_COLUMN),
                    pl.col("unit").alias(UNIT),
                )
            )
            continue
        if isinstance(type_, SetT):
            kept = rows.filter(pl.col("at").is_null() | (pl.col("at") <= moment))
            long.append(
                kept.unique(subset=["person", "code"], maintain_order=True).select(
                    pl.col("person").alias(PATIENT_ID),
                    pl.lit(fm.fact).alias(FACT),
                    pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias(AT_COLUMN),
                    pl.col("code").cast(value_type).alias(VALUE_COLUMN),
                    pl.lit(None, dtype=pl.String).alias(UNIT),
                )
            )
            continue
        timed = rows.filter(pl.col("at").is_not_null() & (pl.col("at") <= moment))
        if fm.within is not None:
            timed = timed.filter(pl.col("at") > moment - fm.within)
        if isinstance(type_, BoolT):
            found = timed.select(pl.col("person").unique().alias(PATIENT_ID))
            found = found.with_columns(pl.lit(True).alias(fm.fact))
            wide = wide.join(found, on=PATIENT_ID, how="left")
            if fm.absent == "false":
                wide = wide.with_columns(pl.col(fm.fact).fill_null(False))
            continue
        ordered = timed.sort("at", "order")
        grouped = ordered.group_by("person", maintain_order=True)
        picked = grouped.last() if fm.take == "latest" else grouped.first()
        columns = [pl.col("person").alias(PATIENT_ID)]
        if isinstance(type_, TimeT):
            at = _datetime(pl.col("at"))
            columns.append((at if type_.has_time else at.dt.date()).alias(fm.fact))
        elif isinstance(type_, CodeT):
            columns.append(pl.col("code").alias(fm.fact))
        else:
            columns.append(pl.col("value").alias(fm.fact))
            if isinstance(type_, QtyT):
                columns.append(pl.col("unit").alias(fm.fact + UNIT_SUFFIX))
        wide = wide.join(picked.select(columns), on=PATIENT_ID, how="left")
    observations = pl.concat(long) if long else None
    if observations is not None and observations.height == 0:
        observations = None
    return Layout(wide, observations)


def _field(field: str, type_: Any, people: Any, moment: float, name: str) -> list[Any]:
    from datetime import UTC, datetime

    import polars as pl

    today = datetime.fromtimestamp(moment, UTC).date()
    born = _datetime(people["birth"]).dt.date()
    if field == "age":
        before = (born.dt.month() > today.month) | (
            (born.dt.month() == today.month) & (born.dt.day() > today.day)
        )
        years = (today.year - born.dt.year() - before.cast(pl.Int32)).cast(pl.Float64)
        if isinstance(type_, QtyT):  # completed years, in 'a' whatever the declared unit
            unit = pl.when(years.is_not_null()).then(pl.lit("a")).otherwise(None)
            return [years.alias(name), pl.select(unit).to_series().alias(name + UNIT_SUFFIX)]
        return [years.alias(name)]
    if field == "birth_date":
        return [born.alias(name)]
    choices = list(type_.choices)
    sex = people["sex"]
    return [pl.select(pl.when(sex.is_in(choices)).then(sex)).to_series().alias(name)]


def _datetime(seconds: Any) -> Any:
    import polars as pl

    return (seconds * 1e6).round(0).cast(pl.Int64).cast(pl.Datetime("us", "UTC"))


def _usable(name: str, type_: Any, rows: Any, problems: list[Diagnostic]) -> Any:
    """The rows that can give fact `name` a value; the others reported (PR852-PR854)."""
    import polars as pl

    element = type_.element if isinstance(type_, SeriesT | SetT) else type_
    bad: list[tuple[Any, str, str]] = []  # (condition, code, message)
    if not isinstance(type_, SetT):
        bad.append((pl.col("at").is_null(), "PR854", f"no date or time; not used for `{name}`"))
    if isinstance(element, NumT | QtyT):
        bad.append((pl.col("value").is_null(), "PR852", f"no value; not used for `{name}`"))
    if isinstance(element, QtyT):
        bad.append(
            (
                pl.col("unit").is_null() | (pl.col("unit") == ""),
                "PR853",
                f"no UCUM unit; not used for `{name}` in '{element.unit}'",
            )
        )
        fits: dict[str, str | None] = {}
        for unit in rows["unit"].drop_nulls().unique().to_list():
            try:
                units.conversion(unit, element.unit, element.molar_mass)
                fits[unit] = None
            except units.UnitError as exc:
                fits[unit] = str(exc)
        for unit, why in fits.items():
            if why is not None:
                message = f"unit '{unit}' cannot give `{name}` in '{element.unit}': {why}"
                bad.append((pl.col("unit") == unit, "PR853", message))
    keep = pl.lit(True)
    for condition, code, message in bad:
        condition = condition.fill_null(False) & keep
        for row in rows.filter(condition)["row"].to_list():
            problems.append(_problem(code, message, row))
        keep = keep & ~condition
    return rows.filter(keep)
