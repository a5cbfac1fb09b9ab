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

import os
from typing import Any

import polars as pl

from ..check import CheckedProtocol
from ..sources.population import Population
from . import require
from .sql_population import PopulationQuery, population_tables, results_frame

MASTER_VARIABLE = "PROTOCOL_RULES_SPARK_MASTER"


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
        self.stages = self.queries.for_population(None).stages()
        self._polars: Any = None

    def sql(self, population: Population | None = None) -> str:
        """The Spark SQL query `run` executes over `population`'s views."""
        return self.queries.for_population(population).sql()

    def run(self, population: Population, spark: Any = None) -> pl.DataFrame:
        """One row per patient, in input order: the patients' columns, ``c0``, ``c1``, … and
        ``:missing`` (see `screening`)."""
        spark = spark or session()
        query = self.queries.for_population(population)
        views = []
        try:
            for name, table in population_tables(population, self.checked).items():
                spark.createDataFrame(table).createOrReplaceTempView(name)
                views.append(name)
            stages, final = self.stages
            for name, text in stages:  # one stage at a time: Spark plans deep chains slowly
                spark.sql(text).localCheckpoint().createOrReplaceTempView(name)
                views.append(name)
            arrow = spark.sql(final).toArrow()
        finally:
            for view in views:
                spark.catalog.dropTempView(view)
        return results_frame(population, query, pl.from_arrow(arrow))

    def near_misses(self, frame: Any) -> Any:
        """Near misses read the frame's fact columns: the polars engine's expressions."""
        if self._polars is None:
            from .polars import compile_protocol as compile_polars

            self._polars = compile_polars(self.checked)
        return self._polars.near_misses(frame)


def compile_protocol(checked: CheckedProtocol) -> CompiledProtocol:
    """Compile a checked protocol for Spark; raises `ScreeningError` (PR520-PR524)."""
    return CompiledProtocol(checked)
