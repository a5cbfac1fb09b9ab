"""Screening where the data lives on DuckDB (`engines.inplace`, `engines.duckdb_inplace`).

A layout folder, a Parquet / CSV file, a DuckDB database file or connection screened with
``engine="duckdb"`` is read by DuckDB, never by the polars door; the `Screening` must be the
polars engine's, row for row — frame, counts, attrition, what-if, near misses, errors, writers,
`explain` — malformed values included. A memory limit below the data's size still screens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

import duckdb
import polars as pl
from click.testing import CliRunner

from protocol_rules import load_protocol
from protocol_rules.cli import cli
from protocol_rules.engines import ScreeningError
from protocol_rules.sources import to_layout, write_layout

from .test_screening import generate, malformed, with_ids

ROOT = Path(__file__).resolve().parents[1]
NCT = ROOT / "protocols" / "nct04194671.rules"
STAMP = "2026-03-01T08:00:00Z"


@pytest.fixture(scope="module")
def nct() -> Any:
    return load_protocol(NCT)


def records_with_errors(nct: Any, n: int, seed: int) -> list[dict[str, Any]]:
    """`n` generated patients and the malformed records of `test_screening` (those whose facts
    the protocol declares: an undeclared column is refused for the whole layout)."""
    names = {f.name for f in nct.facts} | {"as_of"}
    bad = [{"as_of": STAMP, **r} for r in malformed() if set(r) <= names]
    return with_ids(generate(n, seed=seed) + bad)


@pytest.fixture(scope="module")
def folder(nct: Any, tmp_path_factory: Any) -> Path:
    path = tmp_path_factory.mktemp("inplace") / "population"
    write_layout(to_layout(records_with_errors(nct, 1500, seed=31)), str(path), "parquet")
    return path


@pytest.fixture(scope="module")
def both(nct: Any, folder: Path) -> tuple[Any, Any]:
    return nct.screen(str(folder)), nct.screen(str(folder), engine="duckdb")


def test_in_place_gives_the_polars_engines_screening(both: tuple[Any, Any]) -> None:
    by_polars, in_place = both
    assert in_place.engine == "duckdb"
    assert in_place.frame.equals(by_polars.frame)
    assert "error" in in_place.status_counts() and in_place.status_counts()["error"] > 0
    assert in_place.counts().equals(by_polars.counts())
    assert in_place.attrition().equals(by_polars.attrition())
    assert in_place.errors().equals(by_polars.errors())
    first = by_polars.protocol.criteria[0].id
    for without in ((), (first,)):
        mine, theirs = in_place.what_if(without), by_polars.what_if(without)
        assert mine.counts.equals(theirs.counts) and mine.gains.equals(theirs.gains)
        assert mine.statuses.equals(theirs.statuses)


def test_near_misses_in_place_are_the_polars_engines(both: tuple[Any, Any]) -> None:
    by_polars, in_place = both
    for most in (1, 2):
        found = in_place.near_misses(max_criteria=most)
        assert found.equals(by_polars.near_misses(max_criteria=most))
    assert found.height > 0


def test_explain_reads_one_patients_rows(both: tuple[Any, Any]) -> None:
    by_polars, in_place = both
    good = by_polars.frame.filter(pl.col("status") != "error").get_column("patient_id")
    for patient in (good[0], good[7], good[-1]):
        assert in_place.record(patient) == by_polars.record(patient)
        assert in_place.explain(patient).to_dict() == by_polars.explain(patient).to_dict()


def test_writers_and_report_are_the_same(both: tuple[Any, Any], tmp_path: Path) -> None:
    by_polars, in_place = both
    for name in ("a", "b"):
        screening = by_polars if name == "a" else in_place
        screening.write(tmp_path / f"{name}.parquet")
        screening.write(tmp_path / f"{name}.csv")
        screening.report(tmp_path / f"{name}.html")
    assert pl.read_parquet(tmp_path / "a.parquet").equals(pl.read_parquet(tmp_path / "b.parquet"))
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    report = (tmp_path / "b.html").read_text(encoding="utf-8")
    assert by_polars.protocol.id in report and "<html" in report.lower()


def test_in_place_never_reads_the_population_into_python(
    nct: Any, folder: Path, both: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import protocol_rules.sources as sources
    import protocol_rules.sources.layout as layout

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the population was read into Python")

    monkeypatch.setattr(sources, "read", refuse)
    monkeypatch.setattr(sources, "read_layout", refuse)
    monkeypatch.setattr(layout, "read_layout", refuse)
    screening = nct.screen(str(folder), engine="duckdb")
    assert screening.frame.equals(both[0].frame)


def test_under_a_memory_limit_patients_are_screened_in_groups(
    nct: Any, folder: Path, both: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of core: under DuckDB's memory limit the patients are screened in groups (the
    data's size over the limit; a group that runs out of memory is split in two), spilling to
    the temporary directory, with the same answers. DuckDB needs some tens of MB for this
    query whatever the data, so the limit below the data's size is measured at scale
    (1,000,000 patients under 200MB, docs/sql.md); here the groups are forced."""
    from protocol_rules.engines import duckdb_inplace

    groups: list[tuple[int, int]] = []
    batch_views, run = duckdb_inplace.DuckDBLayout._batch_views, duckdb_inplace.DuckDBLayout._run

    def counted(self: Any, k: int, n: int) -> None:
        groups.append((k, n))
        batch_views(self, k, n)

    def short_of_memory_once(self: Any, text: str, split: bool = False) -> Any:
        if groups == [(0, 4)]:  # the first group runs out of memory: split in two
            groups.append((-1, -1))
            raise duckdb_inplace._OutOfMemory()
        return run(self, text, split)

    monkeypatch.setattr(duckdb_inplace, "SPREAD", 10_000)
    monkeypatch.setattr(duckdb_inplace.DuckDBLayout, "_batch_views", counted)
    monkeypatch.setattr(duckdb_inplace.DuckDBLayout, "_run", short_of_memory_once)
    monkeypatch.setattr(duckdb_inplace, "MOST_GROUPS", 64)
    spill = tmp_path / "spill"
    spill.mkdir()
    limit = {"memory_limit": "200MB", "temp_directory": str(spill), "threads": 1}
    with monkeypatch.context() as m:
        m.setattr(duckdb_inplace.DuckDBLayout, "_data_size", lambda self: 60_000)
        screening = nct.screen(str(folder), engine="duckdb", engine_options=limit)
    assert screening.frame.equals(both[0].frame)
    assert [g for g in groups if g != (-1, -1)] == [(0, 4), (0, 8), (4, 8), (1, 4), (2, 4), (3, 4)]


