"""`protocol-rules test`: tests files, the runner, coverage from the evaluation record, plugin."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol_rules import load_protocol, parse_protocol
from protocol_rules.cli import cli
from protocol_rules.tools.coverage import coverage, deciding_operands
from protocol_rules.tools.runner import failure_text, run_tests
from protocol_rules.tools.testfile import check_against, load_tests, parse_tests, path_of_tests

from .conftest import PATIENTS, PROTOCOL_FILE, ROOT

TESTS_FILE = ROOT / "protocols" / "nct04194671.tests.toml"
SCHEMA = ROOT / "src" / "protocol_rules" / "schemas" / "tests.schema.json"

SMALL = """protocol DEMO
fact age: quantity 'a' range 0 to 130
fact pregnant: boolean
fact lactating: boolean

inclusion I1 "Adult": age between 18 years and 65 years
exclusion E1 "Pregnant or lactating": pregnant or lactating
"""


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def write(tmp_path: Path, tests: str, rules: str = SMALL) -> Path:
    (tmp_path / "demo.rules").write_text(rules, encoding="utf-8")
    path = tmp_path / "demo.tests.toml"
    path.write_text(tests, encoding="utf-8")
    return tmp_path / "demo.rules"


# --------------------------------------------------------------------------- the shipped cases


def test_the_tests_file_is_found_beside_the_protocol() -> None:
    assert path_of_tests(PROTOCOL_FILE) == TESTS_FILE
    code, out = run("test", str(PROTOCOL_FILE))
    assert code == 0, out
    assert out.strip().endswith("passed, 0 failed")


def test_the_shipped_cases_are_the_example_patients_with_their_verdicts(nct) -> None:
    """The first cases are examples/patients/ as they are, with expected.json's verdicts."""
    expected = json.loads((PATIENTS / "expected.json").read_text(encoding="utf-8"))
    suite = load_tests(TESTS_FILE, nct)
    by_name = {c.name: c for c in suite.cases}
    for file, verdict in expected.items():
        case = by_name[file.removesuffix(".json")]
        patient = json.loads((PATIENTS / file).read_text(encoding="utf-8"))
        as_of = patient.pop("as_of")
        assert case.patient == patient
        assert nct.evaluate(case.patient, case.as_of).as_of == nct.evaluate(patient, as_of).as_of
        assert case.status == verdict["status"]
        assert dict(case.outcomes) == verdict["outcomes"]
        assert sorted(case.missing or ()) == sorted(verdict["missing_facts"])


def test_coverage_of_nct04194671_reaches_every_outcome_operand_and_boundary(nct) -> None:
    suite = load_tests(TESTS_FILE, nct)
    results = run_tests(nct, suite)
    assert all(r.passed for r in results)
    cov = coverage(nct._program, results, "nct")
    for item in cov.criteria:
        missing = [o for o, cases in item.reached.items() if not cases]
        assert not missing, f"{item.id} never reaches {missing}"
    assert cov.outcome_totals.covered == 3 * len(nct.criteria)
    assert cov.percent == 100.0
    code, out = run("test", str(PROTOCOL_FILE), "--coverage", "--fail-under", "100")
    assert code == 0, out


