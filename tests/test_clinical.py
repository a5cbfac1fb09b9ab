"""Clinical data through data maps (docs/clinical-data.md): the map's checks point at the TOML
file, the OMOP adapter gives the same series a direct SQL query over MEASUREMENT gives, CSV /
Parquet / DuckDB agree, bad rows are reported and skipped, FHIR Bundles give records, and the
same patient as an OMOP extract, a FHIR Bundle and a JSON record gets the same verdict."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from protocol_rules import DataMapError, load_data_map, load_protocol, parse_protocol
from protocol_rules.cli import main
from protocol_rules.datamap import parse_data_map
from protocol_rules.engines import ScreeningError
from protocol_rules.sources import (
    fhir_layout,
    fhir_patients,
    omop_layout,
    omop_patients,
    omop_terminology,
)

from .test_screening import assert_agree

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "examples" / "omop-synthea6"
BUNDLE = ROOT / "examples" / "fhir" / "nct04194671-bundle.json"
SYNTHEA = Path("/work/shared/data/omop-synthea27nj/Synthea27Nj_5.4.zip")
OMOP_MAP = ROOT / "protocols" / "nct04194671.omop.toml"
FHIR_MAP = ROOT / "protocols" / "nct04194671.fhir.toml"
CREATININE = ("3016723", "3051825")


@pytest.fixture(scope="module")
def nct() -> Any:
    return load_protocol(ROOT / "protocols" / "nct04194671.rules")


@pytest.fixture(scope="module")
def omop_map(nct: Any) -> Any:
    return load_data_map(OMOP_MAP, nct)


# --------------------------------------------------------------------------- the data map


def test_shipped_maps_load_and_list_what_stays_unknown(nct: Any) -> None:
    for path, model in ((OMOP_MAP, "omop"), (FHIR_MAP, "fhir")):
        data_map = load_data_map(path, nct)
        assert data_map.model == model
        assert {"age", "serum_creatinine", "platelet_count"} <= {f.fact for f in data_map.facts}
        assert "informed_consent" in data_map.unmapped
        assert [w.code for w in data_map.warnings] == ["PR811"]
    creatinine = load_data_map(OMOP_MAP, nct).fact("serum_creatinine")
    assert creatinine is not None
    assert creatinine.codes == ("OMOP#3016723", "OMOP#3051825") and creatinine.take == "all"


HEAD = 'data_map = 1\nprotocol = "NCT04194671"\nmodel = "omop"\n'


@pytest.mark.parametrize(
    ("text", "code", "line"),
    [
        ("data_map = 1\nmodel = \n", "PR801", 2),
        ('data_map = 2\nmodel = "omop"\n', "PR802", 1),
        (HEAD + '[facts.serum_creatinin]\nfrom = "measurement"\ncodes = [1]\n', "PR803", 4),
        ('data_map = 1\nprotocol = "OTHER"\nmodel = "omop"\n', "PR803", 2),
        ('data_map = 1\nmodel = "i2b2"\n', "PR804", 2),
        (HEAD + '[facts.lvef]\nfrom = "measurements"\ncodes = [3027172]\n', "PR804", 5),
        (HEAD + '[facts.lvef]\nfrom = "measurement"\ncode = [3027172]\n', "PR805", 6),
        (HEAD + '[facts.lvef]\nfrom = "measurement"\ncodes = [1]\ntake = "last"\n', "PR806", 7),
        (HEAD + '[facts.age]\nfrom = "person"\nfield = "dob"\n', "PR806", 6),
        (HEAD + '[facts.lvef]\nfrom = "measurement"\ncodes = [1]\ntake = "all"\n', "PR807", 7),
        (
            HEAD
            + '[facts.pregnant]\nfrom = "condition_occurrence"\ncodes = [1]\nwithin = "9 mo"\n',
            "PR808",
            7,
        ),
        (HEAD + '[facts.lvef]\nfrom = "measurement"\n', "PR809", 4),
        (HEAD + '[facts.lvef]\nfrom = "measurement"\ncodes = ["LOINC#10230-2"]\n', "PR810", 6),
    ],
)
def test_data_map_errors_point_at_the_toml_line(nct: Any, text: str, code: str, line: int) -> None:
    with pytest.raises(DataMapError) as caught:
        parse_data_map(text, nct, "map.toml")
    first = caught.value.diagnostics[0]
    assert (first.code, first.span.line if first.span else None) == (code, line)
    assert first.span is not None and first.span.source.name == "map.toml"
    assert first.help


# --------------------------------------------------------------------------- OMOP


def direct_series(measurement: Any, person: str, concepts: tuple[str, ...]) -> list[Any]:
    """(value, at) of a person's rows of `concepts`, straight from MEASUREMENT, by SQL."""
    import duckdb

    rows = duckdb.sql(
        "select value_as_number, strftime(cast(measurement_datetime as timestamp), "
        "'%Y-%m-%dT%H:%M:%SZ') from measurement "
        f"where person_id = {int(person)} and measurement_concept_id in ({', '.join(concepts)}) "
        "order by measurement_datetime, value_as_number",
        connection=measurement,
    ).fetchall()
    return [(float(v), at) for v, at in rows]


