"""Screening where the data lives on Spark (`engines.spark_inplace`): the layout's Parquet read
by `spark.read.parquet` from a path (a folder, ``file:``), never by the polars door; the
`Screening` must be the polars engine's, row for row. One session for every Spark test
(the ``spark`` fixture of conftest); one screen of a few hundred patients (Spark runs the
query one stage at a time, about a second a stage on these machines).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlglot")

import polars as pl

from protocol_rules import load_protocol
from protocol_rules.engines import ScreeningError
from protocol_rules.sources import to_layout, write_layout

from .test_screening import generate, malformed, with_ids

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[1]
NCT = ROOT / "protocols" / "nct04194671.rules"


@pytest.fixture(scope="module")
def nct() -> Any:
    return load_protocol(NCT)


@pytest.fixture(autouse=True)
def few_partitions(spark: Any) -> Any:
    """A few thousand patients need no more than a couple of shuffle partitions."""
    before = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "2")
    yield
    spark.conf.set("spark.sql.shuffle.partitions", before)


@pytest.fixture(scope="module")
def folder(nct: Any, tmp_path_factory: Any) -> Path:
    names = {f.name for f in nct.facts} | {"as_of"}
    bad = [{"as_of": "2026-03-01T08:00:00Z", **r} for r in malformed() if set(r) <= names]
    records = with_ids(generate(300, seed=51) + bad)
    path = tmp_path_factory.mktemp("spark") / "population"
    write_layout(to_layout(records), str(path), "parquet")
    return path


def test_spark_reads_the_layout_in_place_and_agrees_with_polars(
    spark: Any, nct: Any, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import protocol_rules.sources as sources

    by_polars = nct.screen(str(folder))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the population was read into Python")

    monkeypatch.setattr(sources, "read", refuse)
    in_place = nct.screen(
        "file://" + str(folder), engine="spark", engine_options={"session": spark}
    )
    assert in_place.engine == "spark"
    assert in_place.frame.equals(by_polars.frame)
    assert in_place.status_counts()["error"] > 0
    assert in_place.counts().equals(by_polars.counts())
    assert in_place.attrition().equals(by_polars.attrition())
    assert in_place.errors().equals(by_polars.errors())
    good = by_polars.frame.filter(pl.col("status") != "error").get_column("patient_id")
    assert in_place.explain(good[0]).to_dict() == by_polars.explain(good[0]).to_dict()


@pytest.mark.parametrize("numbered", [True, False], ids=["order-number", "order-text"])
def test_a_folder_of_part_files_screens_in_the_files_order(
    spark: Any, nct: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, numbered: bool
) -> None:
    """Parquet written by a warehouse is a folder of part files: the input order is the files'
    order (by path), then the rows' order in each — a number per row, or (beyond
    `MAP_FILES` files) the path and the index as one text; both give the polars order."""
    import protocol_rules.engines.spark_inplace as spark_inplace

    if not numbered:
        monkeypatch.setattr(spark_inplace, "MAP_FILES", 1)
    records = with_ids(generate(120, seed=52))
    whole = tmp_path / "whole"
    write_layout(to_layout(records), str(whole), "parquet")
    parts = tmp_path / "parts"
    for n, (start, stop) in enumerate([(0, 50), (50, 90), (90, 120)]):
        write_layout(to_layout(records[start:stop]), str(tmp_path / f"p{n}"), "parquet")
        for table in ("patients", "observations"):
            (parts / f"{table}.parquet").mkdir(parents=True, exist_ok=True)
            (tmp_path / f"p{n}" / f"{table}.parquet").rename(
                parts / f"{table}.parquet" / f"part-{n:05d}.parquet"
            )
    by_polars = nct.screen(str(whole))
    in_place = nct.screen(str(parts), engine="spark", engine_options={"session": spark})
    assert in_place.frame.get_column("patient_id").to_list() == [r["id"] for r in records]
    assert in_place.frame.equals(by_polars.frame)


def test_spark_errors_are_diagnostics(spark: Any, nct: Any, tmp_path: Path) -> None:
    with pytest.raises(ScreeningError) as info:
        nct.screen("file://" + str(tmp_path / "nowhere"), engine="spark")
    assert info.value.diagnostics[0].code == "PR527"
    with pytest.raises(ScreeningError) as info:
        nct.screen("file://" + str(tmp_path), engine="spark", engine_options={"memory_limit": 1})
    assert info.value.diagnostics[0].code == "PR526"


def test_cli_screens_on_spark_with_a_master(spark: Any, folder: Path, tmp_path: Path) -> None:
    """`protocol-rules screen … --engine spark --master local[2]`: the same printed summary
    and the same results file as the polars engine (the session of this master is the one
    already running)."""
    from click.testing import CliRunner

    from protocol_rules.cli import cli

    def run(*args: str) -> Any:
        return CliRunner(env={"NO_COLOR": "1"}).invoke(cli, list(args), prog_name="protocol-rules")

    polars_out, spark_out = tmp_path / "polars.parquet", tmp_path / "spark.parquet"
    by_polars = run("screen", str(NCT), str(folder), "--out", str(polars_out))
    on_spark = run(
        "screen", str(NCT), str(folder), "--engine", "spark", "--master", "local[2]",
        "--out", str(spark_out),
    )  # fmt: skip
    assert on_spark.exit_code == 0, on_spark.output
    assert on_spark.stdout == by_polars.stdout
    assert pl.read_parquet(spark_out).equals(pl.read_parquet(polars_out))
