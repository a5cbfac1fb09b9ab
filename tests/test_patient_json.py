"""Reading a patient file: every way it can fail is a patient-data error (exit 1), never a crash.

`protocol_rules.read_patient_json` is the one function that turns a patient file's text into a
record; `protocol-rules eval` uses it.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from protocol_rules import PatientDataError, read_patient_json
from protocol_rules.cli import cli

from .conftest import PROTOCOL_FILE

AS_OF = '"as_of": "2026-03-02T08:00:00Z"'


def codes(text: str | bytes) -> list[str]:
    with pytest.raises(PatientDataError) as caught:
        read_patient_json(text, "p.json")
    return [d.code for d in caught.value.diagnostics]


def eval_file(tmp_path, content: str | bytes, *extra: str):
    path = tmp_path / "patient.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    runner = CliRunner()
    return runner.invoke(
        cli, ["eval", str(PROTOCOL_FILE), str(path), *extra], catch_exceptions=False
    )


@pytest.mark.parametrize(
    "text",
    [
        '{"age": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"age": ' + "[" * 100_000,
        '{"age": ' + '{"value": ' * 5_000 + "1" + "}" * 5_000 + "}",
    ],
    ids=["arrays", "unclosed", "objects"],
)
def test_deep_nesting_is_refused_as_bad_data(text):
    assert codes(text) == ["PR413"]


def test_deep_nesting_in_a_file_exits_1_with_a_diagnostic(tmp_path):
    result = eval_file(tmp_path, '{"age": ' + "[" * 50_000 + "]" * 50_000 + "}")
    assert result.exit_code == 1
    assert "error[PR413]: the patient record is nested more than 64 levels deep" in result.output
    assert "patient.json:1:" in result.output


def test_brackets_inside_strings_do_not_count_as_nesting():
    record = read_patient_json('{"note": "' + "[" * 500 + '", "age": 40}')
    assert record["age"] == 40


def test_a_huge_integer_is_refused_by_its_path(tmp_path):
    assert codes('{"age": ' + "9" * 5_000 + "}") == ["PR404"]
    result = eval_file(tmp_path, '{"age": -' + "9" * 5_000 + f", {AS_OF}}}")
    assert result.exit_code == 1
    assert "error[PR404]: the number at `$.age` has 5,000 digits" in result.output


def test_long_but_reasonable_integers_are_read_as_integers():
    assert read_patient_json('{"n": ' + "1" * 300 + "}")["n"] == int("1" * 300)


def test_a_key_given_twice_is_refused():
    with pytest.raises(PatientDataError) as caught:
        read_patient_json('{"age": 29, "age": 40}')
    (d,) = caught.value.diagnostics
    assert (d.code, d.path) == ("PR412", "$.age")
    assert "`age` is given twice" in d.message


def test_a_key_given_twice_inside_an_observation_names_its_path(tmp_path):
    text = (
        '{"serum_creatinine": [{"value": 1, "at": "2026-03-01T00:00:00Z"},'
        ' {"value": 1, "value": 9, "at": "2026-03-01T01:00:00Z"}], ' + AS_OF + "}"
    )
    result = eval_file(tmp_path, text)
    assert result.exit_code == 1
    assert "error[PR412]: the key `value` is given twice in one object" in result.output
    assert "--> $.serum_creatinine[1].value" in result.output


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    assert read_patient_json('\ufeff{"age": 40}') == {"age": 40}
    assert read_patient_json(b'\xef\xbb\xbf{"age": 40}') == {"age": 40}
    result = eval_file(tmp_path, ("\ufeff{" + AS_OF + ', "age": 40}').encode("utf-8"))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "content, code",
    [
        ("", "PR401"),
        ("{", "PR401"),
        ("{'age': 40}", "PR401"),
        (b'{"age": "\xe9"}', "PR401"),
        ("[1, 2]", "PR401"),
        ('{"age": 1e999, ' + AS_OF + "}", "PR404"),
        ('{"age": NaN, ' + AS_OF + "}", "PR404"),
        ('{"\\u001b[2J": 1, ' + AS_OF + "}", "PR402"),
        ('{"\\ud800": 1, ' + AS_OF + "}", "PR402"),
    ],
    ids=[
        "empty",
        "truncated",
        "single-quotes",
        "latin-1",
        "a-list",
        "overflow",
        "nan",
        "escape-key",
        "lone-surrogate",
    ],
)
def test_every_bad_patient_file_exits_1_with_a_patient_data_error(tmp_path, content, code):
    result = eval_file(tmp_path, content)
    assert result.exit_code == 1, result.output
    assert f"error[{code}]" in result.output
    assert "\x1b" not in result.output and "\ud800" not in result.output


def test_bytes_that_are_not_utf8_are_refused():
    assert codes(b'{"age": "\xff"}') == ["PR401"]
