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
from protocol_rules.render.safe import markdown_text

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
    # below the summary every line is a heading, a criterion (wrapped text aligned under its
    # text), or indented under its criterion, even for expressions written over several lines
    headings = {
        "",
        "Inclusion criteria (each must be met)",
        "Exclusion criteria (each must be not met)",
    }
    for name in EXAMPLES:
        text = nct.evaluate(load_patient(name)).explain()
        details = text.split("\nInclusion criteria")[1].split("\nnot evaluated:")[0]
        for line in ("Inclusion criteria" + details).splitlines():
            assert (
                line in headings
                or re.match(r"  [IE]\d+ +(met|not met|unknown) ", line)
                or line.startswith("       ")
            ), line


def test_explain_puts_the_verdict_and_what_decides_it_first(nct):
    text = nct.evaluate(load_patient("indeterminate.json")).explain()
    summary = text.split("\nInclusion criteria")[0]
    assert summary.splitlines()[2:4] == [
        "status: INDETERMINATE  (as of 2026-03-02T08:00:00Z)",
        "still open: I3, E11, E20",
    ]
    assert "  E20  exclusion unknown: Participate in other clinical trials" in summary
    assert "Missing facts that could decide it" in summary
    ineligible = nct.evaluate(load_patient("ineligible-platelets.json")).explain()
    assert "  E18  exclusion met: Platelet count <25,000/uL" in ineligible.split("\n\n")[0]


def test_explain_writes_outcomes_as_words_without_marks(nct):
    text = nct.evaluate(load_patient("ineligible-platelets.json")).explain()
    assert "  E1   not met  AKI due to" in text
    assert "← excludes the patient" in text
    assert not set("✓✗") & set(text)


def test_explain_says_once_what_not_evaluated_means(nct):
    text = nct.evaluate(load_patient("indeterminate.json")).explain()
    assert text.count("not evaluated:") == 1
    assert " ".join(text.split()).endswith("the other operand already decided the result.")
    eligible = nct.evaluate(load_patient("eligible-oliguria.json")).explain(brief=True)
    assert "not evaluated:" not in eligible


@pytest.mark.parametrize("width", [40, 60, 80, 100, 140])
def test_explain_wraps_to_the_width(nct, width):
    for name in GOLDEN_CASES:
        result = nct.evaluate(load_patient(name))
        text = result.explain(width=width)
        for line in text.splitlines():
            content = re.sub(r"^[ │├└─•·]*", "", line)
            # longer only for a word too long to cut (`→ value` stays together)
            assert len(line) <= width or len(content.split()) <= 2, (width, line)
        assert ANSI.sub("", result.explain(color=True, width=width)) == text
        unwrapped = result.explain(width=10_000)
        assert _words(text) == _words(unwrapped)


def _words(text: str) -> list[str]:
    return [w for w in text.split() if w not in ("│", "├─", "└─")]


def test_the_command_line_wraps_to_columns(monkeypatch):
    from click.testing import CliRunner

    from protocol_rules.cli import cli

    from .conftest import PROTOCOL_FILE

    for columns in ("60", "120"):
        done = CliRunner(env={"COLUMNS": columns, "NO_COLOR": "1"}).invoke(
            cli, ["eval", str(PROTOCOL_FILE), str(PATIENTS / "indeterminate.json")]
        )
        assert done.exit_code == 0
        widest = max(len(line) for line in done.output.splitlines())
        assert int(columns) - 15 <= widest <= int(columns)


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
        assert f"> {markdown_text(c.text)}" in md
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


# --------------------------------------------------------------------------- converted operands

CONVERTED = [
    ("fact a: quantity 'mg/L'\nfact b: quantity 'mg/dL'", "a > 2 * b", {"a": 30, "b": 1}),
    ("fact u: quantity 'mL/d'", "u < 500 'mL' / 24 hours", {"u": 300}),
    ("fact u: quantity 'mL'", "u < 100 'mL/(6.h)' * 6 hours", {"u": 30}),
    (
        "fact s: series of number\nfact x: date",
        "count(s over last time_since(x)) > 0",
        {"s": [{"value": 1, "at": "2026-02-01"}], "x": "2026-01-01"},
    ),
]