def test_the_tests_file_follows_the_shipped_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    data = tomllib.loads(TESTS_FILE.read_text(encoding="utf-8"))
    data = json.loads(json.dumps(data, default=str))  # TOML datetimes as strings
    jsonschema.validate(data, schema)
    bad = {"version": 1, "case": [{"name": "x", "patient": {}, "status": "maybe"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


# --------------------------------------------------------------------------- the format


def test_inline_patient_base_without_and_toml_datetimes(tmp_path: Path) -> None:
    protocol = write(
        tmp_path,
        """version = 1
as_of = 2026-03-02T08:00:00Z

[[case]]
name = "adult"
status = "eligible"
[case.patient]
age = 40
pregnant = false
lactating = false

[[case]]
name = "age unknown"
base = "adult"
without = ["age"]
status = "indeterminate"
missing = ["age"]
outcomes = { I1 = "unknown", E1 = "not_met" }
""",
    )
    code, out = run("test", str(protocol))
    assert code == 0, out
    tests, diags = parse_tests((tmp_path / "demo.tests.toml").read_text(), "demo.tests.toml")
    assert not diags and tests is not None
    assert tests.cases[0].as_of == "2026-03-02T08:00:00Z"
    assert tests.cases[1].patient == {"pregnant": False, "lactating": False}


def test_a_patient_file_relative_to_the_tests_file(tmp_path: Path) -> None:
    (tmp_path / "patients").mkdir()
    (tmp_path / "patients" / "p.json").write_text(
        '{"age": 70, "pregnant": false, "lactating": false}'
    )
    protocol = write(
        tmp_path,
        'version = 1\n[[case]]\nname = "old"\npatient = "patients/p.json"\nstatus = "ineligible"\n',
    )
    code, out = run("test", str(protocol))
    assert code == 0, out


@pytest.mark.parametrize(
    ("text", "code", "line"),
    [
        ("version = 1\n[[case]\n", "PR630", 2),
        ('[[case]]\nname = "a"\npatient = {}\nstatus = "eligible"\n', "PR631", None),
        ('version = 2\n[[case]]\nname = "a"\npatient = {}\nstatus = "eligible"\n', "PR631", 1),
        ('version = 1\n[[case]]\nname = "a"\npatient = {}\nstatus = "maybe"\n', "PR631", 5),
        ('version = 1\n[[case]]\nname = "a"\npatient = {}\n', "PR631", 2),
        ('version = 1\n[[case]]\nname = "a"\npatient = {}\nstatus = "eligible"\ncolour = 1\n',
         "PR631", 6),
        ('version = 1\n[[case]]\nname = "a"\nbase = "b"\nstatus = "eligible"\n', "PR631", 4),
        ('version = 1\n[[case]]\nname = "a"\npatient = "nope.json"\nstatus = "eligible"\n',
         "PR633", 4),
        ("version = 1\ncase = 3\n", "PR631", None),
        ('version = 1\ncase = [{ name = "a", patient = {}, status = "maybe" }]\n', "PR631", None),
        ("", "PR631", None),
    ],
)  # fmt: skip
def test_a_malformed_tests_file_is_a_diagnostic_at_its_line(
    text: str, code: str, line: int | None
) -> None:
    tests, diags = parse_tests(text, "/nonexistent/demo.tests.toml")
    assert tests is None
    assert diags[0].code == code
    if line is not None:
        assert diags[0].span is not None and diags[0].span.line == line


def test_unknown_criterion_or_fact_names_are_refused(tmp_path: Path) -> None:
    protocol = write(
        tmp_path,
        'version = 1\n[[case]]\nname = "a"\nstatus = "eligible"\nmissing = ["agee"]\n'
        'outcomes = { I9 = "met" }\n[case.patient]\nage = 40\n',
    )
    code, out = run("test", str(protocol))
    assert code == 1
    assert "error[PR632]" in out and "did you mean `age`?" in out and "`I9`" in out


def test_no_tests_file_is_pr634(tmp_path: Path) -> None:
    (tmp_path / "demo.rules").write_text(SMALL)
    code, out = run("test", str(tmp_path / "demo.rules"))
    assert code == 1 and "error[PR634]" in out


# --------------------------------------------------------------------------- failures


def test_a_failure_is_a_diff_of_outcomes_with_the_deciding_explanation(tmp_path: Path) -> None:
    protocol = write(
        tmp_path,
        'version = 1\n[[case]]\nname = "pregnant adult"\nstatus = "eligible"\n'
        'outcomes = { E1 = "not_met", I1 = "met" }\n'
        "[case.patient]\nage = 40\npregnant = true\nlactating = false\n",
    )
    code, out = run("test", str(protocol))
    assert code == 1
    assert "FAIL pregnant adult" in out
    assert "status: expected eligible, got ineligible" in out
    assert "E1         not_met   met" in out
    assert "I1" not in out.split("why")[0].split("criterion")[1]  # I1 met as expected
    assert "pregnant or lactating  → true" in out  # E1's trace, the deciding criterion
    assert out.strip().endswith("0 passed, 1 failed")


def test_an_expected_refusal_passes_and_an_unexpected_one_fails(tmp_path: Path) -> None:
    protocol = write(
        tmp_path,
        'version = 1\n[[case]]\nname = "too old"\nerror = "PR405"\n[case.patient]\nage = 200\n'
        '[[case]]\nname = "bad"\nstatus = "eligible"\n[case.patient]\nage = 200\n',
    )
    code, out = run("test", str(protocol))
    assert code == 1
    assert "FAIL bad" in out and "PR405" in out and "FAIL too old" not in out


def test_json_output(tmp_path: Path) -> None:
    code, out = run("test", str(PROTOCOL_FILE), "--coverage", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["failed"] == 0 and data["passed"] == len(data["cases"])
    assert data["coverage"]["percent"] == 100.0
    assert {"all", "outcomes", "operands", "boundaries"} == set(data["coverage"]["totals"])


def test_fail_under(tmp_path: Path) -> None:
    protocol = write(
        tmp_path,
        'version = 1\n[[case]]\nname = "a"\nstatus = "eligible"\n'
        "[case.patient]\nage = 40\npregnant = false\nlactating = false\n",
    )
    code, out = run("test", str(protocol), "--fail-under", "90")
    assert code == 1 and "below --fail-under 90%" in out
    code, _ = run("test", str(protocol), "--fail-under", "10")
    assert code == 0


# --------------------------------------------------------------------------- coverage rules


def _logic(op: str, n: int):  # type: ignore[no-untyped-def]
    names = ["a", "b", "c"][:n]
    text = "protocol D\n" + "".join(f"fact {x}: boolean\n" for x in names)
    text += f'inclusion I "x": {f" {op} ".join(names)}\n'
    return parse_protocol(text).criteria[0].body


def test_an_operand_decides_when_flipping_it_alone_flips_the_decision() -> None:
    from protocol_rules.evaluate import NOTRUN
    from protocol_rules.facts import UNKNOWN as U

    both = _logic("and", 2)
    assert deciding_operands(both, True, [True, True]) == [0, 1]
    assert deciding_operands(both, False, [True, False]) == [1]
    assert deciding_operands(both, False, [False, NOTRUN]) == [0]  # masked: b short-circuited
    assert deciding_operands(both, False, [False, False]) == []  # neither alone
    assert deciding_operands(both, U, [True, U]) == []  # an unknown decision has no decider
    assert deciding_operands(both, False, [U, False]) == []  # flipped, it would be unknown
    either = _logic("or", 3)
    assert deciding_operands(either, True, [False, True, NOTRUN]) == [1]
    assert deciding_operands(either, False, [False, False, False]) == [0, 1, 2]


def test_at_least_operands_decide_by_the_count() -> None:
    text = (
        "protocol D\nfact a: boolean\nfact b: boolean\nfact c: boolean\n"
        'inclusion I "x": at least 2 of (a, b, c)\n'
    )
    node = parse_protocol(text).criteria[0].body
    assert deciding_operands(node, True, [True, True, False]) == [0, 1]
    assert deciding_operands(node, True, [True, True, True]) == []
    assert deciding_operands(node, False, [True, False, False]) == [1, 2]


def test_boundaries_count_a_case_exactly_on_the_threshold(tmp_path: Path) -> None:
    protocol = write(
        tmp_path,
        'version = 1\n[[case]]\nname = "18"\nstatus = "eligible"\n'
        "[case.patient]\nage = 18\npregnant = false\nlactating = false\n",
    )
    rules = load_protocol(protocol)
    suite = load_tests(tmp_path / "demo.tests.toml", rules)
    cov = coverage(rules._program, run_tests(rules, suite), "demo")
    (between,) = cov.boundaries
    assert between.labels == ["low", "high"] and between.reached == ["18", None]


def test_failure_text_shows_untrusted_text_safely(tmp_path: Path) -> None:
    protocol = write(
        tmp_path,
        'version = 1\n[[case]]\nname = "evil\\u001b[31m"\nstatus = "ineligible"\n'
        "[case.patient]\nage = 40\npregnant = false\nlactating = false\n",
    )
    rules = load_protocol(protocol)
    results = run_tests(rules, load_tests(tmp_path / "demo.tests.toml", rules))
    text = failure_text(results[0])
    assert "\x1b" not in text and "\\x1b" in text


# --------------------------------------------------------------------------- the pytest plugin


pytest_plugins = ["pytester"]


def test_the_pytest_plugin_collects_each_case(pytester: pytest.Pytester) -> None:
    pytester.makefile(".rules", demo=SMALL)
    pytester.makefile(
        ".tests.toml",
        demo='version = 1\n[[case]]\nname = "adult"\nstatus = "eligible"\n'
        "[case.patient]\nage = 40\npregnant = false\nlactating = false\n"
        '[[case]]\nname = "wrong"\nstatus = "eligible"\n'
        "[case.patient]\nage = 40\npregnant = true\nlactating = false\n",
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FAIL wrong*", "*status: expected eligible, got ineligible*"])


def test_the_pytest_plugin_reports_a_bad_tests_file(pytester: pytest.Pytester) -> None:
    pytester.makefile(".rules", demo=SMALL)
    pytester.makefile(".tests.toml", demo="version = 1\n[[case]\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*error[[]PR630[]]*"])


# --------------------------------------------------------------------------- what a user sees


def test_an_unknown_fact_in_a_case_is_reported_at_its_key_path_and_case_line(
    tmp_path: Path,
) -> None:
    protocol = write(
        tmp_path,
        'version = 1\n\n[[case]]\nname = "typo"\nstatus = "eligible"\n'
        "[case.patient]\nagee = 40\npregnant = false\nlactating = false\n",
    )
    code, out = run("test", str(protocol))
    assert code == 1
    tests = tmp_path / "demo.tests.toml"
    assert f"FAIL typo  ({tests}:3:1)" in out
    assert "got the record refused:" in out
    assert (
        f"$.agee: error[PR402]: `agee` is not a fact this protocol declares  ({tests}:7:1)" in out
    )
    assert "Traceback" not in out


def test_coverage_lists_the_outcomes_operands_and_boundaries_no_case_reached(
    tmp_path: Path,
) -> None:
    protocol = write(
        tmp_path,
        'version = 1\n[[case]]\nname = "adult"\nstatus = "eligible"\n'
        "[case.patient]\nage = 40\npregnant = false\nlactating = false\n",
    )
    code, out = run("test", str(protocol), "--coverage")
    assert code == 0
    rows = [line.split() for line in out.splitlines() if line.startswith("  I1 ")]
    assert ["I1", "1", "-", "-", "←", "missing"] in rows  # met only: not_met, unknown never
    assert "✗ true  ✓ false   pregnant" in out  # never seen deciding E1 while true
    assert "age between 18 years and 65 years   ✗ low  ✗ high" in out
    code, out = run("test", str(protocol), "--coverage", "--format", "json")
    data = json.loads(out)["coverage"]
    assert data["percent"] < 100


def test_lint_and_diff_refuse_cleanly_without_z3_and_test_does_not_need_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "z3", None)  # `import z3` raises ImportError
    for args in (["lint", str(PROTOCOL_FILE)], ["diff", str(PROTOCOL_FILE), str(PROTOCOL_FILE)]):
        code, out = run(*args)
        assert code == 2
        assert "error[PR640]" in out and "protocol-rules[lint]" in out
        assert "Traceback" not in out
    code, out = run("test", str(PROTOCOL_FILE))
    assert code == 0, out


def test_a_folder_runs_every_tests_file_in_it(tmp_path: Path) -> None:
    write(
        tmp_path,
        'version = 1\n[[case]]\nname = "adult"\nstatus = "eligible"\n'
        "[case.patient]\nage = 40\npregnant = false\nlactating = false\n",
    )
    (tmp_path / "other.rules").write_text(SMALL.replace("DEMO", "OTHER"), encoding="utf-8")
    (tmp_path / "other.tests.toml").write_text(
        'version = 1\n[[case]]\nname = "child"\nstatus = "eligible"\n[case.patient]\nage = 9\n',
        encoding="utf-8",
    )
    code, out = run("test", str(tmp_path))
    assert code == 1
    assert "demo.tests.toml: 1 passed, 0 failed" in out
    assert "FAIL child" in out and "other.tests.toml: 0 passed, 1 failed" in out
    code, out = run("test", str(tmp_path), "--format", "json")
    files = json.loads(out)["files"]
    assert [(f["passed"], f["failed"]) for f in files] == [(1, 0), (0, 1)]
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = run("test", str(empty))
    assert code == 1 and "error[PR634]" in out


def test_the_shipped_protocols_folder_passes() -> None:
    code, out = run("test", str(ROOT / "protocols"), "--fail-under", "100")
    assert code == 0, out


_VALID = (
    'version = 1\nas_of = 2026-03-02T08:00:00Z\n\n[[case]]\nname = "adult"\nstatus = "eligible"\n'
    'outcomes = { I1 = "met" }\n[case.patient]\nage = 40\npregnant = false\n\n'
    '[[case]]\nname = "b"\nbase = "adult"\nwithout = ["age"]\nstatus = "indeterminate"\n'
    'missing = ["age"]\n'
)


@settings(max_examples=200, deadline=None)
@given(
    cut=st.integers(0, len(_VALID)),
    length=st.integers(0, 40),
    insert=st.text(alphabet='[]{}="., \n#abcxyz019_-', max_size=12),
)
def test_a_damaged_tests_file_is_diagnostics_never_an_exception(
    cut: int, length: int, insert: str
) -> None:
    """Whatever is cut from or inserted into a tests file, loading it gives a `TestFile` or
    typed diagnostics with a known code; checking it against its protocol does too."""
    protocol = parse_protocol(SMALL, "/nonexistent/demo.rules")
    text = _VALID[:cut] + insert + _VALID[cut + length :]
    tests, diags = parse_tests(text, "/nonexistent/demo.tests.toml")
    if tests is None:
        assert diags and {d.code for d in diags} <= {"PR630", "PR631", "PR633"}
        for d in diags:
            assert d.span is None or 0 <= d.span.start <= d.span.end <= len(text)
    else:
        assert not diags
        for d in check_against(tests, protocol):
            assert d.code == "PR632"
        run_tests(protocol, tests)  # bad patient data is a failed case, not an exception
