"""Back end: the SQL query of `engines.sql`, run by DuckDB over a screening population.

`compile_protocol(checked)` follows the engine contract of `protocol_rules.screening`: its
``run(population)`` hands the normalised `Population` (the same one the polars engine screens)
to DuckDB as Arrow tables — the patients wide, the series and sets long, values already in
their declared units — runs the protocol's query in its *engine* form (a boolean per criterion,
bit masks of missing facts) and returns the frame `Screening` reads. The interpreter stays the
reference: the differential tests compare every criterion outcome of every row with it.

What the SQL compiler cannot compile is refused when the protocol is compiled (PR520-PR522),
never screened some other way; a missing ``duckdb`` or ``sqlglot`` is PR524.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from ..check import CheckedProtocol
from ..diagnostics import error
from ..render.safe import printable
from ..sources.population import Population
from . import ScreeningError, require
from .sql import SqlQuery, compile_sql
from .sql_layout import BOOLEAN, DATE, NUMBER, OTHER, TEXT, TIMESTAMP, LayoutSchema, UnitTable
from .sql_population import (
    OBSERVATIONS,
    PATIENTS,
    PopulationQuery,
    population_tables,
    results_frame,
)


def require_duckdb() -> Any:
    """The `duckdb` module, or a `ScreeningError` (PR524) saying how to install it."""
    return require("duckdb", "sql")


class CompiledProtocol:
    """What `compile_protocol` returns: one query per population layout, compiled on demand."""

    def __init__(self, checked: CheckedProtocol) -> None:
        require_duckdb()
        self.checked = checked
        self.queries = PopulationQuery(checked, "duckdb")
        self.queries.check()  # refuse now what cannot be compiled (PR520-PR522)
        self._polars: Any = None

    def sql(self, population: Population) -> str:
        """The DuckDB query `run` executes over `population`'s tables."""
        return self.queries.for_population(population).sql()

    def run(self, population: Population) -> Any:
        """One row per patient, in input order: the patients' columns, ``c0``, ``c1``, … and
        ``:missing`` (see `screening`)."""
        duckdb = require_duckdb()
        query = self.queries.for_population(population)
        connection = duckdb.connect()
        try:
            for name, table in population_tables(population, self.checked).items():
                connection.register(name, table)
            result = pl.from_arrow(connection.sql(query.sql(pretty=False)).to_arrow_table())
        finally:
            connection.close()
        return results_frame(population, query, result)

    def near_misses(self, frame: Any) -> Any:
        """Near misses are computed from the frame's fact columns by the polars engine's
        expressions (they read the facts, not the verdicts)."""
        if self._polars is None:
            from .polars import compile_protocol as compile_polars

            self._polars = compile_polars(self.checked)
        return self._polars.near_misses(frame)


def compile_protocol(checked: CheckedProtocol) -> CompiledProtocol:
    """Compile a checked protocol for DuckDB; raises `ScreeningError` (PR520-PR524)."""
    return CompiledProtocol(checked)


# --------------------------------------------------------------------------- data in place