@pytest.mark.parametrize(
    "facts, expr, patient", CONVERTED, ids=["fact-x2", "per-day", "per-6h", "window"]
)
def test_a_result_with_a_runtime_unit_conversion_renders_in_every_format(
    validator, facts, expr, patient
):
    protocol = pr.parse_protocol(f'protocol T\n{facts}\ninclusion I1 "x": {expr}\n')
    result = protocol.evaluate(patient, as_of="2026-03-01T00:00:00Z")
    assert result.status is Status.ELIGIBLE
    _render_all(result)
    assert_valid(validator, result.to_dict())


def test_a_converted_operand_shows_its_value_in_the_unit_it_is_compared_in():
    facts, expr, patient = CONVERTED[0]
    protocol = pr.parse_protocol(f'protocol T\n{facts}\ninclusion I1 "x": {expr}\n')
    text = protocol.evaluate(patient).explain()
    assert "2 * b  → 20 mg/L" in text
    assert "b = 1 mg/dL" in text


def test_every_node_of_the_checked_form_has_a_trace_kind():
    import typing

    from protocol_rules.check import ir
    from protocol_rules.trace import _KINDS

    assert set(typing.get_args(ir.Node)) <= set(_KINDS)


# ------------------------------------------------------------------- inputs that are not JSON


def test_mappings_tuples_and_date_objects_evaluate_and_render(nct, validator):
    """`evaluate` accepts any Mapping, tuples and `date`/`datetime` objects; so does every
    renderer: the record is snapshotted as JSON data (was TypeError in `to_json`)."""
    import types
    from collections import UserDict
    from datetime import UTC, date, datetime

    inner = {"value": 180, "unit": "10*9/L"}
    patient = UserDict(
        {
            "age": types.MappingProxyType({"value": 40, "unit": "a"}),
            "platelet_count": types.MappingProxyType(inner),
            "immunosuppression_last_change": date(2025, 1, 1),
            "on_systemic_immunosuppression": True,
            "serum_creatinine": (
                types.MappingProxyType(
                    {"value": 2.1, "unit": "mg/dL", "at": datetime(2026, 3, 1, 8, tzinfo=UTC)}
                ),
            ),
        }
    )
    result = nct.evaluate(patient, as_of=datetime(2026, 3, 2, 8, tzinfo=UTC))
    text = result.to_json()
    data = json.loads(text)
    assert_valid(validator, data)
    reads = {
        node["fact"]: node["given"]
        for c in data["criteria"]
        for node in _walk(c["trace"])
        if node["kind"] == "fact" and node["evaluated"]
    }
    assert reads["platelet_count"] == {"value": 180, "unit": "10*9/L"}
    assert reads["immunosuppression_last_change"] == "2025-01-01"
    assert reads["serum_creatinine"] == [
        {"value": 2.1, "unit": "mg/dL", "at": "2026-03-01T08:00:00Z"}
    ]
    inner["value"] = 10  # the caller changes the mapping behind the proxy
    assert result.to_json() == text
    result.explain()
    result.to_markdown()


def _walk(trace: dict):
    yield trace
    for child in trace.get("children", ()):
        yield from _walk(child)


# --------------------------------------------------------------------------- warnings


def test_observations_after_as_of_are_listed_in_every_format(nct, validator):
    patient = load_patient("eligible-umol.json")
    late = {"value": 9.9, "unit": "mg/dL", "at": "2026-03-06T00:00:00Z"}
    patient["serum_creatinine"] = [*patient["serum_creatinine"], late, late]
    result = nct.evaluate(patient)
    (warning,) = result.warnings
    assert (warning.code, warning.path, warning.severity.value) == (
        "PR414",
        "$.serum_creatinine",
        "warning",
    )
    assert "2 observations after `as_of`" in warning.message
    assert "2026-03-06T00:00:00Z" in warning.help
    data = result.to_dict()
    assert_valid(validator, data)
    assert [w["code"] for w in data["warnings"]] == ["PR414"]
    summary = result.explain().split("\nInclusion criteria")[0]
    assert "Warnings" in summary and "fact `serum_creatinine`: 2 observations" in summary
    assert "## Warnings" in result.to_markdown()