def measurement_db(folder: Path) -> Any:
    import duckdb

    connection = duckdb.connect()
    connection.execute(
        f"create table measurement as select * from read_csv_auto('{folder / 'MEASUREMENT.csv'}')"
    )
    return connection


def test_omop_fixture_series_are_the_measurement_rows(omop_map: Any) -> None:
    records = list(omop_patients(SMALL, omop_map, as_of="2022-10-10"))
    assert [r["id"] for r in records] == ["1", "2", "8", "11", "16", "18"]
    db = measurement_db(SMALL)
    for record in records:
        got = [(o["value"], o["at"]) for o in record.get("serum_creatinine", [])]
        assert got == direct_series(db, record["id"], CREATININE)
        assert all(o["unit"] == "mg/dL" for o in record.get("serum_creatinine", []))
    by_id = {r["id"]: r for r in records}
    assert len(by_id["11"]["serum_creatinine"]) == 34  # both concepts: 12 + 22
    # platelets: the latest, 10*3/uL converted to /uL through UCUM
    latest = direct_series(db, "1", ("3024929",))[-1][0]
    assert by_id["1"]["platelet_count"] == {"value": pytest.approx(latest * 1000), "unit": "/uL"}
    assert by_id["11"]["lvef"]["unit"] == "%"
    assert by_id["1"]["age"] == {"value": 24, "unit": "a"}  # born 1998-04-09
    assert "informed_consent" not in by_id["1"]  # unmapped: unknown, never false


def test_pregnancy_within_nine_months_else_false(nct: Any, omop_map: Any) -> None:
    records = {r["id"]: r for r in omop_patients(SMALL, omop_map, as_of="2019-12-01")}
    # Normal pregnancy recorded 2019-06-17 (person 18) and 2019-06-09 (person 16)
    assert records["18"]["pregnant"] is True and records["16"]["pregnant"] is True
    assert records["1"]["pregnant"] is False  # absent = "false" in the shipped map
    later = {r["id"]: r for r in omop_patients(SMALL, omop_map, as_of="2021-01-01")}
    assert later["18"]["pregnant"] is False


def test_csv_parquet_duckdb_and_zip_give_the_same_records(omop_map: Any, tmp_path: Path) -> None:
    import duckdb

    want = list(omop_patients(SMALL, omop_map, as_of="2022-10-10"))
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    database = tmp_path / "cdm.duckdb"
    connection = duckdb.connect(str(database))
    archive = zipfile.ZipFile(tmp_path / "cdm.zip", "w")
    for csv in SMALL.glob("*.csv"):
        frame = pl.read_csv(csv, infer_schema=False)
        target = parquet / (csv.stem.lower() + ".parquet")
        frame.write_parquet(target)
        connection.execute(f"create table {csv.stem.lower()} as select * from '{target}'")
        archive.write(csv, "cdm/" + csv.name)
    connection.close()
    archive.close()
    for cdm in (parquet, database, tmp_path / "cdm.zip"):
        assert list(omop_patients(cdm, omop_map, as_of="2022-10-10")) == want, cdm
    with duckdb.connect(str(database), read_only=True) as open_connection:
        assert list(omop_patients(open_connection, omop_map, as_of="2022-10-10")) == want


