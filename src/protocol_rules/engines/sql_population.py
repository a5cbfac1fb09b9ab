"""Back end, SQL: a screening `Population` as the two tables of the SQL layout, and back.

The SQL engines (`engines.duckdb`, `engines.spark`) screen the population the polars engine
screens: the sources door (`protocol_rules.sources`) has already read every record, checked it
and converted it to declared units, so the tables handed to SQL are

- ``patients``: ``patient_id`` (the population's key), ``input_row``, ``as_of`` (seconds) and a
  column per scalar fact — numbers and quantities DOUBLE in the declared unit, instants seconds
  since the epoch (kind `SECONDS`, minus infinity for `never`), booleans, texts;
- ``observations``: ``patient_id, fact, at, value, seq`` — one row per observation or member of
  every series and set, plus one row with neither ``at`` nor ``value`` for a patient whose
  series or set is known and empty. ``value`` is DOUBLE when every series and set holds
  numbers, else text (numbers written in their shortest round-trip form).

Malformed records are the population's `errors`; `Screening` reports them, whatever the engine.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ..check import CheckedProtocol
from ..check.types import BoolT, ChoiceT, NumT, QtyT, SeriesT, TextT, TimeT
from ..sources.population import AS_OF, AT, ROW, SEQ, VALUE, Population, element, is_collection
from .sql import SqlQuery, compile_sql, refuse_codes, unsupported
from .sql_layout import BOOLEAN, NUMBER, SECONDS, TEXT, LayoutSchema, UnitTable

PATIENTS, OBSERVATIONS = "patients", "observations"
ORDER, SEQUENCE = "input_row", "seq"


def _kind(type_: Any) -> str:
    match element(type_):
        case BoolT():
            return BOOLEAN
        case NumT() | QtyT():
            return NUMBER
        case TimeT():
            return SECONDS
        case TextT() | ChoiceT():
            return TEXT
    raise AssertionError(type_)  # pragma: no cover


def numeric_values(checked: CheckedProtocol) -> bool:
    """Whether every series and set holds numbers (the observations' value is then DOUBLE)."""
    return all(isinstance(element(f.type), NumT | QtyT) for f in checked.facts if is_collection(f))


def population_schema(checked: CheckedProtocol) -> LayoutSchema:
    """The `LayoutSchema` of the tables `population_tables` builds."""
    refuse_codes(checked)
    patients = [("patient_id", TEXT), (ORDER, NUMBER), ("as_of", SECONDS)]
    patients += [(f.name, _kind(f.type)) for f in checked.facts if not is_collection(f)]
    collections = [f for f in checked.facts if is_collection(f)]
    observations = None
    if collections:
        for fact in collections:
            if isinstance(element(fact.type), TimeT):
                raise unsupported(fact, "series and sets of instants are not screened in SQL")
        value = NUMBER if numeric_values(checked) else TEXT
        observations = (
            ("patient_id", TEXT),
            ("fact", TEXT),
            ("at", SECONDS),
            ("value", value),
            (SEQUENCE, NUMBER),
        )
    return LayoutSchema(tuple(patients), observations, ORDER, SEQUENCE if collections else None)


class PopulationQuery:
    """The protocol's query over `population_tables`, in one dialect, in its engine form."""

    def __init__(self, checked: CheckedProtocol, dialect: str) -> None:
        self.checked = checked
        self.dialect = dialect
        self.query: SqlQuery | None = None

    def check(self) -> None:
        """Compile now, so that what cannot be compiled is refused before any data is read."""
        self.for_population(None)

    def for_population(self, population: Population | None) -> SqlQuery:
        # the data's units are the declared ones (the sources door converted them): no table
        if self.query is None:
            self.query = compile_sql(
                self.checked,
                self.dialect,
                layout=population_schema(self.checked),
                units=UnitTable(),
                output="engine",
                patients=PATIENTS,
                observations=OBSERVATIONS,
            )
        return self.query


def population_tables(population: Population, checked: CheckedProtocol) -> dict[str, Any]:
    """The two tables of `population_schema`, as Arrow tables (zero-copy from polars)."""
    key = population.key
    scalars = [f.name for f in checked.facts if not is_collection(f)]
    patients = population.patients.select(
        _signed(population.patients.schema[key], pl.col(key)).alias("patient_id"),
        pl.col(ROW).cast(pl.Int64).alias(ORDER),
        pl.col(AS_OF).alias("as_of"),
        *(pl.col(name) for name in scalars),
    )
    tables = {PATIENTS: patients.to_arrow()}
    collections = [f for f in checked.facts if is_collection(f)]
    if collections:
        tables[OBSERVATIONS] = _observations(population, checked, collections).to_arrow()
    return tables


def _observations(population: Population, checked: CheckedProtocol, facts: list[Any]) -> Any:
    key = population.key
    numeric = numeric_values(checked)
    value_type = pl.Float64 if numeric else pl.String
    parts = []
    for fact in facts:
        frame = population.observations.get(fact.name)
        series = isinstance(fact.type, SeriesT)
        has = population.patients.filter(pl.col(fact.name).fill_null(False)).select(key)
        if frame is not None and frame.height:
            value = pl.col(VALUE)
            if not numeric:
                value = _as_text(frame.schema[VALUE], value)
            parts.append(
                frame.select(
                    _signed(frame.schema[key], pl.col(key)).alias("patient_id"),
                    pl.lit(fact.name).alias("fact"),
                    (pl.col(AT) if series and AT in frame.columns else pl.lit(None))
                    .cast(pl.Float64)
                    .alias("at"),
                    value.cast(value_type).alias("value"),
                    pl.col(SEQ).cast(pl.Int64).alias(SEQUENCE),
                )
            )
            has = has.join(frame.select(key).unique(), on=key, how="anti")
        parts.append(  # known and empty: the marker row
            has.select(
                _signed(has.schema[key], pl.col(key)).alias("patient_id"),
                pl.lit(fact.name).alias("fact"),
                pl.lit(None, pl.Float64).alias("at"),
                pl.lit(None, value_type).alias("value"),
                pl.lit(None, pl.Int64).alias(SEQUENCE),
            )
        )
    return pl.concat(parts, how="vertical_relaxed")


def _signed(dtype: Any, column: pl.Expr) -> pl.Expr:
    """Unsigned integers as Int64: not every engine reads unsigned types (Spark does not)."""
    return column.cast(pl.Int64) if dtype.is_unsigned_integer() else column


def _as_text(dtype: Any, value: pl.Expr) -> pl.Expr:
    if dtype == pl.Boolean:
        return pl.when(value).then(pl.lit("true")).otherwise(pl.lit("false"))
    if dtype.is_float():
        # the shortest text that reads back as the same double, as SQL reads it
        return value.map_elements(repr, return_dtype=pl.String)
    return value.cast(pl.String)


def results_frame(population: Population, query: SqlQuery, result: pl.DataFrame) -> pl.DataFrame:
    """The engine contract's frame from the query's engine output (``c0``…, ``m0``…)."""
    if result.height != population.size:
        raise AssertionError(f"{result.height} rows out of SQL for {population.size} patients")
    names = [f"c{i}" for i in range(len(query.criteria))]
    result = result.sort(ORDER) if ORDER in result.columns else result
    verdicts = [result[n].cast(pl.Boolean).alias(n) for n in names]
    masks = [f"m{k}" for k in range(query.masks)]
    missing = _missing_lists(result.select(masks), list(query.missing), result.height)
    return population.patients.with_columns(*verdicts, missing)


def _missing_lists(masks: pl.DataFrame, facts: list[str], height: int) -> pl.Series:
    """The names of the missing facts, per row, from the bit masks (each distinct mask once)."""
    if not facts or not masks.width:
        return pl.Series(":missing", [[]] * height, dtype=pl.List(pl.String))
    keys = masks.columns
    combos = masks.unique()
    lists = []
    for row in combos.iter_rows():
        found: list[str] = []
        for k, mask in enumerate(row):
            found += [facts[63 * k + bit] for bit in range(63) if (mask or 0) >> bit & 1]
        lists.append(found)
    combos = combos.with_columns(pl.Series(":missing", lists, dtype=pl.List(pl.String)))
    joined = masks.join(combos, on=keys, how="left", maintain_order="left", nulls_equal=True)
    return joined[":missing"]
