"""Back end: Spark reading the layout's Parquet where it lives, for `engines.inplace`.

`open_layout(path, options)` returns the `inplace.Backend` over any path Spark reads — a local
folder, ``file:``, ``s3a://``, ``hdfs://`` — holding ``patients.parquet`` and, if there are
series or sets, ``observations.parquet`` (each a file or a folder of part files), or one
Parquet file (or folder) of patients. `spark.read.parquet` reads them in Spark; the unit table
comes from Spark's ``SELECT DISTINCT``, the layout's kinds from Spark's types, and the query
runs one stage at a time (`engines.spark`). Only the result comes into Python.

The session is the caller's (the ``session`` option), else the active one, else one on the
``master`` option (a cluster URL, ``local[2]``; default ``PROTOCOL_RULES_SPARK_MASTER`` or
``local[2]``). The input order is each row's file and position in it (Spark's ``_metadata``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from ..diagnostics import error
from ..render.safe import printable
from . import ScreeningError
from .duckdb_inplace import bad_option, takes
from .inplace import ORDER, SEQUENCE, engine_failed
from .spark import quoted, require_pyspark, run_stages, session
from .sql import SqlQuery
from .sql_layout import BOOLEAN, DATE, NUMBER, OTHER, TEXT, TIMESTAMP

#: The engine options Spark takes (`Protocol.screen(engine_options=…)`).
OPTIONS = ("session", "master")
JSONL = (".jsonl", ".ndjson")
#: Up to this many files, a row's input order is a number (`SparkLayout.view`).
MAP_FILES = 1000
_NUMBERS = ("double", "float", "int", "bigint", "smallint", "tinyint", "decimal")


def in_place(data: Any, options: Mapping[str, Any] | None = None) -> bool:
    """Whether Spark reads `data` itself: a URL (``s3a://``, ``hdfs://``, ``file:``), a local
    Parquet file of patients, or a local folder holding ``patients.parquet``. Other local
    data (JSON Lines, CSV) is read by the polars door and handed to Spark, as before."""
    del options
    if not isinstance(data, str | os.PathLike):
        return False
    path = os.fspath(data)
    if path.lower().endswith(JSONL):
        return False
    if "://" in path or path.startswith("file:"):
        return True
    target = Path(path)
    if target.is_dir():
        return (target / "patients.parquet").exists()
    return target.suffix.lower() == ".parquet" and target.exists()


def cannot_read(path: str, why: str) -> ScreeningError:
    """PR527: Spark cannot read the layout at `path`."""
    first = why.strip().splitlines()[0] if why.strip() else "unknown error"
    return ScreeningError(
        [
            error(
                "PR527",
                f"Spark cannot read `{printable(path, newlines=False)}`: "
                f"{printable(first, newlines=False)}",
                None,
                path=path,
                help="give a path Spark reads holding patients.parquet (and observations.parquet), "
                "or one Parquet file of patients (docs/screening.md#the-columnar-layout)",
            )
        ]
    )


def open_layout(data: Any, options: Mapping[str, Any] | None = None) -> SparkLayout:
    """The layout at `data` (a path or URL) as two temporary views of the session; raises
    `ScreeningError` (PR526, PR527)."""
    path = os.fspath(data)
    options = dict(options or {})
    for name in options:
        if name not in OPTIONS:
            raise bad_option("spark", name, "not an option of the Spark engine", _takes())
    spark = options.get("session")
    if spark is None:
        master = options.get("master")
        if master is not None and not isinstance(master, str):
            raise bad_option("spark", "master", f"`{master}` is not a master URL", _takes())
        try:
            spark = session(master)
        except ScreeningError:
            raise
        except Exception as exc:  # Spark cannot start: no Java, a master it cannot reach
            raise engine_failed(
                "Spark", str(exc), "check the master URL and the Java runtime"
            ) from None
    elif not hasattr(spark, "read") or not hasattr(spark, "sql"):
        raise bad_option("spark", "session", "not a SparkSession", _takes())
    layout = SparkLayout(spark)
    base = path.rstrip("/")
    patients = layout.read(base + "/patients.parquet")
    if patients is None:
        patients = layout.read(path)
        if patients is None:
            raise cannot_read(path, layout.why or "no patients.parquet there")
        observations = None
    else:
        observations = layout.read(base + "/observations.parquet")
    layout.view(layout.patients, patients, ORDER)
    if observations is not None:
        layout.observations = f"protocol_rules_observations_{layout.tag}"
        layout.view(layout.observations, observations, SEQUENCE)
    return layout


def _takes() -> str:
    return takes("spark", OPTIONS)


def _kind(type_: str) -> str:
    kinds = {"boolean": BOOLEAN, "string": TEXT, "date": DATE}
    if type_ in kinds:
        return kinds[type_]
    if type_.startswith("timestamp"):
        return TIMESTAMP
    if type_.startswith(_NUMBERS):
        return NUMBER
    return OTHER


class SparkLayout:
    """The layout as temporary views of a Spark session (see `inplace.Backend`)."""

    dialect = "spark"

    def __init__(self, spark: Any) -> None:
        self.spark = spark
        self.tag = uuid.uuid4().hex[:12]
        self.patients = f"protocol_rules_patients_{self.tag}"
        self.observations: str | None = None
        self.why: str | None = None

    def read(self, path: str) -> Any:
        """The Parquet at `path` (a file or a folder of parts), or None if Spark cannot read it."""
        try:
            return self.spark.read.parquet(path)
        except Exception as exc:  # AnalysisException: no such path, not Parquet
            self.why = str(exc)
            return None

    def view(self, name: str, frame: Any, order: str) -> None:
        """`frame` as the view `name`, with its input order as the column `order`: the file's
        place among the data's files (sorted by path) times 2**40, plus the row's index in its
        file — a number, so sorting and windows compare longs, not long texts. Beyond
        `MAP_FILES` files, the path and the index as one text (sorts the same way)."""
        functions = require_pyspark().functions
        path, row = functions.col("_metadata.file_path"), functions.col("_metadata.row_index")
        files = sorted(r[0] for r in frame.select(path.alias("f")).distinct().collect())
        if len(files) <= MAP_FILES:
            places = functions.create_map(
                *(functions.lit(x) for n, f in enumerate(files) for x in (f, n))
            )
            place = functions.lit(0) if len(files) <= 1 else functions.element_at(places, path)
            position = place.cast("long") * functions.lit(2**40) + row.cast("long")
        else:
            position = functions.concat(
                path, functions.lit(":"), functions.lpad(row.cast("string"), 20, "0")
            )
        frame.select("*", position.alias(order)).createOrReplaceTempView(name)

    def close(self) -> None:
        for name in (self.patients, self.observations):
            if name is not None:
                self.spark.catalog.dropTempView(name)

    # ------------------------------------------------------------------ inplace.Backend

    def quote(self, name: str) -> str:
        return quoted(name)

    def columns(self, table: str) -> list[tuple[str, str]]:
        frame = self.spark.table(self.quote(table))
        return [(n, _kind(t)) for n, t in frame.dtypes if n not in (ORDER, SEQUENCE)]

    def empty(self, table: str) -> pl.DataFrame:
        frame = self.spark.table(self.quote(table)).drop(ORDER, SEQUENCE).limit(0)
        return pl.from_arrow(frame.toArrow())  # type: ignore[return-value]

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return [tuple(row) for row in self.spark.sql(sql).collect()]
        except Exception as exc:  # Spark raises its own kinds, over Py4J or Connect
            raise cannot_read("the layout tables", str(exc)) from None

    def run(self, query: SqlQuery) -> pl.DataFrame:
        try:
            return run_stages(self.spark, query)
        except Exception as exc:
            raise engine_failed(
                "Spark", str(exc), "check the layout's column types and the session's resources"
            ) from None

    def rows_of(self, ids: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        wanted = f"protocol_rules_ids_{self.tag}"
        frame = pl.DataFrame({"patient_id": ids})
        schema = self.spark.table(self.quote(self.patients)).select("patient_id").schema
        self.spark.createDataFrame(frame.to_arrow(), schema=schema).createOrReplaceTempView(wanted)
        try:
            among = f"patient_id IN (SELECT patient_id FROM {self.quote(wanted)})"
            patients = self.spark.sql(
                f"SELECT * FROM {self.quote(self.patients)} WHERE {among} "
                f"ORDER BY {self.quote(ORDER)}"
            ).drop(ORDER)
            found = pl.from_arrow(patients.toArrow())
            observations = None
            if self.observations is not None:
                rows = self.spark.sql(
                    f"SELECT * FROM {self.quote(self.observations)} WHERE {among} "
                    f"ORDER BY {self.quote(SEQUENCE)}"
                ).drop(SEQUENCE)
                observations = pl.from_arrow(rows.toArrow())
        finally:
            self.spark.catalog.dropTempView(wanted)
        return found, observations  # type: ignore[return-value]
