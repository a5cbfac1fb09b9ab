"""Back end: the SQL query of `engines.sql`, in sqlglot's Spark dialect, run on a Spark session.

`compile_protocol(checked)` follows the engine contract of `protocol_rules.screening`, as
`engines.duckdb` does: ``run(population)`` hands the normalised `Population` to Spark as two
temporary views (`sql_population`), runs the protocol's query in its engine form and returns
the frame `Screening` reads.

The session is the caller's: the active `SparkSession` when there is one (create yours with
any master or cluster URL before screening), else one created on ``local[2]`` (or the master
in ``PROTOCOL_RULES_SPARK_MASTER``). The project never writes its own distributed runtime.
"""

from __future__ import annotations

import math
import os
import re
import uuid
from typing import Any

import polars as pl

from ..check import CheckedProtocol
from ..sources.population import Population
from . import require
from .sql import SqlQuery
from .sql_population import PopulationQuery, population_tables, results_frame

MASTER_VARIABLE = "PROTOCOL_RULES_SPARK_MASTER"
#: Whole-stage code generation is turned off for a part of a plan whose generated method is
#: longer than this many bytes of bytecode: HotSpot does not compile a method over 8,000 bytes
#: (``HugeMethodLimit``), so Spark's default (65,535) left the protocol's wide stages running
#: as interpreted bytecode, three times slower than with the limit (NCT04194671's typed
#: observations at 1M patients: 83 s, 27 s with it). Set for the run only, then restored.
HUGE_METHOD, HUGE_METHOD_LIMIT = "spark.sql.codegen.hugeMethodLimit", 8000


def require_pyspark() -> Any:
    """The `pyspark.sql` module, or a `ScreeningError` (PR524) saying how to install it."""
    require("pyspark", "spark")
    return require("pyspark.sql", "spark")


def session(master: str | None = None) -> Any:
    """The active Spark session, or a new one on `master` (default ``local[2]``)."""
    sql = require_pyspark()
    active = sql.SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    master = master or os.environ.get(MASTER_VARIABLE, "local[2]")
    builder = sql.SparkSession.builder.master(master).appName("protocol-rules")
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    builder = builder.config("spark.sql.ansi.enabled", "false")
    return builder.getOrCreate()


class CompiledProtocol:
    """What `compile_protocol` returns: the protocol's Spark SQL, ready for any population."""

    def __init__(self, checked: CheckedProtocol) -> None:
        require("sqlglot", "spark")
        require_pyspark()
        self.checked = checked
        self.queries = PopulationQuery(checked, "spark")
        self.queries.check()  # refuse now what cannot be compiled (PR520-PR522)
        self._polars: Any = None

    def sql(self, population: Population | None = None) -> str:
        """The Spark SQL query `run` executes over `population`'s views."""
        return self.queries.for_population(population).sql()

    def run(self, population: Population, spark: Any = None) -> pl.DataFrame:
        """One row per patient, in input order: the patients' columns, ``c0``, ``c1``, … and
        ``:missing`` (see `screening`)."""
        spark = spark or session()
        query = self.queries.for_population(population)
        views: dict[str, str] = {}
        try:
            for name, table in population_tables(population, self.checked).items():
                views[name] = f"protocol_rules_{uuid.uuid4().hex[:12]}_{name}"
                spark.createDataFrame(table).createOrReplaceTempView(views[name])
            frame = run_stages(spark, query, views)
        finally:
            for view in views.values():
                spark.catalog.dropTempView(view)
        return results_frame(population, query, frame)

    def near_misses(self, frame: Any) -> Any:
        """Near misses read the frame's fact columns: the polars engine's expressions."""
        if self._polars is None:
            from .polars import compile_protocol as compile_polars

            self._polars = compile_polars(self.checked)
        return self._polars.near_misses(frame)


def run_stages(spark: Any, query: SqlQuery, tables: dict[str, str] | None = None) -> pl.DataFrame:
    """Run `query` on `spark` one stage at a time (`SqlQuery.stages`: Spark plans a deep chain
    of CTEs slowly), each kept (`localCheckpoint`) with only the columns later stages read, as
    a temporary view dropped at the end. Returns the final SELECT's result in the query's
    order, sorted by polars (``input_row``, else ``patient_id``) rather than by Spark. The
    views' names are this run's own (a user's views are never replaced); `tables` names the
    views that hold the query's input tables."""
    functions = require_pyspark().functions
    prefix = f"protocol_rules_{uuid.uuid4().hex[:12]}_"
    parts, final = query.stages(ordered=False, prefix=prefix, tables=tables)
    views: list[str] = []
    before = spark.conf.get(HUGE_METHOD, None)
    spark.conf.set(HUGE_METHOD, str(HUGE_METHOD_LIMIT))
    try:
        for stage in parts:
            frame = spark.sql(stage.sql)
            kept = stage.keep(frame.columns)
            if len(kept) < len(frame.columns):
                frame = frame.select(*(functions.col(quoted(c)) for c in kept))
            frame.localCheckpoint().createOrReplaceTempView(stage.name)
            views.append(stage.name)
        result = collect(spark, spark.sql(final))
        return result.sort("input_row" if "input_row" in result.columns else "patient_id")
    finally:
        for view in views:
            spark.catalog.dropTempView(view)
        if before is None:
            spark.conf.unset(HUGE_METHOD)
        else:
            spark.conf.set(HUGE_METHOD, before)


def collect(spark: Any, frame: Any) -> pl.DataFrame:
    """`frame` brought to the driver as polars: computed once (`localCheckpoint`), then as
    Arrow in as many slices (by a hash of the first column) as keep each well under the
    session's ``spark.driver.maxResultSize`` (default 1 GB; ten million patients' results are
    about 2 GB, which Spark refuses to send in one piece)."""
    functions = require_pyspark().functions
    kept = frame.localCheckpoint()
    rows = kept.count()
    width = sum(64 if t == "string" else 8 for _, t in kept.dtypes)
    limit = result_limit(spark)
    slices = 1 if limit <= 0 else max(1, math.ceil(4 * rows * width / limit))
    if slices == 1:
        return pl.from_arrow(kept.toArrow())  # type: ignore[return-value]
    key = functions.pmod(functions.xxhash64(functions.col(quoted(kept.columns[0]))), slices)
    parts = [pl.from_arrow(kept.filter(key == k).toArrow()) for k in range(slices)]
    return pl.concat(parts, how="vertical_relaxed")  # type: ignore[arg-type]


def result_limit(spark: Any) -> int:
    """The session's ``spark.driver.maxResultSize`` in bytes (0: no limit; 1 GB if unknown)."""
    try:
        text = spark.sparkContext.getConf().get("spark.driver.maxResultSize", "1g")
    except Exception:  # Spark Connect has no SparkContext: its own default
        text = "1g"
    found = re.fullmatch(r"\s*(\d+)\s*([bkmgtp]?)b?\s*", str(text).lower())
    if found is None:
        return 2**30
    return int(found.group(1)) * 1024 ** "bkmgtp".index(found.group(2) or "b")


def quoted(name: str) -> str:
    """`name` as a Spark identifier."""
    return "`" + name.replace("`", "``") + "`"


def compile_protocol(checked: CheckedProtocol) -> CompiledProtocol:
    """Compile a checked protocol for Spark; raises `ScreeningError` (PR520-PR524)."""
    return CompiledProtocol(checked)