def test_bad_rows_are_reported_and_skipped(omop_map: Any, tmp_path: Path) -> None:
    cdm = tmp_path / "cdm"
    shutil.copytree(SMALL, cdm)
    frame = pl.read_csv(cdm / "MEASUREMENT.csv", infer_schema=False)
    rows = frame.filter(pl.col("measurement_concept_id").is_in(CREATININE)).head(2)
    bad_unit = rows[0].with_columns(pl.lit("milligrams").alias("unit_source_value"))
    no_time = rows[1].with_columns(
        pl.lit(None, dtype=pl.String).alias(c) for c in ("measurement_date", "measurement_datetime")
    )
    changed = {rows["measurement_id"][0]: bad_unit, rows["measurement_id"][1]: no_time}
    out = pl.concat([changed.get(row["measurement_id"][0], row) for row in frame.iter_slices(1)])
    out.write_csv(cdm / "MEASUREMENT.csv")
    problems: list[Any] = []
    records = {
        r["id"]: r for r in omop_patients(cdm, omop_map, as_of="2022-10-10", problems=problems)
    }
    found = {(d.code, d.path) for d in problems}
    assert ("PR853", f"MEASUREMENT measurement_id={rows['measurement_id'][0]}") in found
    assert ("PR854", f"MEASUREMENT measurement_id={rows['measurement_id'][1]}") in found
    person = rows["person_id"][0]
    full = {r["id"]: r for r in omop_patients(SMALL, omop_map, as_of="2022-10-10")}
    assert len(records[person]["serum_creatinine"]) < len(full[person]["serum_creatinine"])
    assert records[person]["age"] == full[person]["age"]  # the rest is still read


def test_unreadable_cdm_is_pr850(omop_map: Any, tmp_path: Path) -> None:
    with pytest.raises(ScreeningError) as caught:
        list(omop_patients(tmp_path / "nowhere", omop_map))
    assert caught.value.diagnostics[0].code == "PR850"
    (tmp_path / "PERSON.csv").write_text("id,sex\n1,M\n")
    with pytest.raises(ScreeningError) as caught:
        list(omop_patients(tmp_path, omop_map))
    assert caught.value.diagnostics[0].code == "PR851"


def test_omop_terminology_of_an_empty_concept_ancestor() -> None:
    terminology = omop_terminology(SMALL)
    assert terminology.descendants("OMOP#4217975") == ()
    assert terminology.display("OMOP#4217975") == "Normal pregnancy"


@pytest.mark.skipif(not SYNTHEA.exists(), reason="the Synthea27Nj sample is not on this machine")
def test_synthea27nj_end_to_end(nct: Any, omop_map: Any, tmp_path: Path) -> None:
    """All 28 persons: creatinine series and latest platelets as SQL over MEASUREMENT gives."""
    with zipfile.ZipFile(SYNTHEA) as archive:
        archive.extract("MEASUREMENT.csv", tmp_path)
    db = measurement_db(tmp_path)
    records = list(omop_patients(SYNTHEA, omop_map, as_of="2022-10-10"))
    assert len(records) == 28
    series = 0
    for record in records:
        got = [(o["value"], o["at"]) for o in record.get("serum_creatinine", [])]
        assert got == direct_series(db, record["id"], CREATININE)
        series += len(got)
        platelets = direct_series(db, record["id"], ("3024929",))
        want = (
            {"value": pytest.approx(platelets[-1][0] * 1e3), "unit": "/uL"} if platelets else None
        )
        assert record.get("platelet_count") == want
    assert series == 241
    screening = nct.screen(records)
    counts = dict(screening.frame["status"].value_counts().iter_rows())
    assert sum(counts.values()) == 28 and counts.get("eligible", 0) == 0


# --------------------------------------------------------------------------- FHIR