def test_no_warning_without_late_observations(nct):
    for name in EXAMPLES:
        result = nct.evaluate(load_patient(name))
        assert result.warnings == () or [w.code for w in result.warnings] == ["PR414"]
    assert nct.evaluate(load_patient("eligible.json")).to_dict()["warnings"] == []


# --------------------------------------------------------------------------- output safety

HOSTILE = "\x1b[2J\x1b]0;pwned\x07\u202eevil\x85\u2066"
UNSAFE_OUT = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]"
)


def _hostile_result() -> pr.Result:
    text = (
        f'protocol "P{HOSTILE}"\n  title "T{HOSTILE}"\n'
        f'fact label: text "described {HOSTILE}"\nfact flag: boolean\n'
        f'inclusion I1 "crit {HOSTILE} <img src=x onerror=alert(1)>"\n'
        f'  note "note {HOSTILE} <script>x</script>":\n'
        f'  label = "{HOSTILE}" or flag\n'
        f'exclusion E1 "```\\n# heading <b>bold</b>": label is unknown\n'
    )
    protocol = pr.parse_protocol(text)
    return protocol.evaluate({"label": f"given {HOSTILE}"})


def test_explanations_escape_control_and_bidi_characters():
    result = _hostile_result()
    for text in (result.explain(), result.explain(brief=True), result.to_markdown()):
        assert not UNSAFE_OUT.search(text), repr(UNSAFE_OUT.search(text))
        assert "\\u202e" in text
    colored = result.explain(color=True)
    assert not UNSAFE_OUT.search(ANSI.sub("", colored))


def test_markdown_escapes_raw_html_and_cannot_close_its_code_blocks():
    md = _hostile_result().to_markdown()
    assert "<img" not in md and "<script>" not in md and "<b>" not in md
    assert "&lt;img src=x onerror=alert(1)&gt;" in md
    fences = [line for line in md.splitlines() if line.startswith("```")]
    assert len(fences) % 2 == 0


def test_json_is_strict_and_safe_to_print():
    result = _hostile_result()
    text = result.to_json()
    assert not UNSAFE_OUT.search(text)

    def refuse(name: str) -> None:
        raise ValueError(f"not strict JSON: {name}")

    data = json.loads(text, parse_constant=refuse)
    assert data == result.to_dict()  # the escapes read back as the same strings
    assert HOSTILE in data["criteria"][0]["text"]


def test_patient_keys_echoed_in_diagnostics_are_escaped(nct):
    with pytest.raises(pr.PatientDataError) as caught:
        nct.evaluate({f"age{HOSTILE}": 1, "aki_cause": f"x{HOSTILE}"})
    for d in caught.value.diagnostics:
        assert not UNSAFE_OUT.search(d.message + (d.path or "") + (d.help or ""))


# --------------------------------------------------------------------------- JSON text


def test_to_json_is_compact_by_default_and_indented_on_request(nct):
    result = nct.evaluate(load_patient("indeterminate.json"))
    assert "\n" not in result.to_json()
    assert result.to_json(indent=2).startswith('{\n  "schema_version"')
    assert json.loads(result.to_json()) == json.loads(result.to_json(indent=2))


def test_the_command_line_prints_indented_json():
    from click.testing import CliRunner

    from protocol_rules.cli import cli

    from .conftest import PROTOCOL_FILE

    done = CliRunner().invoke(
        cli, ["eval", str(PROTOCOL_FILE), str(PATIENTS / "indeterminate.json"), "--format", "json"]
    )
    assert done.output.startswith('{\n  "schema_version": "1.1"'), done.output[:200]
