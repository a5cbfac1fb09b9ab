"""The OMOP events of a DuckDB CDM, computed by DuckDB: for large CDMs (docs/performance.md).

`omop._events` reads every column as text and parses it with polars, so CSV, Parquet and
DuckDB give the same records. For a DuckDB table whose columns have their CDM types (integer
ids, DATE / TIMESTAMP times, numeric values), DuckDB selects the rows of the map's concepts and
computes the event columns itself — the person and code texts, the time in seconds (a TIMESTAMP
read as UTC, as the text path reads a time without a zone), the value as a double, the row's
provenance — so that only the selected rows, already typed, come out. The result is the text
path's, column for column (the tests compare both on the same CDM); a table with text columns
takes the text path.
"""

from __future__ import annotations

from typing import Any

__all__ = ["duckdb_events"]

_TIMES = ("DATE", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS")
_ZONED = ("TIMESTAMP WITH TIME ZONE",)
_WHOLE = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT")
_NUMBERS = (*_WHOLE, "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")


def duckdb_events(
    connection: Any,
    table: str,
    spec: tuple[str, str, str, str, bool],
    concepts: list[int],
    ucum: dict[str, str],
    fetch: Any,
) -> Any | None:
    """The events of `table` (an OMOP table, `spec` its columns as in `omop.TABLES`) whose
    concept is one of `concepts`, computed in DuckDB; None when a column is not of its CDM type
    (the caller then reads text). `fetch(sql)` runs a query into a polars frame."""
    import polars as pl

    id_col, concept, when, day, has_values = spec
    try:
        head = connection.sql(f'select * from "{table}" limit 0')
    except Exception:  # no such table: the text path says so (PR850)
        return None
    types = {c.lower(): (c, str(t).upper()) for c, t in zip(head.columns, head.types, strict=True)}

    def kind(column: str) -> str | None:
        found = types.get(column)
        return None if found is None else found[1]

    def name(column: str) -> str:
        return '"' + types[column][0].replace('"', '""') + '"'

    if any(kind(c) not in _WHOLE for c in ("person_id", id_col, concept)):
        return None
    if has_values and kind("unit_concept_id") not in (None, *_WHOLE):
        return None
    if kind(day) not in _TIMES + _ZONED or kind(when) not in (None, *_TIMES, *_ZONED):
        return None
    if (
        has_values
        and kind("value_as_number") not in (None, *_NUMBERS)
        and not ((kind("value_as_number") or "").startswith("DECIMAL"))
    ):
        return None
    if has_values and kind("unit_source_value") not in (None, "VARCHAR"):
        return None

    def seconds(column: str) -> str:
        if kind(column) in _ZONED:
            return f"epoch_us({name(column)}) / 1e6"
        return f"epoch_us(cast({name(column)} as timestamp)) / 1e6"

    at = seconds(day) if kind(when) is None else f"coalesce({seconds(when)}, {seconds(day)})"
    columns = [  # integers out of DuckDB; polars makes the texts (faster, on 2 CPUs)
        f"{name('person_id')} as person",
        f"{name(concept)} as code",
        f"{at} as at",
        f"{name(id_col)} as row",
    ]
    if has_values:
        value = "value_as_number"
        columns.append(
            f"cast({name(value)} as double) as value" if value in types else "null as value"
        )
        source = "unit_source_value"
        columns.append(
            f"nullif(trim({name(source)}), '') as unit_source"
            if source in types
            else "null as unit_source"
        )
        unit_concept = "unit_concept_id"
        columns.append(
            f"{name(unit_concept)} as unit_concept"
            if unit_concept in types
            else "null as unit_concept"
        )
    wanted = ", ".join(str(int(c)) for c in concepts) or "null"
    sql = f'select {", ".join(columns)} from "{table}" where {name(concept)} in ({wanted})'
    frame = fetch(sql)
    if has_values:
        mapped = (
            pl.col("unit_concept")
            .cast(pl.String)
            .replace_strict(list(ucum), list(ucum.values()), default=None, return_dtype=pl.String)
            if ucum
            else pl.lit(None, dtype=pl.String)
        )
        value = pl.col("value").cast(pl.Float64)
        unit = pl.coalesce(pl.col("unit_source").cast(pl.String), mapped)
    else:
        value = pl.lit(None, dtype=pl.Float64)
        unit = pl.lit(None, dtype=pl.String)
    return frame.select(
        pl.col("person").cast(pl.String),
        pl.lit(table).alias("source"),
        ("OMOP#" + pl.col("code").cast(pl.String)).alias("code"),
        pl.col("at").cast(pl.Float64),
        value.alias("value"),
        unit.alias("unit"),
        (f"{table.upper()} {id_col}=" + pl.col("row").cast(pl.String)).alias("row"),
    )


def duckdb_persons(connection: Any, fetch: Any) -> Any | None:
    """PERSON computed by DuckDB: ``person`` (text), ``birth`` (seconds, UTC: `birth_datetime`,
    else the year, month and day of birth), ``sex`` (`omop.SEXES`) — or None when a column is
    not of its CDM type (the caller then reads text)."""
    import polars as pl

    try:
        head = connection.sql('select * from "person" limit 0')
    except Exception:
        return None
    types = {c.lower(): (c, str(t).upper()) for c, t in zip(head.columns, head.types, strict=True)}

    def kind(column: str) -> str | None:
        found = types.get(column)
        return None if found is None else found[1]

    def name(column: str) -> str:
        return '"' + types[column][0].replace('"', '""') + '"'

    if any(kind(c) not in _WHOLE for c in ("person_id", "gender_concept_id", "year_of_birth")):
        return None
    if any(kind(c) not in (None, *_WHOLE) for c in ("month_of_birth", "day_of_birth")):
        return None
    if kind("birth_datetime") not in (None, *_TIMES, *_ZONED):
        return None

    def part(column: str) -> str:
        return f"coalesce({name(column)}, 1)" if column in types else "1"

    born = (
        f"try(make_date({name('year_of_birth')}, {part('month_of_birth')}, {part('day_of_birth')}))"
    )
    born = f"epoch_us(cast({born} as timestamp)) / 1e6"
    if kind("birth_datetime") in _ZONED:
        born = f"coalesce(epoch_us({name('birth_datetime')}) / 1e6, {born})"
    elif kind("birth_datetime") is not None:
        born = f"coalesce(epoch_us(cast({name('birth_datetime')} as timestamp)) / 1e6, {born})"
    sex = f"cast({name('gender_concept_id')} as varchar)"
    frame = fetch(
        f"select cast({name('person_id')} as varchar) as person, {born} as birth, "
        f"case {sex} when '8507' then 'male' when '8532' then 'female' end as sex from person"
    )
    return frame.select(
        pl.col("person").cast(pl.String), pl.col("birth").cast(pl.Float64), pl.col("sex")
    ).sort(pl.col("person").cast(pl.Int64, strict=False), "person")