def test_fhir_bundle_records(nct: Any) -> None:
    data_map = load_data_map(FHIR_MAP, nct)
    problems: list[Any] = []
    records = {
        r["id"]: r
        for r in fhir_patients(BUNDLE, data_map, as_of="2026-03-01T00:00:00Z", problems=problems)
    }
    assert sorted(records) == ["p1", "p2", "p3"]
    assert [o["value"] for o in records["p1"]["serum_creatinine"]] == [1.0, 2.6]
    assert records["p1"]["platelet_count"] == {"value": 150000.0, "unit": "/uL"}
    # 97 umol/L of creatinine (113.12 g/mol) in mg/dL, at the UTC time of +01:00
    (p2,) = records["p2"]["serum_creatinine"]
    assert p2["at"] == "2026-02-28T08:30:00Z" and abs(p2["value"] - 1.0973) < 1e-3
    assert records["p2"]["pregnant"] is True  # Condition referencing the Patient by fullUrl
    assert "pregnant" not in records["p1"]  # no absent = "false" in this map: unknown
    assert records["p3"]["organ_transplant"] is True
    assert records["p3"]["on_systemic_immunosuppression"] is True
    assert "platelet_count" not in records["p3"]  # its unit is not UCUM
    codes = sorted((d.code, d.path) for d in problems)
    assert codes == [
        ("PR853", "nct04194671-bundle.json entry 11 (Observation/obs-7)"),
        ("PR855", "nct04194671-bundle.json entry 12 (Observation/obs-8)"),
    ]
    statuses = {pid: nct.evaluate(r).status.value for pid, r in records.items()}
    assert statuses == {"p1": "indeterminate", "p2": "ineligible", "p3": "ineligible"}


def test_every_valid_resource_of_the_bundle_validates() -> None:
    from fhir.resources.R4B import get_fhir_model_class

    bundle = json.loads(BUNDLE.read_text())
    get_fhir_model_class("Bundle").model_validate(
        {**bundle, "entry": [e for e in bundle["entry"] if e["resource"]["id"] != "obs-8"]}
    )


# ------------------------------------------------------------------ one patient, three ways

SMALL_RULES = """\
protocol THREE_WAYS
fact age: quantity 'a'
fact serum_creatinine: series of quantity 'mg/dL' molar_mass 113.12 'g/mol'
fact platelet_count: quantity '/uL'
fact pregnant: boolean
inclusion I1 "Adult": age >= 18 years
inclusion I2 "Creatinine above 1.5 mg/dL in the last 2 days":
  max(serum_creatinine over last 2 days) > 1.5 'mg/dL'
exclusion E1 "Platelets below 100,000/uL": platelet_count < 100000 '/uL'
exclusion E2 "Pregnant": pregnant
"""

OMOP_SMALL_MAP = """\
data_map = 1
model = "omop"
[facts.age]
from = "person"
field = "age"
[facts.serum_creatinine]
from = "measurement"
codes = ["LOINC#2160-0"]
[facts.platelet_count]
from = "measurement"
codes = [3024929]
[facts.pregnant]
from = "condition_occurrence"
codes = [4217975]
within = "9 months"
absent = "false"
"""

FHIR_SMALL_MAP = """\
data_map = 1
model = "fhir"
[facts.age]
from = "Patient"
field = "age"
[facts.serum_creatinine]
from = "Observation"
codes = ["LOINC#2160-0"]
[facts.platelet_count]
from = "Observation"
codes = ["LOINC#777-3"]
[facts.pregnant]
from = "Condition"
codes = ["SNOMED#72892002"]
within = "9 months"
absent = "false"
"""

PEOPLE = [  # id, birth, sex, creatinine (mg/dL, time), platelets (10*3/uL), pregnancy onset
    ("1", "1970-05-01", "male", [(1.0, "2026-02-27T06:00:00"), (2.6, "2026-02-28T08:00:00")],
     150, None),
    ("2", "1990-03-15", "female", [(1.9, "2026-02-28T09:30:00")], 20, "2026-01-10"),
    ("3", "2010-07-30", "female", [(0.6, "2026-02-28T07:00:00")], 250, None),
    ("4", "1960-01-01", "male", [(3.1, "2026-02-20T07:00:00")], 300, "2024-01-01"),
]  # fmt: skip


