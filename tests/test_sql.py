"""The protocol compiled to SQL (`engines.sql`) and run by DuckDB, against the interpreter.

The interpreter (`Protocol.evaluate`) is the reference. NCT04194671 is screened on DuckDB for
more than 5,000 patients drawn from the project's strategies (`protocol_rules.testing`), and
random protocols from `testing.protocols()` too: every row must agree with `evaluate` — status,
every criterion outcome, missing facts, the error of a malformed record. What the SQL compiler
cannot compile is refused when compiling, with a PR52x code, never screened another way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

import polars as pl
import sqlglot
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol_rules import ProtocolError, load_protocol, parse_protocol
from protocol_rules.cli import cli
from protocol_rules.engines import ScreeningError
from protocol_rules.engines.duckdb import compile_protocol, connect_layout, run_layout
from protocol_rules.engines.sql import compile_sql
from protocol_rules.sources import to_layout, write_layout
from protocol_rules.testing import patients, protocols

from .test_screening import (
    CI,
    KLEENE,
    drawn,
    expected,
    generate,
    kleene_records,
    malformed,
    recombined,
    screened,
    with_ids,
)
from .test_screening_calculation import CALC, grid
from .test_screening_windows import EDITION2

ROOT = Path(__file__).resolve().parents[1]
NCT = ROOT / "protocols" / "nct04194671.rules"
DRAWN = 1000 if CI else 250
MIXED = 6000 if CI else 5000
REFUSALS = {"PR520", "PR521", "PR522"}


def assert_agree(protocol: Any, records: list[dict[str, Any]], data: Any = None, **kw: Any) -> Any:
    """Screen `data` (default: the records) on DuckDB; every row must agree with `evaluate`."""
    screening = protocol.screen(records if data is None else data, engine="duckdb", **kw)
    frame = screening.frame
    assert frame.height == len(records), "rows in = rows out"
    wrong = []
    rows = screened(protocol, frame)
    for row, record in enumerate(records):
        record = {k: v for k, v in record.items() if k != "id"}
        want, got = expected(protocol, record), rows[row]
        if want != got:
            wrong.append((row, want, got))
    shown = "\n".join(f"row {r}:\n  evaluate {w}\n  duckdb   {g}" for r, w, g in wrong[:3])
    assert not wrong, f"{len(wrong)} of {len(records)} rows disagree:\n{shown}"
    return screening


@pytest.fixture(scope="module")
def nct() -> Any:
    return load_protocol(NCT)


# --------------------------------------------------------------------------- differential


def test_nct04194671_agrees_with_evaluate(nct: Any) -> None:
    """Drawn patients (unknowns, unit variety, window edges) and their recombinations."""
    pool = drawn(nct, DRAWN)
    records = pool + recombined(nct, pool, MIXED, seed=13)
    assert len(records) >= 5000
    screening = assert_agree(nct, with_ids(records))
    assert screening.engine == "duckdb"
    statuses = set(screening.frame.get_column("status").to_list())
    assert {"ineligible", "indeterminate"} <= statuses


def test_realistic_patients_and_the_columnar_layout_agree(nct: Any) -> None:
    records = generate(1500, seed=8)
    assert_agree(nct, with_ids(records))
    assert_agree(nct, records, to_layout(with_ids(records)))


def test_malformed_rows_are_errors_with_the_interpreters_code(nct: Any) -> None:
    good = generate(40, seed=4)
    records = good + [{"as_of": "2026-03-01T08:00:00Z", **r} for r in malformed()]
    screening = assert_agree(nct, with_ids(records))
    assert screening.frame.get_column("status").to_list().count("error") == len(malformed())


def test_kleene_edge_cases_agree_with_evaluate() -> None:
    protocol = parse_protocol(KLEENE)
    records = kleene_records()
    assert_agree(protocol, with_ids(records))


def test_calculations_agree_with_evaluate() -> None:
    """`if`, `unknown`, `first_known`, `^`, math functions and the kidney library: the grid of
    knots, then drawn patients and their recombinations."""
    protocol = parse_protocol(CALC)
    pool = drawn(protocol, DRAWN)
    records = grid() + pool + recombined(protocol, pool, MIXED - DRAWN, seed=14)
    assert_agree(protocol, with_ids(records))


def test_second_edition_windows_agree_with_evaluate() -> None:
    """Anchored windows, computed lengths, nested filters, `consecutive`, sums of filtered
    windows, `if`: drawn patients and their recombinations."""
    protocol = parse_protocol(EDITION2)
    pool = drawn(protocol, DRAWN)
    records = pool + recombined(protocol, pool, MIXED - DRAWN, seed=15)
    assert_agree(protocol, with_ids(records))


@settings(max_examples=20 if CI else 6, suppress_health_check=list(HealthCheck), deadline=None)
@given(protocols(), st.data())
def test_random_protocols_agree_or_are_refused(text: str, data: st.DataObject) -> None:
    try:
        protocol = parse_protocol(text)
    except ProtocolError:
        return
    try:
        compile_protocol(protocol.checked)
    except ScreeningError as exc:  # a construct the SQL compiler refuses, as it says
        assert {d.code for d in exc.diagnostics} <= REFUSALS
        return
    records = [data.draw(patients(protocol, absent=0.3)) for _ in range(12)]
    assert_agree(protocol, with_ids(records))


def test_counts_and_attrition_match_the_polars_engine(nct: Any) -> None:
    records = with_ids(generate(500, seed=9))
    on_duckdb, on_polars = nct.screen(records, engine="duckdb"), nct.screen(records)
    assert on_duckdb.counts().equals(on_polars.counts())
    assert on_duckdb.attrition().equals(on_polars.attrition())


# --------------------------------------------------------------------------- the printed SQL


@pytest.mark.parametrize(
    "dialect", ["duckdb", "spark", "postgres", "bigquery", "snowflake", "tsql"]
)
def test_printed_sql_parses_back(nct: Any, dialect: str) -> None:
    text = compile_sql(nct.checked, dialect).sql()
    tree = sqlglot.parse_one(text, read=dialect)
    assert tree.find(sqlglot.exp.With) is not None
    assert "patient_id" in text and "SELECT" in text


@pytest.mark.parametrize("dialect", ["postgres", "tsql", "bigquery"])
@pytest.mark.parametrize("name", ["CALC", "EDITION2"])
def test_printed_sql_of_calculations_and_windows_parses_back(name: str, dialect: str) -> None:
    """The calculation protocol and the second edition's windows print in every dialect; T-SQL
    and BigQuery have no NULLS LAST, which the running sum of a window asked for (it raised)."""
    protocol = parse_protocol({"CALC": CALC, "EDITION2": EDITION2}[name])
    text = compile_sql(protocol.checked, dialect).sql()
    tree = sqlglot.parse_one(text, read=dialect)
    assert tree.find(sqlglot.exp.With) is not None


def test_the_query_is_a_tree_of_named_stages(nct: Any) -> None:
    """One CTE per stage: the unit table, the observations, the patients' stages."""
    query = compile_sql(nct.checked, "duckdb")
    names = [cte.alias for cte in query.tree.args["with_"].expressions]
    assert names[0] == "unit_conversions"
    assert any(n.startswith("observations") for n in names)
    assert any(n.startswith("patients") for n in names)
    assert query.criteria == tuple(c.id for c in nct.criteria)


