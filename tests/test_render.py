"""Rendering a result: the JSON shape against its packaged schema, JSON round trips, golden
`explain()` snapshots, the Markdown report, and renderers that never re-evaluate.

Regenerate the golden files with ``UPDATE_GOLDEN=1 pytest tests/test_render.py`` and read the
diff before committing it.
"""

from __future__ import annotations

import copy
import json
import os
import re
from importlib import resources
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import protocol_rules as pr
from protocol_rules import Status

from .conftest import PATIENTS, load_patient

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = sorted(p.name for p in PATIENTS.glob("*.json") if p.name != "expected.json")
GOLDEN_CASES = ["ineligible-platelets.json", "indeterminate.json", "eligible-umol.json"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    text = (
        resources.files("protocol_rules")
        .joinpath("schemas/result.schema.json")
        .read_text(encoding="utf-8")
    )
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def assert_valid(validator: Draft202012Validator, data: dict) -> None:
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("traces", [True, False], ids=["traces", "no traces"])
def test_to_dict_validates_against_the_packaged_schema(nct, validator, name, traces):
    assert_valid(validator, nct.evaluate(load_patient(name)).to_dict(traces=traces))


@pytest.mark.parametrize("name", EXAMPLES)
def test_json_round_trip(nct, name):
    result = nct.evaluate(load_patient(name))
    assert json.loads(result.to_json()) == result.to_dict()
    assert json.loads(result.to_json(indent=None)) == result.to_dict()
    assert "\n" not in result.to_json(indent=None)


def test_schema_version_and_top_level_shape(nct):
    data = nct.evaluate(load_patient("indeterminate.json")).to_dict()
    assert data["schema_version"] == "1.1"
    assert data["protocol"] == {
        "id": "NCT04194671",
        "title": "Clinical Trial of Mesenchymal Stem Cells in the Treatment of Severe Acute "
        "Kidney Injury",
    }
    assert data["status"] == "indeterminate"
    assert data["as_of"] == "2026-03-02T08:00:00Z"
    assert data["deciding"] == ["I3", "E11", "E20"]
    assert [c["id"] for c in data["criteria"]][:3] == ["I1", "I2", "I3"]
    assert data["missing_facts"][0] == {
        "name": "informed_consent",
        "criteria": ["I3"],
        "reason": "absent",
        "description": "Written informed consent given by the patient or a legally acceptable "
        "representative",
    }


def test_json_fact_read_has_given_and_converted_value(nct):
    data = nct.evaluate(load_patient("eligible-umol.json")).to_dict()
    e18 = next(c for c in data["criteria"] if c["id"] == "E18")
    read = e18["trace"]["children"][0]["children"][0]
    assert read["kind"] == "fact"
    assert read["given"] == {"value": 156, "unit": "10*9/L"}
    assert (read["value"], read["unit"]) == (156000, "/uL")


def test_json_lists_window_observations_with_flags(nct):
    data = nct.evaluate(load_patient("eligible-umol.json")).to_dict()
    i1 = json.dumps(data["criteria"][0]["trace"])
    assert '"in_window": false' in i1 and '"in_window": true' in i1


EDGE_RULES = """protocol "EDGE-1"
fact a: boolean
fact n: integer
fact q: quantity 'mg'
fact d: date
fact cause: one of x, y
fact drugs: set of one of m, i
fact s: series of quantity 'mg'
fact events: series of one of mi, stroke
define big = q > 1 'g'
inclusion I1 "logic": not a or big or n is known
inclusion I2 "sets": cause in {x} and drugs contains any of {m, i} and drugs contains i
inclusion I3 "arithmetic": -n + 2 * n / 1 between 0 and 10 and at least 1 of (a, n > 1)
inclusion I4 "time": time_since(d) > 3 days and d + 1 day < @2026-03-01 and @2026-03-01 - d > 1 day
exclusion E1 "windows": max(s over last 2 days) > 5 'mg' or count(s over last 2 days) > 3
exclusion E2 "quantified": any(events over last 30 days) in {mi} or all(s over last 2 days) > 1 'mg'
define twice(v: integer) = 2 * v
inclusion I5 "calculation":
  (if a then n else 1) ^ 2 + round(sqrt(n + 1), 1) + twice(n) > first_known(n, 0)
fact stopped: date or never
exclusion E3 "time, second edition": stopped is never and as_of > d
  and count(s over last 2 days where value > 1 'mg') > 0
  and consecutive(s from d to as_of where value > 1 'mg') > 1
fact dx: set of code
inclusion I6 "codes": dx contains any of {ICD10CM#N17*}
"""


@pytest.mark.parametrize(
    "patient",
    [
        {},
        {"a": False, "n": 3, "q": 2000, "d": "2026-01-01", "cause": "x", "drugs": ["i"]},
        {
            "a": True,
            "q": {"value": 0.5, "unit": "g"},
            "s": [{"value": 9, "at": "2026-02-28T12:00:00Z"}, {"value": 1, "at": "2025-01-01"}],
            "events": [{"value": "stroke", "at": "2026-02-20T00:00:00Z"}],
            "drugs": [],
        },
    ],
    ids=["empty", "known", "windows"],
)
def test_edge_results_validate_and_cover_every_trace_kind(validator, patient):
    protocol = pr.parse_protocol(EDGE_RULES)
    result = protocol.evaluate(patient, as_of="2026-03-01T00:00:00Z")
    data = result.to_dict()
    assert_valid(validator, data)
    assert json.loads(result.to_json()) == data


def test_edge_results_use_every_kind_of_the_schema(validator):
    protocol = pr.parse_protocol(EDGE_RULES)
    patient = {"a": False, "n": 3, "q": 2000, "d": "2026-01-01", "cause": "x", "drugs": ["i"]}
    patient["dx"] = ["ICD10CM#N17.9"]
    result = protocol.evaluate(patient, as_of="2026-03-01T00:00:00Z")
    kinds = {node.kind for c in result.criteria for node in c.trace.walk()}
    schema_kinds = set(validator.schema["$defs"]["trace"]["properties"]["kind"]["enum"])
    assert kinds <= schema_kinds
    assert schema_kinds - kinds <= {"observation"}  # only inside any()/all() conditions


def test_json_without_as_of_validates(validator):
    protocol = pr.parse_protocol('protocol N\nfact a: boolean\ninclusion I1 "a": a\n')
    data = protocol.evaluate({"a": True}).to_dict()
    assert data["as_of"] is None
    assert_valid(validator, data)


# --------------------------------------------------------------------------- explain()


@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_explain_golden(nct, name):
    text = nct.evaluate(load_patient(name)).explain() + "\n"
    golden = GOLDEN / name.replace(".json", ".txt")
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"{golden} is missing: run with UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8")