def as_omop(folder: Path) -> None:
    folder.mkdir()
    person, measurement, condition = [], [], []
    for pid, born, sex, creatinine, platelets, pregnancy in PEOPLE:
        gender = {"male": 8507, "female": 8532}[sex]
        year, month, day = born.split("-")
        person.append(f"{pid},{gender},{year},{month},{day},{born} 00:00:00")
        for value, at in creatinine:
            day_ = at[:10]
            measurement.append(f"{len(measurement) + 1},{pid},3016723,{day_},{at},{value},mg/dL,0")
        measurement.append(f"{len(measurement) + 1},{pid},3024929,2026-02-28,,{platelets},,8848")
        if pregnancy:
            condition.append(f"{len(condition) + 1},{pid},4217975,{pregnancy},")
    (folder / "PERSON.csv").write_text(
        "person_id,gender_concept_id,year_of_birth,month_of_birth,day_of_birth,birth_datetime\n"
        + "\n".join(person)
    )
    (folder / "MEASUREMENT.csv").write_text(
        "measurement_id,person_id,measurement_concept_id,measurement_date,measurement_datetime,"
        "value_as_number,unit_source_value,unit_concept_id\n" + "\n".join(measurement)
    )
    (folder / "CONDITION_OCCURRENCE.csv").write_text(
        "condition_occurrence_id,person_id,condition_concept_id,condition_start_date,"
        "condition_start_datetime\n" + "\n".join(condition)
    )
    shutil.copy(SMALL / "CONCEPT.csv", folder / "CONCEPT.csv")  # LOINC 2160-0, UCUM 8848


def as_fhir() -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    for pid, born, sex, creatinine, platelets, pregnancy in PEOPLE:
        entries.append(
            {"resource": {"resourceType": "Patient", "id": pid, "gender": sex, "birthDate": born}}
        )
        readings = [("2160-0", v, "mg/dL", at + "Z") for v, at in creatinine]
        readings.append(("777-3", platelets, "10*3/uL", "2026-02-28"))
        for loinc, value, unit, at in readings:
            entries.append(
                {
                    "resource": {
                        "resourceType": "Observation",
                        "id": f"obs-{len(entries)}",
                        "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                        "subject": {"reference": f"Patient/{pid}"},
                        "effectiveDateTime": at,
                        "valueQuantity": {
                            "value": value,
                            "system": "http://unitsofmeasure.org",
                            "code": unit,
                        },
                    }
                }
            )
        if pregnancy:
            entries.append(
                {
                    "resource": {
                        "resourceType": "Condition",
                        "id": f"cond-{len(entries)}",
                        "code": {
                            "coding": [{"system": "http://snomed.info/sct", "code": "72892002"}]
                        },
                        "subject": {"reference": f"Patient/{pid}"},
                        "onsetDateTime": pregnancy,
                    }
                }
            )
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def as_json() -> list[dict[str, Any]]:
    out = []
    for pid, born, _, creatinine, platelets, pregnancy in PEOPLE:
        age = 2026 - int(born[:4]) - ((int(born[5:7]), int(born[8:10])) > (3, 1))
        out.append(
            {
                "id": pid,
                "age": {"value": age, "unit": "a"},
                "serum_creatinine": [
                    {"value": v, "unit": "mg/dL", "at": at + "Z"} for v, at in creatinine
                ],
                "platelet_count": {"value": platelets, "unit": "10*3/uL"},
                "pregnant": pregnancy is not None and pregnancy > "2025-06-01",
            }
        )
    return out