def test_a_database_file_and_a_connection_screen_in_place(
    nct: Any, folder: Path, both: tuple[Any, Any], tmp_path: Path
) -> None:
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as connection:
        for table in ("patients", "observations"):
            source = str(folder / f"{table}.parquet")
            connection.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet(?)", [source])
    from_file = nct.screen(str(database), engine="duckdb")
    assert from_file.frame.equals(both[0].frame)
    connection = duckdb.connect(str(database), read_only=True)
    try:
        from_connection = nct.screen(connection, engine="duckdb")
        assert from_connection.frame.equals(both[0].frame)
        patient = both[0].frame.get_column("patient_id")[3]
        assert from_connection.explain(patient).to_dict() == both[0].explain(patient).to_dict()
    finally:
        connection.close()


def test_bad_values_in_a_csv_layout_are_the_polars_engines_errors(nct: Any, tmp_path: Path) -> None:
    """Text in a number column, an unknown unit, an impossible date: the same per-patient
    status and code (and message) in place as the polars engine gives."""
    records = with_ids(generate(200, seed=43))
    write_layout(to_layout(records), str(tmp_path / "population"), "csv")
    patients = pl.read_csv(tmp_path / "population" / "patients.csv", infer_schema=False)
    assert {"age", "platelet_count.unit", "as_of"} <= set(patients.columns)
    bad = {
        1: ("age", "fifty"),
        2: ("platelet_count.unit", "furlongs"),
        3: ("as_of", "yesterday"),
        4: ("age", " 61 "),
        5: ("age", "1e1"),
    }
    for row, (column, value) in bad.items():
        cells = patients.get_column(column).to_list()
        cells[row] = value
        patients = patients.with_columns(pl.Series(column, cells, dtype=pl.String))
    patients.write_csv(tmp_path / "population" / "patients.csv")
    by_polars = nct.screen(str(tmp_path / "population"))
    in_place = nct.screen(str(tmp_path / "population"), engine="duckdb")
    assert in_place.frame.equals(by_polars.frame)
    codes = in_place.frame.get_column("error_code").to_list()
    assert codes[1] == "PR403" and codes[2] == "PR406" and codes[3] == "PR407"


