"""`*` in data-map codes (docs/clinical-data.md#codes-and-descendants): a code and its
descendants, with the meaning `codes` declarations give `*` in the language — OMOP concepts
through the CDM's CONCEPT_ANCESTOR, ICD-10-CM by prefix — and the same rows selected by the
per-person path (`omop_patients`) and the columnar one (`omop_layout`)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from protocol_rules import DataMapError, parse_protocol
from protocol_rules.cli import main
from protocol_rules.datamap import parse_data_map
from protocol_rules.sources import fhir_layout, fhir_patients, omop_layout, omop_patients

from .test_screening import assert_agree

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "examples" / "omop-synthea6"

RULES = """\
protocol DESCENDANTS
fact sinusitis_events: series of code "Sinusitis conditions with their start dates"
fact sinusitis: boolean "Sinusitis recorded in the last 5 years"
fact conditions: set of code "Every ICD-10-CM coded condition up to as_of"
fact serum_creatinine: series of quantity 'mg/dL' "Creatinine measurements"
inclusion I1 "Sinusitis": sinusitis
exclusion E1 "High creatinine": max(serum_creatinine over last 20 years) > 1.2 'mg/dL'
"""

# CONCEPT_ANCESTOR rows of the fixture CDM: Sinusitis (SNOMED 36971009, OMOP 4283893) above
# three sinusitis concepts the sample uses; 9990001 stands for a grouping concept above both
# creatinine concepts (an id made up for the test: the sample's own CONCEPT_ANCESTOR is empty).
ANCESTORS = [
    (4283893, 4283893, 0),
    (4283893, 40481087, 1),
    (4283893, 4294548, 1),
    (4283893, 257012, 1),
    (9990001, 3016723, 1),
    (9990001, 3051825, 1),
    (3016723, 3016723, 0),
]
# ICD-10-CM concepts (ids made up for the test), and condition rows coded with them
ICD = [(9990101, "J01.90"), (9990102, "J01.91"), (9990103, "J32.9")]


def _cdm(folder: Path, ancestors: bool = True) -> Path:
    """The six-person sample, with a CONCEPT_ANCESTOR of a few rows (or the empty one), the
    Sinusitis concept in CONCEPT and three ICD-10-CM coded conditions."""
    shutil.copytree(SMALL, folder)
    if ancestors:
        lines = "".join(f"{a},{d},{n},{n}\n" for a, d, n in ANCESTORS)
        (folder / "CONCEPT_ANCESTOR.csv").write_text(
            "ancestor_concept_id,descendant_concept_id,min_levels_of_separation,"
            "max_levels_of_separation\n" + lines
        )
    with (folder / "CONCEPT.csv").open("a") as concept:
        header = (SMALL / "CONCEPT.csv").read_text().splitlines()[0].split(",")
        for cid, vocabulary, code in [(4283893, "SNOMED", "36971009")] + [
            (cid, "ICD10CM", code) for cid, code in ICD
        ]:
            row = dict.fromkeys(header, "")
            row.update(
                concept_id=str(cid),
                concept_name=f"{vocabulary} {code}",
                domain_id="Condition",
                vocabulary_id=vocabulary,
                concept_code=code,
            )
            concept.write(",".join(row[h] for h in header) + "\n")
    with (folder / "CONDITION_OCCURRENCE.csv").open("a") as condition:
        width = len((SMALL / "CONDITION_OCCURRENCE.csv").read_text().splitlines()[0].split(","))
        for i, (cid, _) in enumerate(ICD):
            cells = [str(900 + i), "1", str(cid), "2018-01-0" + str(i + 1), ""]
            condition.write(",".join(cells + [""] * (width - len(cells))) + "\n")
    return folder


MAP = """\
data_map = 1
model = "omop"
[facts.sinusitis_events]
from = "condition_occurrence"
codes = ["OMOP#4283893*"]
[facts.sinusitis]
from = "condition_occurrence"
codes = ["SNOMED#36971009*", "OMOP#4283893*"]
within = "5 years"
absent = "false"
[facts.conditions]
from = "condition_occurrence"
codes = ["ICD10CM#J01*"]
[facts.serum_creatinine]
from = "measurement"
codes = ["OMOP#9990001*"]
"""

EXPLICIT = """\
data_map = 1
model = "omop"
[facts.serum_creatinine]
from = "measurement"
codes = [3016723, 3051825]
"""


@pytest.fixture(scope="module")
def protocol() -> Any:
    return parse_protocol(RULES)


@pytest.fixture(scope="module")
def cdm(tmp_path_factory: Any) -> Path:
    return _cdm(tmp_path_factory.mktemp("descendants") / "cdm")


# --------------------------------------------------------------------------- the data map


def test_star_members_are_kept_as_descendants(protocol: Any) -> None:
    data_map = parse_data_map(MAP, protocol)
    events = data_map.fact("sinusitis_events")
    assert events is not None and events.codes == ("OMOP#4283893",)
    assert events.descendants == ("OMOP#4283893",)
    conditions = data_map.fact("conditions")
    assert conditions is not None and conditions.prefixes() == ("ICD10CM#J01",)


HEAD = 'data_map = 1\nmodel = "{model}"\n[facts.conditions]\nfrom = "{source}"\n'


@pytest.mark.parametrize(
    ("model", "source", "codes", "code"),
    [
        ("omop", "condition_occurrence", '["LOINC#2160-0*"]', "PR813"),  # no hierarchy
        ("fhir", "Condition", '["LOINC#2160-0*"]', "PR813"),
        ("fhir", "Condition", '["SNOMED#36971009*"]', "PR813"),  # FHIR carries no hierarchy
        ("fhir", "Condition", '["OMOP#4283893*"]', "PR813"),
        ("omop", "condition_occurrence", '["ICD10CM#J01**"]', "PR810"),  # malformed
        ("omop", "condition_occurrence", '["ICD10CM#J*"]', "PR810"),
        ("omop", "condition_occurrence", '["OMOP#*"]', "PR810"),
    ],
)
def test_star_members_that_cannot_select_descendants(
    protocol: Any, model: str, source: str, codes: str, code: str
) -> None:
    text = HEAD.format(model=model, source=source) + f"codes = {codes}\n"
    with pytest.raises(DataMapError) as caught:
        parse_data_map(text, protocol, "map.toml")
    first = caught.value.diagnostics[0]
    assert first.code == code and first.help
    assert first.span is not None and first.span.line == 5


def test_fhir_accepts_prefix_systems(protocol: Any) -> None:
    text = HEAD.format(model="fhir", source="Condition") + 'codes = ["ICD10CM#J01*"]\n'
    fact = parse_data_map(text, protocol).fact("conditions")
    assert fact is not None and fact.prefixes() == ("ICD10CM#J01",)


def test_check_map_reports_a_star_on_loinc(tmp_path: Path, capsys: Any) -> None:
    rules = tmp_path / "p.rules"
    rules.write_text(RULES)
    bad = tmp_path / "map.toml"
    bad.write_text(HEAD.format(model="omop", source="measurement") + 'codes = ["LOINC#2160-0*"]\n')
    with pytest.raises(SystemExit) as done:
        main(["check", str(rules), "--map", str(bad)])
    assert done.value.code != 0
    captured = capsys.readouterr()
    assert "PR813" in captured.out + captured.err


# --------------------------------------------------------------------------- OMOP


def _selected(records: list[dict[str, Any]], fact: str) -> set[tuple[str, str, str]]:
    return {(r["id"], o["at"], o["value"]) for r in records for o in r.get(fact, [])}


def _layout_selected(layout: Any, fact: str, number: bool = False) -> set[tuple[str, str, Any]]:
    """(patient, at, value) of a fact's rows in the layout (values are text there as soon as
    a fact holds codes)."""
    import polars as pl

    rows = layout.observations.filter(pl.col("fact") == fact)
    return {
        (pid, at.strftime("%Y-%m-%dT%H:%M:%SZ"), float(value) if number else value)
        for pid, at, value in rows.select("patient_id", "at", "value").iter_rows()
    }


def test_omop_star_selects_the_concept_ancestor_descendants(protocol: Any, cdm: Path) -> None:
    import duckdb

    data_map = parse_data_map(MAP, protocol)
    as_of = "2022-10-10"
    problems: list[Any] = []
    records = list(omop_patients(cdm, data_map, as_of=as_of, problems=problems))
    assert not problems
    # what a direct SQL query over CONDITION_OCCURRENCE and CONCEPT_ANCESTOR selects
    db = duckdb.connect()
    for table in ("CONDITION_OCCURRENCE", "CONCEPT_ANCESTOR"):
        db.execute(
            f"create table {table} as select * from read_csv_auto('{cdm / (table + '.csv')}')"
        )
    want = db.sql(
        "select cast(person_id as varchar), strftime(cast(condition_start_date as timestamp), "
        "'%Y-%m-%dT%H:%M:%SZ'), 'OMOP#' || condition_concept_id from condition_occurrence "
        "where condition_concept_id in (select descendant_concept_id from concept_ancestor "
        "where ancestor_concept_id = 4283893)"
    ).fetchall()
    assert want and {c for *_, c in want} <= {"OMOP#40481087", "OMOP#4294548", "OMOP#257012"}
    assert _selected(records, "sinusitis_events") == set(want)
    # the columnar path selects the same rows, and screens as the records evaluate
    layout = omop_layout(cdm, data_map, as_of=as_of)
    assert _layout_selected(layout, "sinusitis_events") == set(want)
    creatinine = _layout_selected(layout, "serum_creatinine", number=True)
    assert creatinine == _selected(records, "serum_creatinine") and creatinine
    assert_agree(protocol, records, layout)


def test_omop_star_on_a_grouping_concept_equals_listing_the_concepts(
    protocol: Any, cdm: Path
) -> None:
    starred = list(omop_patients(cdm, parse_data_map(MAP, protocol), as_of="2022-10-10"))
    listed = list(omop_patients(cdm, parse_data_map(EXPLICIT, protocol), as_of="2022-10-10"))
    series = [r.get("serum_creatinine") for r in starred]
    assert series == [r.get("serum_creatinine") for r in listed]
    assert sum(len(s or []) for s in series) > 50


def test_omop_prefix_codes_through_concept(protocol: Any, cdm: Path) -> None:
    """`ICD10CM#J01*` selects the CONCEPT rows of vocabulary ICD10CM whose code starts with
    J01: J01.90 and J01.91, not J32.9."""
    records = {r["id"]: r for r in omop_patients(cdm, parse_data_map(MAP, protocol))}
    assert records["1"]["conditions"] == ["OMOP#9990101", "OMOP#9990102"]
    assert "conditions" not in records["2"]


def test_duckdb_cdm_selects_the_same_rows(protocol: Any, cdm: Path, tmp_path: Path) -> None:
    import duckdb

    database = tmp_path / "cdm.duckdb"
    with duckdb.connect(str(database)) as db:
        for csv in cdm.glob("*.csv"):
            db.execute(f"create table {csv.stem.lower()} as select * from read_csv_auto('{csv}')")
    data_map = parse_data_map(MAP, protocol)
    want = list(omop_patients(cdm, data_map, as_of="2022-10-10"))
    assert list(omop_patients(database, data_map, as_of="2022-10-10")) == want
    assert_agree(protocol, want, omop_layout(database, data_map, as_of="2022-10-10"))


@pytest.mark.parametrize("ancestor", ["empty", "missing"])
def test_no_concept_ancestor_is_said_once_per_source(
    protocol: Any, tmp_path: Path, ancestor: str
) -> None:
    """Without CONCEPT_ANCESTOR, a `*` member selects its own concept only — and PR859 says so,
    naming the members."""
    cdm = _cdm(tmp_path / "cdm", ancestors=False)
    if ancestor == "missing":
        (cdm / "CONCEPT_ANCESTOR.csv").unlink()
    data_map = parse_data_map(MAP, protocol)
    for build in (omop_patients, omop_layout):
        problems: list[Any] = []
        result = build(cdm, data_map, as_of="2022-10-10", problems=problems)
        if build is omop_patients:
            records = list(result)
            assert not any(r.get("serum_creatinine") for r in records)  # 9990001 has no rows
        said = [d for d in problems if d.code == "PR859"]
        assert len(said) == 1
        assert said[0].path is not None and said[0].path.endswith("CONCEPT_ANCESTOR")
        assert "`OMOP#9990001*` (facts.serum_creatinine)" in said[0].message
        assert ("empty" in said[0].message) == (ancestor == "empty")


# --------------------------------------------------------------------------- FHIR


def _bundle() -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {"resource": {"resourceType": "Patient", "id": p, "birthDate": "1980-01-01"}}
        for p in ("a", "b")
    ]
    for i, (pid, code) in enumerate([("a", "J01.90"), ("a", "J32.9"), ("b", "J0191")]):
        coding = {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}
        entries.append(
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": f"c{i}",
                    "code": {"coding": [coding]},
                    "subject": {"reference": f"Patient/{pid}"},
                    "onsetDateTime": "2020-01-01",
                }
            }
        )
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def test_fhir_prefix_members_select_by_prefix(protocol: Any) -> None:
    text = HEAD.format(model="fhir", source="Condition") + 'codes = ["ICD10CM#J01*"]\n'
    data_map = parse_data_map(text, protocol)
    records = list(fhir_patients(_bundle(), data_map, as_of="2022-01-01"))
    assert {r["id"]: r.get("conditions") for r in records} == {
        "a": ["ICD10CM#J01.90"],
        "b": ["ICD10CM#J01.91"],  # sent without its dot
    }
    assert_agree(protocol, records, fhir_layout(_bundle(), data_map, as_of="2022-01-01"))


def test_star_members_in_the_json_schema() -> None:
    import json
    import tomllib

    import jsonschema

    schema_path = ROOT / "src" / "protocol_rules" / "schemas" / "datamap.schema.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.validate(tomllib.loads(MAP), schema)
    twice = tomllib.loads(MAP)
    twice["facts"]["conditions"]["codes"] = ["ICD10CM#J01**"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(twice, schema)