def test_explain_shows_the_comparison_pytest_style(nct):
    text = nct.evaluate(load_patient("ineligible-platelets.json")).explain()
    assert "platelet_count = 24,000 /uL  <  25,000 /uL  → true" in text
    assert "status: INELIGIBLE" in text
    assert "excluded by: E18" in text


def test_explain_shows_given_units_and_unknowns(nct):
    umol = nct.evaluate(load_patient("eligible-umol.json")).explain()
    assert "(given as 156 10*9/L)" in umol
    assert "(given as 62 umol/L)" in umol
    assert "(outside the window)" in umol
    indeterminate = nct.evaluate(load_patient("indeterminate.json")).explain()
    assert "still open: I3, E11, E20" in indeterminate
    assert "`lvef` is absent from the patient record" in indeterminate
    assert "lvef — Left ventricular ejection fraction (absent; feeds E11)" in indeterminate


def test_explain_trace_lines_stay_inside_their_criterion(nct):
    # below the header every line is a heading, a criterion, a missing fact, or indented
    # under its criterion, even for expressions written over several lines (E1, E17)
    headings = {
        "",
        "Inclusion criteria",
        "Exclusion criteria",
        "Missing facts that could decide it",
    }
    for name in EXAMPLES:
        for line in nct.evaluate(load_patient(name)).explain().splitlines()[3:]:
            assert (
                line in headings
                or re.match(r"[✓✗?] [IE]\d+ ", line)
                or line.startswith("  - ")
                or line.startswith("       ")
            ), line


def test_explain_in_color_only_with_color_true(nct):
    result = nct.evaluate(load_patient("ineligible-platelets.json"))
    assert "\x1b[" in result.explain(color=True)
    assert "\x1b[" not in result.explain()
    assert "\x1b[" not in result.to_markdown()