#: DuckDB column types -> layout kinds (`sql_layout.KINDS`).
_KINDS = {
    "BOOLEAN": BOOLEAN,
    "VARCHAR": TEXT,
    "DATE": DATE,
    "TIMESTAMP": TIMESTAMP,
    "TIMESTAMP WITH TIME ZONE": TIMESTAMP,
}
_NUMBERS = ("DOUBLE", "FLOAT", "REAL", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT")


def _cannot_read(what: str, why: str) -> ScreeningError:
    return ScreeningError(
        [
            error(
                "PR525",
                f"cannot read {what}: {printable(why, newlines=False)}",
                None,
                path=what,
                help="give a DuckDB database file holding the tables `patients` and "
                "`observations`, or a layout folder (patients.parquet, observations.parquet)",
            )
        ]
    )


def connect_layout(path: str) -> Any:
    """A DuckDB connection where `patients` (and `observations`, if there is one) are the
    layout's tables, read in place: a DuckDB database file, a layout folder of Parquet or CSV
    files, or one Parquet or CSV file of patients (docs/screening.md#the-columnar-layout)."""
    duckdb = require_duckdb()
    target = Path(path)
    if not target.exists():
        raise _cannot_read(f"`{path}`", "no such file or folder")
    try:
        if target.is_file() and target.suffix not in (".parquet", ".csv"):
            return duckdb.connect(str(target), read_only=True)
        connection = duckdb.connect()
        files = {PATIENTS: target} if target.is_file() else {}
        for table in (PATIENTS, OBSERVATIONS):
            for suffix in (".parquet", ".csv"):
                if target.is_dir() and (target / (table + suffix)).exists():
                    files[table] = target / (table + suffix)
        if PATIENTS not in files:
            raise _cannot_read(f"`{path}`", "no patients.parquet or patients.csv")
        for table, file in files.items():
            reader = (
                "read_parquet(?)" if file.suffix == ".parquet" else "read_csv(?, all_varchar=true)"
            )
            relation = connection.sql(f"SELECT * FROM {reader}", params=[str(file)])
            relation.to_view(table)  # a view: DuckDB reads the file in place, as it scans
        return connection
    except duckdb.Error as exc:
        raise _cannot_read(f"`{path}`", str(exc).splitlines()[0]) from None


def layout_schema(connection: Any) -> LayoutSchema:
    """The kinds of the layout tables' columns, from the database's own types."""
    tables = {}
    for table in (PATIENTS, OBSERVATIONS):
        try:
            described = connection.sql(f'DESCRIBE "{table}"').fetchall()
        except Exception:  # the table does not exist: only observations may be absent
            if table == PATIENTS:
                raise _cannot_read("the table `patients`", "it does not exist") from None
            continue
        tables[table] = tuple((name, _kind(str(type_))) for name, type_, *_ in described)
    if "patient_id" not in dict(tables[PATIENTS]):
        raise _cannot_read("the table `patients`", "it has no `patient_id` column")
    return LayoutSchema(tables[PATIENTS], tables.get(OBSERVATIONS))


def _kind(type_: str) -> str:
    if type_ in _KINDS:
        return _KINDS[type_]
    if type_.startswith(_NUMBERS) or type_.startswith("DECIMAL"):
        return NUMBER
    return OTHER


def unit_pairs(connection: Any, checked: CheckedProtocol, schema: LayoutSchema) -> list[Any]:
    """The distinct (fact, unit) pairs of the data: the unit columns of the patients table and
    the observations' units — what `UnitTable.derive` converts with the units module."""
    pairs: list[Any] = []
    columns = dict(schema.patients)
    for fact in checked.facts:
        column = fact.name + ".unit"
        if column in columns:
            found = connection.sql(f'SELECT DISTINCT "{column}" FROM "{PATIENTS}"').fetchall()
            pairs += [(fact.name, u) for (u,) in found if u is not None]
    if schema.observation_kind("unit") is not None:
        found = connection.sql(
            f'SELECT DISTINCT "fact", "unit" FROM "{OBSERVATIONS}" WHERE "unit" IS NOT NULL'
        ).fetchall()
        pairs += found
    return pairs


def run_layout(
    checked: CheckedProtocol, connection: Any, as_of: float | None = None
) -> tuple[SqlQuery, pl.DataFrame]:
    """Run the protocol's query (as `protocol-rules sql` prints it) over the layout tables of
    `connection`: the layout's types read from the database, the unit table derived from the
    data's (fact, unit) pairs. Returns the query and its result (``patient_id``, ``status``,
    an outcome per criterion, ``missing_facts``, ``error_code``, ``error_message``)."""
    duckdb = require_duckdb()
    schema = layout_schema(connection)
    units = UnitTable.derive(checked, unit_pairs(connection, checked, schema))
    query = compile_sql(checked, "duckdb", layout=schema, units=units, as_of=as_of)
    try:
        arrow = connection.sql(query.sql(pretty=False)).to_arrow_table()
    except duckdb.Error as exc:
        raise _cannot_read("the layout tables", str(exc).splitlines()[0]) from None
    return query, pl.from_arrow(arrow)  # type: ignore[return-value]
