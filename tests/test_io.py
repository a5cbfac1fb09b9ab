"""Files and the command line around them: one way of reading files everywhere, PR001 with
exit status 1 for a file that cannot be read, JSON errors from `eval`, `--brief` in every
format, and per-file summaries."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import protocol_rules as pr
from protocol_rules.cli import cli
from protocol_rules.format import format_text

from .conftest import PATIENTS, PROTOCOL_FILE

GOOD = "protocol P\nfact age: quantity 'a' range 0 to 150\ninclusion I1 \"A\": age >= 18 years\n"
BAD = "protocol P\nfact age: quantity 'a' range 0 to 150\ninclusion I1 \"A\": agee >= 18 years\n"


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


# --------------------------------------------------------------------------- reading files


@pytest.mark.parametrize(
    "encoded",
    [
        ("\ufeff" + GOOD).encode(),
        GOOD.replace("\n", "\r\n").encode(),
        GOOD.replace("\n", "\r").encode(),
        ("\ufeff" + GOOD.replace("\n", "\r")).encode(),
    ],
    ids=["bom", "crlf", "cr", "bom+cr"],
)
def test_every_door_reads_a_file_the_same_way(tmp_path, encoded):
    path = tmp_path / "p.rules"
    path.write_bytes(encoded)
    assert pr.load_protocol(path).criteria[0].id == "I1"
    assert pr.parse_protocol(encoded.decode()).criteria[0].id == "I1"
    assert pr.check_text(encoded.decode()) == []
    done = run("check", str(path))
    assert (done.exit_code, done.output) == (0, f"{path}: ok\n")
    patient = tmp_path / "x.json"
    patient.write_text('{"age": 40}')
    assert run("eval", str(path), str(patient)).exit_code == 0
    assert run("fmt", "--check", str(path)).exit_code == 1  # the layout has `\n`, no BOM
    assert run("fmt", str(path)).exit_code == 0
    assert path.read_bytes() == format_text(GOOD).encode()


def test_positions_count_lines_the_same_whatever_the_line_ending(tmp_path):
    for ending in ("\n", "\r\n", "\r"):
        (d,) = pr.check_text(BAD.replace("\n", ending), "t.rules")
        assert (d.code, d.span.line, d.span.column) == ("PR201", 3, 19)


# --------------------------------------------------------------------------- PR001


def test_a_missing_file_is_pr001_from_the_api(tmp_path):
    with pytest.raises(pr.ProtocolError) as caught:
        pr.load_protocol(tmp_path / "missing.rules")
    (d,) = caught.value.diagnostics
    assert d.code == "PR001" and "no such file" in d.message


@pytest.mark.parametrize("what", ["missing", "directory", "not-utf8"])
@pytest.mark.parametrize("command", ["check", "eval", "facts", "fmt"])
def test_a_file_that_cannot_be_read_is_pr001_with_status_1(tmp_path, what, command):
    path = tmp_path / "x.rules"
    if what == "directory":
        path.mkdir()
    elif what == "not-utf8":
        path.write_bytes(b"protocol P\n\xff\xfe\n")
    args = [command, str(path)]
    if command == "eval":
        args.append(str(PATIENTS / "eligible.json"))
    done = run(*args)
    assert done.exit_code == 1, done.output
    assert "error[PR001]" in done.output
    assert "PR101" not in done.output


def test_a_patient_file_that_cannot_be_read_is_pr001(tmp_path):
    done = run("eval", str(PROTOCOL_FILE), str(tmp_path / "nobody.json"))
    assert done.exit_code == 1
    assert "error[PR001]: cannot read" in done.output


# --------------------------------------------------------------------------- eval --format json


def test_eval_json_reports_bad_rules_as_json_on_stdout(tmp_path):
    rules = tmp_path / "bad.rules"
    rules.write_text(BAD)
    runner = CliRunner()
    done = runner.invoke(
        cli, ["eval", str(rules), str(PATIENTS / "eligible.json"), "--format", "json"]
    )
    assert done.exit_code == 1
    assert done.stderr == ""
    payload = json.loads(done.stdout)
    (entry,) = payload["files"]
    assert entry["file"] == str(rules) and not entry["ok"]
    assert [d["code"] for d in entry["diagnostics"]] == ["PR201"]


def test_eval_json_reports_bad_patient_data_as_json_on_stdout(tmp_path):
    patient = tmp_path / "p.json"
    patient.write_text('{"age": "old"}')
    done = CliRunner().invoke(cli, ["eval", str(PROTOCOL_FILE), str(patient), "--format", "json"])
    assert done.exit_code == 1 and done.stderr == ""
    (entry,) = json.loads(done.stdout)["files"]
    assert entry["file"] == str(patient)
    assert entry["diagnostics"][0]["code"] == "PR403"
    assert entry["diagnostics"][0]["path"] == "$.age"


# --------------------------------------------------------------------------- --brief


def test_brief_json_leaves_the_traces_out():
    patient = str(PATIENTS / "ineligible-platelets.json")
    full = json.loads(run("eval", str(PROTOCOL_FILE), patient, "--format", "json").output)
    brief = json.loads(
        run("eval", str(PROTOCOL_FILE), patient, "--format", "json", "--brief").output
    )
    assert all("trace" in c for c in full["criteria"])
    assert all("trace" not in c for c in brief["criteria"])
    assert brief["deciding"] == full["deciding"] == ["E18"]


def test_brief_markdown_keeps_the_traces_of_the_deciding_criteria_only():
    patient = str(PATIENTS / "ineligible-platelets.json")
    full = run("eval", str(PROTOCOL_FILE), patient, "--format", "markdown").output
    brief = run("eval", str(PROTOCOL_FILE), patient, "--format", "markdown", "--brief").output
    assert full.count("```text") == 24
    assert brief.count("```text") == 1
    assert "### E18 (exclusion)" in brief and "### I1 (inclusion)" not in brief
    assert "| I1 | inclusion |" in brief  # the table still lists every criterion


# --------------------------------------------------------------------------- several files


def test_checking_several_files_names_each_and_prints_a_total(tmp_path):
    good, bad = tmp_path / "good.rules", tmp_path / "bad.rules"
    good.write_text(GOOD)
    bad.write_text(BAD)
    done = run("check", str(good), str(bad), str(tmp_path / "missing.rules"))
    assert done.exit_code == 1
    lines = done.output.splitlines()
    assert f"{good}: ok" in lines
    assert f"{bad}: 1 error, 0 warnings" in lines
    assert f"{tmp_path / 'missing.rules'}: 1 error, 0 warnings" in lines
    assert lines[-1] == "3 files checked: 2 errors, 0 warnings"


def test_checking_one_file_keeps_the_short_summary(tmp_path):
    bad = tmp_path / "bad.rules"
    bad.write_text(BAD)
    assert run("check", str(bad)).output.splitlines()[-1] == "1 error, 0 warnings"
