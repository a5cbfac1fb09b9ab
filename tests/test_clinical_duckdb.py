"""A DuckDB CDM whose columns have their CDM types: DuckDB computes the events
(`sources.omop_duckdb`), and they are the events the text path (CSV) gives — the same records,
the same skipped rows, the same screening."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from protocol_rules import load_data_map, load_protocol
from protocol_rules.sources import omop_layout, omop_patients

from .test_screening import assert_agree

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "examples" / "omop-synthea6"
SYNTHEA = Path("/work/shared/data/omop-synthea27nj/Synthea27Nj_5.4.zip")
TABLES = ("PERSON", "MEASUREMENT", "CONDITION_OCCURRENCE", "CONCEPT", "CONCEPT_ANCESTOR")
BAD = [  # creatinine rows the adapter must skip and report, as from the CSV
    "90000001,1,3016723,2020-01-01,2020-01-01 08:00:00,,mg/dL,8840",  # no value
    "90000002,1,3016723,2020-01-02,2020-01-02 08:00:00,1.4,mg,0",  # not a concentration
    "90000003,1,3016723,2020-01-03,,1.3,,8840",  # unit from unit_concept_id, time from the date
    "90000004,1,3016723,2020-01-04,2020-01-04 08:00:00,1.2,  ,0",  # no unit at all
]


@pytest.fixture(scope="module")
def csvs(tmp_path_factory: Any) -> Path:
    """The CDM as CSV files (the Synthea27Nj sample if present, else six of its persons), with
    a few bad creatinine rows added."""
    folder = tmp_path_factory.mktemp("cdm")
    if SYNTHEA.exists():
        with zipfile.ZipFile(SYNTHEA) as zipped:
            for table in TABLES:
                (folder / f"{table}.csv").write_bytes(zipped.read(f"{table}.csv"))
    else:
        for table in TABLES:
            (folder / f"{table}.csv").write_bytes((SMALL / f"{table}.csv").read_bytes())
    header = (folder / "MEASUREMENT.csv").read_text().splitlines()[0].split(",")
    keep = [
        "measurement_id",
        "person_id",
        "measurement_concept_id",
        "measurement_date",
        "measurement_datetime",
        "value_as_number",
        "unit_source_value",
        "unit_concept_id",
    ]
    with (folder / "MEASUREMENT.csv").open("a") as out:
        for line in BAD:
            cells = dict(zip(keep, line.split(","), strict=True))
            out.write(",".join(cells.get(h, "") for h in header) + "\n")
    return folder


@pytest.fixture(scope="module")
def typed(csvs: Path, tmp_path_factory: Any) -> Path:
    import duckdb

    database = tmp_path_factory.mktemp("duckdb") / "cdm.duckdb"
    with duckdb.connect(str(database)) as db:
        for csv in csvs.glob("*.csv"):
            db.execute(f"create table {csv.stem.lower()} as select * from read_csv_auto('{csv}')")
        kinds = dict(
            db.sql("select column_name, column_type from (describe measurement)").fetchall()
        )
    assert kinds["measurement_datetime"] == "TIMESTAMP" and kinds["person_id"] == "BIGINT"
    return database


@pytest.fixture(scope="module")
def nct() -> Any:
    return load_protocol(ROOT / "protocols" / "nct04194671.rules")


@pytest.mark.parametrize("as_of", ["2022-10-10", "2020-01-05"])
def test_typed_duckdb_gives_the_csv_records_and_problems(
    nct: Any, csvs: Path, typed: Path, as_of: str, monkeypatch: Any
) -> None:
    from protocol_rules.sources import omop, omop_duckdb

    computed_by_duckdb: list[str] = []

    def spy(*args: Any) -> Any:
        frame = omop_duckdb.duckdb_events(*args)
        if frame is not None:
            computed_by_duckdb.append(args[1])
        return frame

    monkeypatch.setattr(omop, "duckdb_events", spy)
    data_map = load_data_map(ROOT / "protocols" / "nct04194671.omop.toml", nct)
    text: list[Any] = []
    want = list(omop_patients(csvs, data_map, as_of=as_of, problems=text))
    computed: list[Any] = []
    assert list(omop_patients(typed, data_map, as_of=as_of, problems=computed)) == want
    assert computed_by_duckdb == ["condition_occurrence", "measurement"]
    assert [(d.code, d.path, d.message) for d in computed] == [
        (d.code, d.path, d.message) for d in text
    ]
    skipped = {d.path for d in text}
    assert {f"MEASUREMENT measurement_id={i}" for i in (90000001, 90000002, 90000004)} <= skipped
    third = [o for o in want[0]["serum_creatinine"] if o["at"] == "2020-01-03T00:00:00Z"]
    assert third == [{"value": 1.3, "at": "2020-01-03T00:00:00Z", "unit": "mg/dL"}]
    layout_problems: list[Any] = []
    layout = omop_layout(typed, data_map, as_of=as_of, problems=layout_problems)
    assert sorted((d.code, d.path) for d in layout_problems) == sorted(
        (d.code, d.path) for d in text
    )
    assert_agree(nct, want, layout)


def test_typed_duckdb_persons_are_the_csv_persons(csvs: Path, typed: Path) -> None:
    import duckdb

    from protocol_rules.sources import omop
    from protocol_rules.sources.omop_duckdb import duckdb_persons

    with omop._Cdm(csvs) as source:
        want = omop._person_frame(source)
    with omop._Cdm(typed) as source:
        assert source.connection is not None
        computed = duckdb_persons(source.connection, omop._fetch_from(source.connection))
        assert computed is not None
        assert computed.to_dicts() == want.to_dicts()
    with duckdb.connect() as text:  # text columns: the caller reads text
        text.execute("create table person as select '1' as person_id")
        assert duckdb_persons(text, None) is None