def test_one_patient_three_ways_one_verdict(tmp_path: Path) -> None:
    protocol = parse_protocol(SMALL_RULES)
    as_of = "2026-03-01T00:00:00Z"
    as_omop(tmp_path / "cdm")
    omop = omop_patients(tmp_path / "cdm", parse_data_map(OMOP_SMALL_MAP, protocol), as_of=as_of)
    fhir = fhir_patients(as_fhir(), parse_data_map(FHIR_SMALL_MAP, protocol), as_of=as_of)

    def verdicts(records: Any) -> list[Any]:
        out = []
        for record in records:
            result = protocol.evaluate(record, as_of=as_of)
            out.append(
                (record["id"], result.status.value, [c.outcome.value for c in result.criteria])
            )
        return out

    want = verdicts(as_json())
    assert {status for _, status, _ in want} == {"eligible", "ineligible", "indeterminate"}
    assert verdicts(omop) == want
    assert verdicts(fhir) == want


# --------------------------------------------------------------------------- CLI


def test_cli_screens_an_omop_cdm_through_a_map(capsys: Any) -> None:
    """Persons 1 and 2 are children (I2); the others lack nearly every fact: indeterminate."""
    with pytest.raises(SystemExit) as done:
        main(
            [
                "screen",
                str(ROOT / "protocols" / "nct04194671.rules"),
                str(SMALL),
                "--map",
                str(OMOP_MAP),
                "--as-of",
                "2022-10-10",
                "--format",
                "json",
            ]
        )
    assert done.value.code in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["patients"] == 6
    assert out["statuses"] == {"eligible": 0, "ineligible": 2, "indeterminate": 4, "error": 0}