@pytest.mark.parametrize("name", ["NCT", "EDITION2"])
def test_the_stages_spark_runs_read_only_what_is_already_there(nct: Any, name: str) -> None:
    """`SqlQuery.stages()`: runs of CTEs read only by the next one share a stage (a Spark job
    each), and every stage reads only the input tables, earlier stages and its own CTEs."""
    protocol = nct if name == "NCT" else parse_protocol(EDITION2)
    query = compile_sql(protocol.checked, "spark")
    stages, final = query.stages()
    assert len(stages) < len(query.tree.args["with_"].expressions) / 2
    there = {"patients", "observations"}
    for stage, text in [*((s.name, s.sql) for s in stages), ("", final)]:
        tree = sqlglot.parse_one(text, read="spark")
        inner = {cte.alias.lower() for cte in tree.find_all(sqlglot.exp.CTE)}
        read = {t.name.lower() for t in tree.find_all(sqlglot.exp.Table)}
        assert read <= there | inner, (stage, read - there - inner)
        there.add(stage.lower())


def test_unknown_dialect_is_refused(nct: Any) -> None:
    with pytest.raises(ScreeningError) as info:
        compile_sql(nct.checked, "oracle")
    assert [d.code for d in info.value.diagnostics] == ["PR523"]
    assert "duckdb" in info.value.diagnostics[0].help


def test_criterion_named_like_a_result_column_is_refused() -> None:
    protocol = parse_protocol('protocol P\nfact a: boolean\ninclusion STATUS "clash": a\n')
    with pytest.raises(ScreeningError) as info:
        compile_protocol(protocol.checked)
    assert [d.code for d in info.value.diagnostics] == ["PR522"]


# --------------------------------------------------------------------------- data in place


