"""Back end: DuckDB reading the columnar layout in place, for `engines.inplace`.

`open_layout(data, options)` returns the `inplace.Backend` over a layout folder (``patients``
and ``observations``, Parquet or CSV), one Parquet or CSV file of patients, a DuckDB database
file, or the caller's `duckdb.DuckDBPyConnection` holding the tables (or views) ``patients``
and, optionally, ``observations``. DuckDB scans the files as the query runs: nothing is read
into Python but the result, so a population larger than memory screens with a `memory_limit`
(DuckDB spills to `temp_directory`).

The views it makes are temporary and named apart (``protocol_rules_patients_…``); they add
the input order (a Parquet file's row numbers, a table's ``rowid``) so that the result comes
out in input order, as the polars engine gives it.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from ..diagnostics import error
from ..render.safe import printable
from . import ScreeningError
from .duckdb import _cannot_read, _kind, require_duckdb
from .inplace import ORDER, SEQUENCE, engine_failed
from .sql import SqlQuery
from .sql_population import OBSERVATIONS, PATIENTS

#: The engine options DuckDB takes (`Protocol.screen(engine_options=…)`), as DuckDB names them.
OPTIONS = ("memory_limit", "temp_directory", "threads")
BATCH = 100_000
#: Under a memory limit, patients are screened in groups: the data's size times `SPREAD` over
#: the limit, at most `MOST_GROUPS` (a group that runs out of memory is split in two).
SPREAD, MOST_GROUPS = 3, 4096


_MORE_MEMORY = (
    "raise `memory_limit` (`--memory-limit`; DuckDB needs some tens of MB whatever the data's "
    "size), or give a `temp_directory` (`--temp-directory`) with room for DuckDB to spill to"
)


class _OutOfMemory(Exception):
    pass


def bad_option(engine: str, name: str, why: str, help: str) -> ScreeningError:
    """PR526: an engine option the engine does not take, or a value it refuses."""
    return ScreeningError(
        [
            error(
                "PR526",
                f"engine option `{printable(name, newlines=False)}`: "
                f"{printable(why, newlines=False)}",
                None,
                path="engine_options",
                help=help,
            )
        ]
    )


def takes(engine: str, allowed: tuple[str, ...]) -> str:
    return f"the {engine} engine takes " + ", ".join(f"`{o}`" for o in allowed)


def in_place(data: Any, options: Mapping[str, Any] | None = None) -> bool:
    """Whether DuckDB reads `data` itself: a path (not JSON Lines) or a DuckDB connection."""
    del options
    if isinstance(data, str | os.PathLike):
        return not os.fspath(data).lower().endswith((".jsonl", ".ndjson"))
    duckdb = require_duckdb()
    return isinstance(data, duckdb.DuckDBPyConnection)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckDBLayout:
    """The layout as two temporary views of a DuckDB connection (see `inplace.Backend`)."""

    dialect = "duckdb"

    def __init__(self, connection: Any, owned: bool, scratch: Any = None) -> None:
        self.connection = connection
        self.owned = owned
        self.scratch = scratch  # a TemporaryDirectory for spilling, removed with this object
        tag = uuid.uuid4().hex[:12]
        self.patients = f"protocol_rules_patients_{tag}"
        self.observations: str | None = None
        self._tag = tag
        self.files: list[Path] = []  # the layout's files, if it is read from files
        self.limited: int | None = None  # DuckDB's memory limit in bytes, if one was given

    # ------------------------------------------------------------------ views

    def view(self, name: str, source: str, order: str, kind: str) -> None:
        """A temporary view over `source` (a table, or a reader call) with the input order."""
        duckdb = require_duckdb()
        if kind == "parquet":
            body = (
                f"SELECT * EXCLUDE (file_row_number), file_row_number AS {_quote(order)} "
                f"FROM {source}"
            )
            candidates = [body]
        else:  # a table has a rowid; a view or a CSV file is read in order
            candidates = (
                [f"SELECT *, rowid AS {_quote(order)} FROM {source}"] if kind == "table" else []
            )
            candidates.append(
                f"SELECT *, ROW_NUMBER() OVER () - 1 AS {_quote(order)} FROM {source}"
            )
        for i, body in enumerate(candidates):
            try:
                self.connection.execute(f"CREATE OR REPLACE TEMP VIEW {_quote(name)} AS {body}")
                return
            except duckdb.Error as exc:
                if i == len(candidates) - 1:
                    raise _cannot_read(f"`{source}`", str(exc).splitlines()[0]) from None

    def close(self) -> None:
        if self.owned:
            self.connection.close()
            return
        for name in (self.patients, self.observations):
            if name is not None:
                self.connection.execute(f"DROP VIEW IF EXISTS {_quote(name)}")

    # ------------------------------------------------------------------ inplace.Backend

    def quote(self, name: str) -> str:
        return _quote(name)

    def columns(self, table: str) -> list[tuple[str, str]]:
        described = self.connection.sql(f"DESCRIBE {_quote(table)}").fetchall()
        return [
            (name, _kind(str(type_)))
            for name, type_, *_ in described
            if name not in (ORDER, SEQUENCE)
        ]

    def empty(self, table: str) -> pl.DataFrame:
        order = ORDER if table == self.patients else SEQUENCE
        arrow = self.connection.sql(
            f"SELECT * EXCLUDE ({_quote(order)}) FROM {_quote(table)} LIMIT 0"
        ).to_arrow_table()
        return pl.from_arrow(arrow)  # type: ignore[return-value]

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        duckdb = require_duckdb()
        try:
            return self.connection.sql(sql).fetchall()
        except duckdb.OutOfMemoryException as exc:
            raise engine_failed("DuckDB", str(exc), _MORE_MEMORY) from None
        except duckdb.Error as exc:
            raise _cannot_read("the layout tables", str(exc).splitlines()[0]) from None

    def run(self, query: SqlQuery) -> pl.DataFrame:
        """The query's result; under a memory limit, over groups of patients in turn (a
        patient's verdict reads only their own rows), each group split in two again when
        DuckDB runs out of memory."""
        text = query.sql(pretty=False)
        if self.limited is None:
            return self._run(text)
        batched = text
        for name in (self.patients, self.observations):
            if name is not None:
                batched = batched.replace(_quote(name), _quote(name + "_batch"))
        groups = max(1, math.ceil(SPREAD * self._data_size() / self.limited))
        parts = []
        pending = [(k, groups) for k in range(groups)]
        while pending:
            k, n = pending.pop(0)
            self._batch_views(k, n)
            try:
                parts.append(self._run(batched if n > 1 else text, split=n < MOST_GROUPS))
            except _OutOfMemory:
                pending[:0] = [(k, 2 * n), (k + n, 2 * n)]
        return pl.concat(parts, how="vertical_relaxed")

    def _batch_views(self, k: int, n: int) -> None:
        for name in (self.patients, self.observations):
            if name is not None:
                key = f"hash(CAST({_quote('patient_id')} AS VARCHAR)) % {n} = {k}"
                self.connection.execute(
                    f"CREATE OR REPLACE TEMP VIEW {_quote(name + '_batch')} AS "
                    f"SELECT * FROM {_quote(name)} WHERE {key}"
                )

    def _data_size(self) -> int:
        """The data's size in bytes, as DuckDB reads it (uncompressed), roughly."""
        total = 0
        for file in self.files:
            if file.suffix.lower() == ".parquet":
                found = self.connection.execute(
                    "SELECT SUM(total_uncompressed_size) FROM parquet_metadata(?)", [str(file)]
                ).fetchone()
                total += int((found or [0])[0] or 0)
            else:
                total += 2 * file.stat().st_size
        for name in (self.patients, self.observations) if not self.files else ():
            if name is not None:
                rows = self.connection.sql(f"SELECT COUNT(*) FROM {_quote(name)}").fetchone()
                total += int((rows or [0])[0]) * 8 * len(self.columns(name))
        return total

    def _run(self, text: str, split: bool = False) -> pl.DataFrame:
        duckdb = require_duckdb()
        try:
            # streamed in batches: the result is not held in DuckDB's memory (its limit)
            reader = self.connection.sql(text).to_arrow_reader(BATCH)
            arrow = reader.read_all()
        except duckdb.OutOfMemoryException as exc:
            if split:
                raise _OutOfMemory() from None
            raise engine_failed("DuckDB", str(exc), _MORE_MEMORY) from None
        except duckdb.Error as exc:
            raise engine_failed(
                "DuckDB", str(exc), "check the layout's column types (docs/screening.md)"
            ) from None
        return pl.from_arrow(arrow)  # type: ignore[return-value]

    def rows_of(self, ids: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        wanted = f"protocol_rules_ids_{self._tag}"
        self.connection.register(wanted, pl.DataFrame({"patient_id": ids}).to_arrow())
        try:
            pid = _quote("patient_id")
            among = f"{pid} IN (SELECT {pid} FROM {_quote(wanted)})"
            patients = self.connection.sql(
                f"SELECT * EXCLUDE ({_quote(ORDER)}) FROM {_quote(self.patients)} "
                f"WHERE {among} ORDER BY {_quote(ORDER)}"
            ).to_arrow_table()
            observations = None
            if self.observations is not None:
                observations = pl.from_arrow(
                    self.connection.sql(
                        f"SELECT * EXCLUDE ({_quote(SEQUENCE)}) FROM {_quote(self.observations)} "
                        f"WHERE {among} ORDER BY {_quote(SEQUENCE)}"
                    ).to_arrow_table()
                )
        finally:
            self.connection.unregister(wanted)
        return pl.from_arrow(patients), observations  # type: ignore[return-value]


def open_layout(data: Any, options: Mapping[str, Any] | None = None) -> DuckDBLayout:
    """The layout of `data` (see the module docstring) on a DuckDB connection set up with
    `options` (`OPTIONS`); raises `ScreeningError` (PR525, PR526)."""
    duckdb = require_duckdb()
    options = dict(options or {})
    for name in options:
        if name not in OPTIONS:
            raise bad_option(
                "duckdb", name, "not an option of the DuckDB engine", takes("duckdb", OPTIONS)
            )
    if isinstance(data, duckdb.DuckDBPyConnection):
        layout = DuckDBLayout(data, owned=False)
        _configure(layout, options)
        _tables(layout, data)
        return layout
    path = os.fspath(data)
    target = Path(path)
    if not target.exists():
        raise _cannot_read(f"`{path}`", "no such file or folder")
    try:
        if target.is_file() and target.suffix.lower() not in (".parquet", ".csv"):
            connection = duckdb.connect(str(target), read_only=True)
            layout = DuckDBLayout(connection, owned=True)
            _configure(layout, options)
            _tables(layout, connection)
            return layout
        layout = DuckDBLayout(duckdb.connect(), owned=True)
        _configure(layout, options)
        files = {PATIENTS: target} if target.is_file() else {}
        for table in (PATIENTS, OBSERVATIONS):
            for suffix in (".parquet", ".csv"):
                if target.is_dir() and (target / (table + suffix)).exists():
                    files.setdefault(table, target / (table + suffix))
        if PATIENTS not in files:
            raise _cannot_read(f"`{path}`", "no patients.parquet or patients.csv")
        layout.files = list(files.values())
        for table, file in files.items():
            name = (
                layout.patients
                if table == PATIENTS
                else f"protocol_rules_observations_{layout._tag}"
            )
            order = ORDER if table == PATIENTS else SEQUENCE
            if file.suffix.lower() == ".parquet":
                source = f"read_parquet({_literal(str(file))}, file_row_number=true)"
                layout.view(name, source, order, "parquet")
            else:
                source = f"read_csv({_literal(str(file))}, all_varchar=true)"
                layout.view(name, source, order, "csv")
            if table == OBSERVATIONS:
                layout.observations = name
        return layout
    except duckdb.Error as exc:
        raise _cannot_read(f"`{path}`", str(exc).splitlines()[0]) from None


def _tables(layout: DuckDBLayout, connection: Any) -> None:
    """Views over the connection's ``patients`` and ``observations`` (tables or views)."""
    duckdb = require_duckdb()
    for table in (PATIENTS, OBSERVATIONS):
        try:
            connection.sql(f"SELECT * FROM {_quote(table)} LIMIT 0")
        except duckdb.Error:
            if table == PATIENTS:
                raise _cannot_read("the table `patients`", "it does not exist") from None
            continue
        if table == PATIENTS:
            layout.view(layout.patients, _quote(table), ORDER, "table")
        else:
            layout.observations = f"protocol_rules_observations_{layout._tag}"
            layout.view(layout.observations, _quote(table), SEQUENCE, "table")


def _configure(layout: DuckDBLayout, options: dict[str, Any]) -> None:
    duckdb = require_duckdb()
    if "memory_limit" in options and "temp_directory" not in options and layout.owned:
        layout.scratch = tempfile.TemporaryDirectory(prefix="protocol-rules-duckdb-")
        options["temp_directory"] = layout.scratch.name
    for name, value in options.items():
        if name == "threads":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad_option(
                    "duckdb",
                    name,
                    f"`{value}` is not a number of threads",
                    takes("duckdb", OPTIONS),
                )
            setting = str(value)
        else:
            setting = _literal(os.fspath(value) if name == "temp_directory" else str(value))
        try:
            layout.connection.execute(f"SET {name} = {setting}")
            if name == "memory_limit":
                layout.limited = _bytes(layout.connection)
        except duckdb.Error as exc:
            raise bad_option(
                "duckdb", name, str(exc).splitlines()[0], takes("duckdb", OPTIONS)
            ) from None


_UNITS = {"": 1, "B": 1, "BYTES": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS.update({"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40})


def _bytes(connection: Any) -> int | None:
    """DuckDB's memory limit in bytes (it reports it as ``19.0 MiB``)."""
    found = connection.execute("SELECT current_setting('memory_limit')").fetchone()
    match = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", str(found[0]) if found else "")
    if match is None or match.group(2).upper() not in _UNITS:
        return None
    return max(1, int(float(match.group(1)) * _UNITS[match.group(2).upper()]))
