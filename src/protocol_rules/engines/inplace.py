"""Back end, SQL: screening where the data lives — DuckDB or Spark reads the layout in place.

`screen_in_place` screens the columnar layout (docs/screening.md#the-columnar-layout) that a
`Backend` (`engines.duckdb_inplace`, `engines.spark_inplace`) exposes as two views, without
reading the population into Python:

1. the layout's shape is checked as the polars door checks it (`sources.layout.from_layout` on
   the tables' empty schema, then a query each for repeated patients, observations of unknown
   patients and scalar facts in the observations table) — the same codes, PR509-PR513;
2. the unit table is derived from the data's distinct (fact, unit) pairs (`UnitTable.derive`),
   the layout's kinds are the database's own types, and `sql.compile_sql` compiles the
   protocol's query in its engine form (a boolean per criterion, bit masks of missing facts);
3. the engine runs it; only the result (a row per patient) comes back;
4. the few patients whose values the SQL does not vouch for (status ``error`` in SQL) are read
   again, their rows only, by the polars door and screened by the polars engine: the
   interpreter's reader has the last word, so they get exactly the diagnostics (or the verdicts)
   the polars engine gives.

The `Screening` it returns reads like any other; `InPlaceRun` reads one patient's rows for
`Screening.explain` and the rows of the near misses' candidates for `Screening.near_misses`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from ..diagnostics import Diagnostic, error
from ..render.safe import printable
from ..sources.layout import Layout, from_layout
from ..sources.population import ID, ROW, Population, is_collection
from . import ScreeningError
from .sql import SqlQuery, compile_sql
from .sql_layout import UNIT_SUFFIX, LayoutSchema, UnitTable
from .sql_population import _missing_lists

if TYPE_CHECKING:
    from ..protocol import Protocol
    from ..screening import Screening

#: The input order columns the backends add to the views (a colon: never a fact's name).
ORDER, SEQUENCE = "pr:row", "pr:seq"
#: Patients re-read by the polars door at a time (bounded memory, even if every row is one).
CHUNK = 50_000


class Backend(Protocol):
    """An engine holding the layout as two views: ``patients`` (with `ORDER`) and, if there is
    one, ``observations`` (with `SEQUENCE`)."""

    dialect: str
    patients: str
    observations: str | None

    def columns(self, table: str) -> list[tuple[str, str]]:
        """The data's columns of `table` and their layout kinds (`sql_layout.KINDS`)."""

    def empty(self, table: str) -> pl.DataFrame:
        """`table`'s columns and types, without rows (the order columns left out)."""

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a small query (names quoted with `quote`)."""

    def quote(self, name: str) -> str:
        """An identifier in this engine's SQL."""

    def run(self, query: SqlQuery) -> pl.DataFrame:
        """The query's result."""

    def rows_of(self, ids: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        """The data's rows of these patients: patients, and observations in input order."""


def screen_in_place(
    protocol: Protocol,
    backend: Backend,
    as_of: Any,
    seconds: float | None,
    engine_name: str,
    *,
    ignore_unknown: bool = False,
) -> Screening:
    """Screen the layout `backend` holds (see the module docstring)."""
    from ..screening import Screening

    run = InPlaceRun(protocol, backend, seconds, ignore_unknown)
    population, raw = run.screen()
    return Screening(protocol, population, raw, as_of, engine_name, run)


class InPlaceRun:
    """One screening in place: the query, its result, and the door back to a patient's rows.

    It is the `compiled` object of the `Screening` it makes (``near_misses(frame)``)."""

    def __init__(
        self, protocol: Protocol, backend: Backend, seconds: float | None, ignore_unknown: bool
    ) -> None:
        self.protocol = protocol
        self.checked = protocol.checked
        self.backend = backend
        self.seconds = seconds
        self.ignore_unknown = ignore_unknown
        self.ids: pl.Series | None = None
        self._polars: Any = None

    # ------------------------------------------------------------------ the screen

    def screen(self) -> tuple[Population, pl.DataFrame]:
        schema = self.schema()
        self.check_shape(schema)
        units = UnitTable.derive(self.checked, self.unit_pairs(schema))
        query = compile_sql(
            self.checked,
            self.backend.dialect,
            layout=schema,
            units=units,
            as_of=self.seconds,
            ignore_unknown=self.ignore_unknown,
            output="engine",
            patients=self.backend.patients,
            observations=self.backend.observations or "observations",
        )
        result = self.backend.run(query)
        if "input_row" in result.columns:
            result = result.sort("input_row")
        names = [f"c{i}" for i in range(len(query.criteria))]
        masks = [f"m{k}" for k in range(query.masks)]
        missing = _missing_lists(result.select(masks), list(query.missing), result.height)
        ids = result.get_column("patient_id").alias(ID)
        self.ids = ids
        raw = pl.DataFrame([ids]).with_columns(
            *(result.get_column(n).cast(pl.Boolean).alias(n) for n in names), missing
        )
        flagged = result.get_column("problem").is_not_null().arg_true()
        errors, raw = self._reread(raw, flagged, names)
        patients = pl.DataFrame([pl.Series(ROW, range(len(ids)), dtype=pl.UInt32), ids])
        population = Population(patients, {}, errors, self.record, self.seconds, ID)
        return population, raw

    def schema(self) -> LayoutSchema:
        patients = self.backend.columns(self.backend.patients)
        observations = None
        if self.backend.observations is not None:
            observations = tuple(self.backend.columns(self.backend.observations))
        return LayoutSchema(
            (*patients, (ORDER, "number")),
            None if observations is None else (*observations, (SEQUENCE, "number")),
            ORDER,
            None if observations is None else SEQUENCE,
        )

    def check_shape(self, schema: LayoutSchema) -> None:
        """PR509-PR513 as the polars door raises them (`sources.layout`)."""
        backend, q = self.backend, self.backend.quote
        empty = Layout(
            backend.empty(backend.patients),
            None if backend.observations is None else backend.empty(backend.observations),
        )
        from_layout(empty, self.protocol._program, self.seconds, ignore_unknown=self.ignore_unknown)
        patients, pid = q(backend.patients), q("patient_id")
        repeated = backend.rows(
            f"SELECT {pid} FROM {patients} GROUP BY {pid} HAVING COUNT(*) > 1 LIMIT 1"
        )
        if repeated:
            raise _shape(
                "PR512",
                f"patient `{repeated[0][0]}` has more than one row in the patients table",
                "patients.patient_id",
                "give each patient one row; observations go in the observations table",
            )
        if backend.observations is None:
            return
        observations = q(backend.observations)
        strangers = backend.rows(
            f"SELECT o.{pid} FROM {observations} o WHERE o.{pid} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {patients} p WHERE p.{pid} = o.{pid}) LIMIT 1"
        )
        if strangers:
            raise _shape(
                "PR513",
                f"the observations table has rows for patient `{strangers[0][0]}`, "
                "who is not in the patients table",
                "observations.patient_id",
                "add the patient to the patients table (every patient has one row there)",
            )
        scalars = [f.name for f in self.checked.facts if not is_collection(f)]
        if scalars:
            listed = ", ".join("'" + s + "'" for s in scalars)  # fact names: [A-Za-z0-9_]
            found = backend.rows(
                f"SELECT {q('fact')} FROM {observations} WHERE {q('fact')} IN ({listed}) LIMIT 1"
            )
            if found:
                name = found[0][0]
                raise _shape(
                    "PR511",
                    f"`{name}` is a scalar fact: its value goes in a column of the patients table",
                    "observations.fact",
                    f"add a column `{name}` to the patients table",
                )
        del schema

    def unit_pairs(self, schema: LayoutSchema) -> list[tuple[str, Any]]:
        """The data's distinct (fact, unit) pairs: the patients' unit columns and the
        observations' units."""
        backend, q = self.backend, self.backend.quote
        pairs: list[tuple[str, Any]] = []
        for fact in self.checked.facts:
            column = fact.name + UNIT_SUFFIX
            if schema.patient_kind(column) is not None:
                found = backend.rows(f"SELECT DISTINCT {q(column)} FROM {q(backend.patients)}")
                pairs += [(fact.name, u) for (u,) in found if u is not None]
        if backend.observations is not None and schema.observation_kind("unit") is not None:
            pairs += backend.rows(
                f"SELECT DISTINCT {q('fact')}, {q('unit')} FROM {q(backend.observations)} "
                f"WHERE {q('unit')} IS NOT NULL"
            )
        return pairs

    # ------------------------------------------------------------------ rows read again

    def population_of(self, ids: pl.Series) -> Population:
        """These patients' rows, read by the polars door (checked and normalised as the
        polars engine reads them)."""
        patients, observations = self.backend.rows_of(ids)
        return from_layout(
            Layout(patients, observations),
            self.protocol._program,
            self.seconds,
            ignore_unknown=self.ignore_unknown,
        )

    def _reread(
        self, raw: pl.DataFrame, flagged: pl.Series, names: list[str]
    ) -> tuple[dict[int, tuple[Diagnostic, ...]], pl.DataFrame]:
        """The patients the SQL flags, read again by the polars door: their diagnostics, or,
        for a value the interpreter's reader accepts after all, the polars engine's verdicts."""
        errors: dict[int, tuple[Diagnostic, ...]] = {}
        patches = []
        ids = raw.get_column(ID)
        for rows in _chunks(flagged):
            chunk = ids.gather(rows)
            row_of = dict(zip(chunk.to_list(), rows.to_list(), strict=True))
            sub = self.population_of(chunk)
            sub_ids = sub.patients.get_column(ID).to_list()
            for r, problems in sub.errors.items():
                errors[row_of[sub_ids[r]]] = problems
            if len(sub.errors) < sub.size:
                frame = self.polars.run(sub)
                clean = pl.Series(range(sub.size)).is_in(list(sub.errors)).not_()
                patches.append(frame.filter(clean).select(ID, *names, ":missing"))
        if patches:
            patch = pl.concat(patches).with_columns(pl.lit(True).alias(":patched"))
            joined = raw.join(patch, on=ID, how="left", suffix=":p", maintain_order="left")
            chosen = pl.col(":patched").fill_null(False)
            raw = joined.select(
                ID,
                *(
                    pl.when(chosen).then(pl.col(n + ":p")).otherwise(pl.col(n)).alias(n)
                    for n in [*names, ":missing"]
                ),
            )
        return dict(sorted(errors.items())), raw

    @property
    def polars(self) -> Any:
        if self._polars is None:
            from .polars import compile_protocol

            self._polars = compile_protocol(self.checked)
        return self._polars

    def record(self, row: int) -> dict[str, Any]:
        """Patient `row`'s record as `evaluate` takes it, rebuilt from the data's rows."""
        assert self.ids is not None
        return self.population_of(self.ids.gather([row])).record(0)

    def near_misses(self, frame: pl.DataFrame) -> Any:
        """The near-miss columns of the polars engine (`screening`), for the patients of
        `frame` only: their rows are read and screened by the polars engine."""
        leaves: Any = None
        columns: list[pl.DataFrame] = []
        ids = frame.get_column(ID)
        for rows in list(_chunks(pl.Series(range(frame.height)))) or [
            pl.Series([], dtype=pl.Int64)
        ]:
            sub = self.population_of(ids.gather(rows))
            leaves, found = self.polars.near_misses(self.polars.run(sub))
            columns.append(found.select(ID, *(c for c in found.columns if c.startswith(":near:"))))
        near = pl.concat(columns)
        return leaves, frame.join(near, on=ID, how="left", maintain_order="left")


def _chunks(rows: pl.Series) -> Iterator[pl.Series]:
    for start in range(0, len(rows), CHUNK):
        yield rows.slice(start, CHUNK)


def _shape(code: str, message: str, path: str, help: str) -> ScreeningError:
    return ScreeningError([error(code, message, None, path=path, help=help)])


def engine_failed(engine: str, why: str, help: str) -> ScreeningError:
    """PR528: the engine could not run the screening query (out of memory, a lost executor)."""
    first = why.strip().splitlines()[0] if why.strip() else "unknown error"
    return ScreeningError(
        [
            error(
                "PR528",
                f"{engine} could not run the screening query: {printable(first, newlines=False)}",
                None,
                path=engine,
                help=help,
            )
        ]
    )
