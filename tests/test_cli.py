"""The command line: exit codes, output formats, and the patient JSON Schema."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest
from click.testing import CliRunner

from protocol_rules.cli import cli

from .conftest import PATIENTS, PROTOCOL_FILE, expected

PROTOCOL = str(PROTOCOL_FILE)


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def bad_rules(tmp_path):
    path = tmp_path / "bad.rules"
    path.write_text("protocol B\nfact age: quantity 'a'\ninclusion I1 \"x\": agee > 3 years\n")
    return str(path)


def test_check_clean_file_exits_0():
    result = run("check", PROTOCOL)
    assert result.exit_code == 0
    assert "ok" in result.output


def test_check_with_errors_exits_1_and_points_at_the_line(bad_rules):
    result = run("check", bad_rules)
    assert result.exit_code == 1
    assert "error[PR201]: unknown name `agee`" in result.output
    assert "bad.rules:3:19" in result.output
    assert "help: did you mean `age`?" in result.output


def test_check_json_format(bad_rules):
    result = run("check", "--format", "json", PROTOCOL, bad_rules)
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["schema_version"] == "1.0"
    clean, bad = payload["files"]
    assert clean["ok"] and clean["diagnostics"] == []
    (first,) = [d for d in bad["diagnostics"] if d["severity"] == "error"]
    assert (first["code"], first["line"], first["column"]) == ("PR201", 3, 19)


def test_check_unreadable_file_is_a_finding_not_a_crash(tmp_path):
    result = run("check", str(tmp_path / "missing.rules"))
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_usage_error_exits_2():
    assert run("check").exit_code == 2
    assert run("eval", PROTOCOL).exit_code == 2
    assert run("nonsense").exit_code == 2


def test_eval_prints_the_explanation_and_exits_0_whatever_the_verdict():
    result = run("eval", PROTOCOL, str(PATIENTS / "ineligible-platelets.json"))
    assert result.exit_code == 0
    assert "status: INELIGIBLE" in result.output
    assert "platelet_count = 24,000 /uL  <  25,000 /uL  → true" in result.output


def test_eval_reads_standard_input_and_formats():
    patient = (PATIENTS / "indeterminate.json").read_text()
    result = run("eval", PROTOCOL, "-", "--format", "json", input=patient)
    assert result.exit_code == 0
    payload = json.loads(result.output)
    assert payload["status"] == "indeterminate"
    assert payload["schema_version"]
    markdown = run("eval", PROTOCOL, "-", "--format", "markdown", input=patient).output
    assert markdown.startswith("# NCT04194671")


def test_eval_as_of_option_overrides_the_patient():
    patient = (PATIENTS / "eligible.json").read_text()
    later = run(
        "eval", PROTOCOL, "-", "--as-of", "2027-01-01T00:00:00Z", "--format", "json", input=patient
    )
    assert json.loads(later.output)["as_of"] == "2027-01-01T00:00:00Z"


def test_eval_bad_patient_exits_1_naming_the_fact():
    result = run("eval", PROTOCOL, "-", input='{"age": "54", "as_of": "2026-01-01"}')
    assert result.exit_code == 1
    assert "$.age" in result.output and "PR403" in result.output


def test_eval_invalid_json_exits_1():
    result = run("eval", PROTOCOL, "-", input='{"age": 54,')
    assert result.exit_code == 1
    assert "not valid JSON" in result.output


def test_eval_bad_rules_exits_1(bad_rules):
    result = run("eval", bad_rules, "-", input="{}")
    assert result.exit_code == 1
    assert "PR201" in result.output


def test_facts_table_lists_every_fact_with_its_criteria():
    result = run("facts", PROTOCOL)
    assert result.exit_code == 0
    line = next(x for x in result.output.splitlines() if x.startswith("platelet_count"))
    assert "quantity '/uL'" in line and "E18" in line


def test_every_example_patient_validates_against_the_facts_json_schema():
    schema = json.loads(run("facts", PROTOCOL, "--format", "json-schema").output)
    validator = jsonschema.Draft202012Validator(schema)
    for name in expected():
        validator.validate(json.loads((PATIENTS / name).read_text()))
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"aki_cause": "sepsis"})
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"agee": 3})


def test_console_script_runs_outside_the_checkout(tmp_path):
    """The grammar ships with the package: nothing depends on the working directory."""
    code = (
        "import protocol_rules, sys; "
        "p = protocol_rules.load_protocol(sys.argv[1]); "
        "print(p.evaluate({'age': 70, 'as_of': '2026-01-01'}).status)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, PROTOCOL],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "ineligible"