@pytest.mark.parametrize("name", ["ineligible-platelets.json"])
def test_explain_in_color_is_the_plain_text_with_ansi_codes(nct, name):
    result = nct.evaluate(load_patient(name))
    assert ANSI.sub("", result.explain(color=True)) == result.explain()


# --------------------------------------------------------------------------- Markdown


@pytest.mark.parametrize("name", ["indeterminate.json", "multiple-exclusions.json"])
def test_markdown_has_the_criteria_table_and_each_criterion(nct, name):
    result = nct.evaluate(load_patient(name))
    md = result.to_markdown()
    assert md.startswith("# NCT04194671 — ")
    assert f"**Status: {result.status.value}**" in md
    assert "| id | kind | outcome | criterion |" in md
    for c in result.criteria:
        assert re.search(rf"^\| {c.id} \| {c.kind} \| ", md, re.MULTILINE), c.id
        assert f"### {c.id} ({c.kind})" in md
        assert f"> {c.text}" in md
        section = md.split(f"### {c.id} (")[1].split("### ")[0]
        for node in c.trace.walk():
            if node.kind == "fact" and node.evaluated:
                assert node.expr in section, (c.id, node.expr)
    assert md.count("```text") == len(result.criteria)
    assert md.endswith("\n") and not md.endswith("\n\n")


def test_markdown_lists_missing_facts_and_deciding_criteria(nct):
    md = nct.evaluate(load_patient("indeterminate.json")).to_markdown()
    assert "Still open: I3, E11, E20" in md
    assert "## Missing facts" in md
    assert "- `lvef` — Left ventricular ejection fraction: absent; feeds E11" in md
    assert "**unknown** ← deciding" in md


def test_markdown_escapes_pipes_in_criterion_texts():
    protocol = pr.parse_protocol('protocol P\nfact a: boolean\ninclusion I1 "a | b": a\n')
    md = protocol.evaluate({"a": True}).to_markdown()
    assert "| I1 | inclusion | met | a \\| b |" in md


# --------------------------------------------------------------------------- no re-evaluation


def _render_all(result: pr.Result) -> tuple:
    return (
        result.explain(),
        result.explain(color=True),
        result.to_markdown(),
        result.to_json(),
        json.dumps(result.to_dict(traces=False)),
    )


@pytest.mark.parametrize("name", EXAMPLES)
def test_a_result_renders_identically_many_times(nct, name):
    result = nct.evaluate(load_patient(name))
    first = _render_all(result)
    assert _render_all(result) == first
    assert tuple(reversed(_render_all(result))) == tuple(reversed(first))


def test_rendering_never_calls_evaluate(nct, monkeypatch):
    results = [nct.evaluate(load_patient(name)) for name in GOLDEN_CASES]

    def refuse(*args, **kwargs):
        raise AssertionError("a renderer evaluated the protocol again")

    monkeypatch.setattr(pr.Protocol, "evaluate", refuse)
    monkeypatch.setattr(pr.Protocol, "evaluate_many", refuse)
    for result in results:
        _render_all(result)


def test_results_of_a_batch_render_like_single_results(nct):
    patients = [load_patient(name) for name in EXAMPLES]
    batch = list(nct.evaluate_many(patients))
    singles = [nct.evaluate(p) for p in patients]
    assert [_render_all(r) for r in batch] == [_render_all(r) for r in singles]
    assert [r.status for r in batch].count(Status.ELIGIBLE) >= 1


def test_a_result_does_not_change_when_the_caller_reuses_the_record(nct):
    patient = load_patient("ineligible-platelets.json")
    pristine = nct.evaluate(copy.deepcopy(patient)).to_json()
    result = nct.evaluate(patient)
    patient["platelet_count"] = 310000  # e.g. a loop that fills one dict per row
    assert result.to_json() == pristine


def test_a_rendered_result_does_not_change_when_the_record_is_mutated(nct):
    patient = load_patient("eligible-umol.json")
    result = nct.evaluate(patient)
    before = result.to_json()
    patient["serum_creatinine"].append(
        {"value": 500, "unit": "umol/L", "at": "2026-03-05T08:00:00+08:00"}
    )
    patient["baseline_creatinine"]["value"] = 1
    assert result.to_json() == before