def test_the_printed_query_run_by_duckdb_over_the_layout_agrees(nct: Any, tmp_path: Path) -> None:
    """What a warehouse runs: the layout's files read in place by DuckDB, the column types
    read from the data, the unit table derived from the data's units; every row agrees with
    `evaluate` (status, outcomes, missing facts; the code of a malformed record)."""
    records = generate(400, seed=21) + [
        {"as_of": "2026-03-01T08:00:00Z", **bad} for bad in malformed()[:7]
    ]
    write_layout(to_layout(with_ids(records)), str(tmp_path / "population"), "parquet")
    connection = connect_layout(str(tmp_path / "population"))
    query, frame = run_layout(nct.checked, connection)
    assert {r.unit for r in query.units.rows} >= {"umol/L"}  # derived from the data
    wrong = []
    for row, record in enumerate(records):
        got = frame.row(row, named=True)
        status, outcomes, missing, code, _ = expected(nct, record)
        if status == "error":
            mine: Any = (got["status"], got["error_code"])
            want: Any = (status, code)
        else:
            mine = (got["status"], {c.id: got[c.id] for c in nct.criteria}, got["missing_facts"])
            want = (status, outcomes, ";".join(missing))
        if mine != want:
            wrong.append((row, want, mine))
    assert not wrong, f"{len(wrong)} of {len(records)} rows disagree, first: {wrong[:2]}"


def run(*args: str) -> Any:
    return CliRunner(env={"NO_COLOR": "1"}).invoke(cli, list(args), prog_name="protocol-rules")


@pytest.mark.parametrize("dialect", ["postgres", "tsql", "spark"])
def test_cli_prints_sql_that_parses_back(dialect: str) -> None:
    result = run("sql", str(NCT), "--dialect", dialect, "--unit", "serum_creatinine=umol/L")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("-- NCT04194671")
    sqlglot.parse_one(result.output, read=dialect)
    assert "'umol/L'" in result.output


def test_cli_runs_the_query_over_a_layout_folder(tmp_path: Path) -> None:
    records = with_ids(generate(200, seed=5))
    write_layout(to_layout(records), str(tmp_path / "population"), "parquet")
    out = tmp_path / "results.parquet"
    result = run("sql", str(NCT), "--run", str(tmp_path / "population"), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "200 patients screened" in result.output
    assert pl.read_parquet(out).height == 200


def test_cli_errors_are_diagnostics(tmp_path: Path) -> None:
    missing = run("sql", str(NCT), "--run", str(tmp_path / "nowhere"))
    assert missing.exit_code == 1 and "PR525" in missing.output
    bad_unit = run("sql", str(NCT), "--unit", "age=furlong")
    assert bad_unit.exit_code == 1 and "PR525" in bad_unit.output
    assert "Traceback" not in missing.output + bad_unit.output


def test_a_duckdb_database_file_is_read_like_the_layout_folder(nct: Any, tmp_path: Path) -> None:
    import duckdb

    records = with_ids(generate(150, seed=6))
    folder = tmp_path / "population"
    write_layout(to_layout(records), str(folder), "parquet")
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as connection:
        for table in ("patients", "observations"):
            source = str(folder / f"{table}.parquet")
            connection.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet(?)", [source])
    from_files = run_layout(nct.checked, connect_layout(str(folder)))[1]
    from_database = run_layout(nct.checked, connect_layout(str(database)))[1]
    assert from_database.equals(from_files)


def test_a_missing_extra_is_a_diagnostic() -> None:
    from protocol_rules.engines import require

    with pytest.raises(ScreeningError) as info:
        require("no_such_module_for_protocol_rules", "sql")
    [diagnostic] = info.value.diagnostics
    assert diagnostic.code == "PR524" and "protocol-rules[sql]" in diagnostic.help


def test_a_window_as_long_as_time_since_never_is_unknown_as_in_evaluate() -> None:
    """Found by the random protocols: `over last time_since(d)` with `d` never overflows in
    `evaluate` (unknown); DuckDB counted every observation instead."""
    text = (
        "protocol NEVER\nfact age: series of one of age_a, age_b\n"
        'fact score: datetime or never past\ninclusion I1 "x":\n'
        "  count(age over last time_since(score)) >= 1\n"
    )
    protocol = parse_protocol(text)
    records = [
        {"as_of": "2020-12-15T00:00:00Z", "score": "never",
         "age": [{"at": "2020-12-14T18:59:47-05:00", "value": "age_b"}]},
        {"as_of": "2020-12-15T00:00:00Z", "score": "2020-12-01T00:00:00Z",
         "age": [{"at": "2020-12-14T18:59:47-05:00", "value": "age_b"}]},
    ]  # fmt: skip
    assert protocol.evaluate(records[0]).criterion("I1").outcome.value == "unknown"
    assert_agree(protocol, with_ids(records))