def test_the_layouts_shape_is_checked_as_the_polars_door_checks_it(
    nct: Any, tmp_path: Path
) -> None:
    records = with_ids(generate(20, seed=44))
    layout = to_layout(records)
    twice = pl.concat([layout.patients, layout.patients.head(1)])
    write_layout(type(layout)(twice, layout.observations), str(tmp_path / "twice"), "parquet")
    unknown = layout.patients.with_columns(pl.lit(1).alias("agee"))
    write_layout(type(layout)(unknown, layout.observations), str(tmp_path / "unknown"), "parquet")
    for name, code in (("twice", "PR512"), ("unknown", "PR510")):
        for engine in ("polars", "duckdb"):
            with pytest.raises(ScreeningError) as info:
                nct.screen(str(tmp_path / name), engine=engine)
            assert info.value.diagnostics[0].code == code, (name, engine)


def test_unreadable_data_and_bad_options_are_diagnostics(nct: Any, tmp_path: Path) -> None:
    cases: list[tuple[Any, dict[str, Any] | None, str]] = [
        (tmp_path / "nowhere", None, "PR525"),
        (tmp_path, None, "PR525"),  # a folder without patients.parquet
        (duckdb.connect(), None, "PR525"),  # no table `patients`
    ]
    folder = tmp_path / "population"
    write_layout(to_layout(with_ids(generate(5, seed=45))), str(folder), "parquet")
    cases += [
        (folder, {"memory_limt": "1GB"}, "PR526"),
        (folder, {"memory_limit": "lots"}, "PR526"),
        (folder, {"threads": 0}, "PR526"),
    ]
    for data, options, code in cases:
        with pytest.raises(ScreeningError) as info:
            nct.screen(data if not isinstance(data, Path) else str(data), engine="duckdb",
                       engine_options=options)  # fmt: skip
        assert info.value.diagnostics[0].code == code, (data, options)
    with pytest.raises(ScreeningError) as info:
        nct.screen(str(folder), engine_options={"memory_limit": "1GB"})
    assert info.value.diagnostics[0].code == "PR526"


def run(*args: str) -> Any:
    return CliRunner(env={"NO_COLOR": "1"}).invoke(cli, list(args), prog_name="protocol-rules")


def test_cli_screens_in_place_with_a_memory_limit(folder: Path, tmp_path: Path) -> None:
    polars_out, duckdb_out = tmp_path / "polars.parquet", tmp_path / "duckdb.parquet"
    by_polars = run("screen", str(NCT), str(folder), "--out", str(polars_out))
    in_place = run(
        "screen", str(NCT), str(folder), "--engine", "duckdb", "--memory-limit", "1GB",
        "--temp-directory", str(tmp_path), "--out", str(duckdb_out),
    )  # fmt: skip
    assert in_place.exit_code == 0, in_place.output
    assert in_place.stdout == by_polars.stdout
    assert pl.read_parquet(duckdb_out).equals(pl.read_parquet(polars_out))


def test_cli_errors_in_place_exit_1_without_a_traceback(folder: Path, tmp_path: Path) -> None:
    for args, code in (
        (["--memory-limit", "lots"], "PR526"),
        (["--threads", "0"], "PR526"),
        (["--memory-limit", "1MB"], "PR528"),  # out of memory: says to raise the limit
    ):
        result = run("screen", str(NCT), str(folder), "--engine", "duckdb", *args)
        assert result.exit_code == 1 and code in result.output, result.output
        assert "Traceback" not in result.output
    missing = run("screen", str(NCT), str(tmp_path / "nowhere"), "--engine", "duckdb")
    assert missing.exit_code == 1 and "PR525" in missing.output


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_a_missing_file_with_engine_options_says_the_file_is_missing(
    nct: Any, tmp_path: Path, engine: str
) -> None:
    """Engine options with a path where there is nothing: the reader's PR508 (no such file),
    not PR526 (an option that does not apply) — nothing is started to find that out."""
    options = {"memory_limit": "1GB"} if engine == "duckdb" else {"master": "local[1]"}
    with pytest.raises(ScreeningError) as info:
        nct.screen(str(tmp_path / "nowhere.jsonl"), engine=engine, engine_options=options)
    assert [d.code for d in info.value.diagnostics] == ["PR508"]