def test_cli_check_with_a_bad_map(tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "bad.omop.toml"
    bad.write_text(HEAD + '[facts.lvef]\nfrom = "measurement"\ncodes = ["OMOP#x"]\n')
    with pytest.raises(SystemExit) as done:
        main(["check", str(ROOT / "protocols" / "nct04194671.rules"), "--map", str(bad)])
    assert done.value.code == 1
    assert "PR810" in capsys.readouterr().out


def test_shipped_maps_validate_against_the_json_schema() -> None:
    import tomllib

    import jsonschema

    schema_path = ROOT / "src" / "protocol_rules" / "schemas" / "datamap.schema.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in (OMOP_MAP, FHIR_MAP):
        jsonschema.validate(tomllib.loads(path.read_text()), schema)
    bad = tomllib.loads(OMOP_MAP.read_text())
    bad["facts"]["lvef"]["from"] = "Observation"  # a FHIR type in an OMOP map
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_cli_evaluates_one_fhir_patient(capsys: Any) -> None:
    args = ["eval", str(ROOT / "protocols" / "nct04194671.rules"), str(BUNDLE)]
    args += ["--map", str(FHIR_MAP), "--as-of", "2026-03-01T00:00:00Z", "--format", "json"]
    with pytest.raises(SystemExit) as done:
        main([*args, "--id", "p2"])
    assert done.value.code in (0, None)
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "ineligible"
    assert "PR855" in captured.err and "PR853" in captured.err  # the rows it skipped
    with pytest.raises(SystemExit) as done:
        main(args)  # three patients: which one?
    assert done.value.code == 1
    captured = capsys.readouterr()  # json: the diagnostics as JSON on standard output
    assert "PR858" in captured.out + captured.err


# ------------------------------------------------------------------ records and layout agree


@pytest.mark.parametrize("as_of", ["2022-10-10", "2019-12-01"])
def test_omop_layout_screens_as_the_records_evaluate(nct: Any, omop_map: Any, as_of: str) -> None:
    """`omop_layout` (whole columns, for large CDMs) against `omop_patients` + `evaluate`."""
    cdm = SYNTHEA if SYNTHEA.exists() else SMALL
    records = list(omop_patients(cdm, omop_map, as_of=as_of))
    assert_agree(nct, records, omop_layout(cdm, omop_map, as_of=as_of))


def test_fhir_layout_screens_as_the_records_evaluate(nct: Any) -> None:
    data_map = load_data_map(FHIR_MAP, nct)
    as_of = "2026-03-01T00:00:00Z"
    one: list[Any] = []
    two: list[Any] = []
    records = list(fhir_patients(BUNDLE, data_map, as_of=as_of, problems=one))
    assert_agree(nct, records, fhir_layout(BUNDLE, data_map, as_of=as_of, problems=two))
    assert sorted((d.code, d.path) for d in one) == sorted((d.code, d.path) for d in two)


def test_three_ways_layouts_agree(tmp_path: Path) -> None:
    protocol = parse_protocol(SMALL_RULES)
    as_of = "2026-03-01T00:00:00Z"
    as_omop(tmp_path / "cdm")
    omop_map = parse_data_map(OMOP_SMALL_MAP, protocol)
    records = list(omop_patients(tmp_path / "cdm", omop_map, as_of=as_of))
    assert_agree(protocol, records, omop_layout(tmp_path / "cdm", omop_map, as_of=as_of))
    fhir_map = parse_data_map(FHIR_SMALL_MAP, protocol)
    records = list(fhir_patients(as_fhir(), fhir_map, as_of=as_of))
    assert_agree(protocol, records, fhir_layout(as_fhir(), fhir_map, as_of=as_of))


# ------------------------------------------------------------------ codes from clinical data

CODED_RULES = """\
protocol CODED
fact conditions: set of code "Every condition recorded up to as_of"
fact condition_events: series of code "Conditions with their start dates"
codes pregnancy = {OMOP#4217975 "Normal pregnancy"}
codes sinusitis = {OMOP#40481087, OMOP#257012*}
inclusion I1 "Sinusitis ever": conditions contains any of sinusitis
exclusion E1 "Pregnancy in the last 9 months": any(condition_events over last 9 months) in pregnancy
"""

CODED_MAP = """\
data_map = 1
model = "omop"
[facts.conditions]
from = "condition_occurrence"
codes = [40481087, 257012, 4217975, 4112343]
[facts.condition_events]
from = "condition_occurrence"
codes = [4217975]
"""


def test_codes_from_omop_conditions(tmp_path: Path) -> None:
    """Sets and series of codes from CONDITION_OCCURRENCE; `*` through CONCEPT_ANCESTOR."""
    cdm = tmp_path / "cdm"
    shutil.copytree(SMALL, cdm)
    (cdm / "CONCEPT_ANCESTOR.csv").write_text(
        "ancestor_concept_id,descendant_concept_id,min_levels_of_separation,"
        "max_levels_of_separation\n257012,257012,0,0\n257012,4283893,1,1\n"
    )
    terminology = omop_terminology(cdm)
    assert list(terminology.descendants("OMOP#257012") or ()) == ["OMOP#4283893"]
    protocol = parse_protocol(CODED_RULES, terminology=terminology)
    data_map = parse_data_map(CODED_MAP, protocol)
    as_of = "2019-12-01"
    records = {r["id"]: r for r in omop_patients(cdm, data_map, as_of=as_of)}
    assert records["18"]["condition_events"][-1] == {
        "value": "OMOP#4217975",
        "at": "2019-06-17T00:00:00Z",
    }
    assert all(c.startswith("OMOP#") for c in records["1"]["conditions"])
    statuses = {pid: protocol.evaluate(r).status.value for pid, r in records.items()}
    assert statuses["18"] == "ineligible"  # pregnancy 2019-06-17
    assert set(statuses.values()) >= {"eligible", "ineligible"}
    assert_agree(protocol, list(records.values()), omop_layout(cdm, data_map, as_of=as_of))


def test_fhir_ndjson_export(nct: Any, tmp_path: Path) -> None:
    bundle = json.loads(BUNDLE.read_text())
    export = tmp_path / "export.ndjson"
    export.write_text("\n".join(json.dumps(e["resource"]) for e in bundle["entry"]) + "\n")
    data_map = load_data_map(FHIR_MAP, nct)
    as_of = "2026-03-01T00:00:00Z"
    from_bundle = list(fhir_patients(BUNDLE, data_map, as_of=as_of))
    # in the export, p2's Condition references urn:uuid:p2, a fullUrl only the Bundle has
    problems: list[Any] = []
    from_export = list(fhir_patients(export, data_map, as_of=as_of, problems=problems))
    assert [r for r in from_export if r["id"] != "p2"] == [
        r for r in from_bundle if r["id"] != "p2"
    ]
    assert ("PR856", "export.ndjson:9 (Condition/cond-1)") in {(d.code, d.path) for d in problems}
