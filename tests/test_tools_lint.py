"""`protocol-rules lint`: planted defects in copies of NCT04194671 are found, each with a witness
the interpreter confirms (checked here again, independently); the shipped protocol is clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol_rules import parse_protocol
from protocol_rules.cli import cli
from protocol_rules.diagnostics import CODES
from protocol_rules.format import format_text
from protocol_rules.result import Trace

from .conftest import PROTOCOL_FILE

pytest.importorskip("z3")

from protocol_rules.tools.allow import LINT_CODES
from protocol_rules.tools.lint import Finding, lint

BASE = PROTOCOL_FILE.read_text(encoding="utf-8")
E9 = "age < 65 years and baseline_egfr < 60 'mL/min/{1.73_m2}'"
END = "in_other_trial\n"  # the last line of the file: planted criteria go after it

#: name -> ([(old, new), ...], the codes that must be found). Each is a defect a protocol author
#: could make: a contradiction, a threshold the declared range makes pointless, criteria that
#: exclude each other or everyone, operands that change nothing.
DEFECTS: dict[str, tuple[list[tuple[str, str]], set[str]]] = {
    "contradictory-criterion": (
        [("age between 18 years and 65 years\n",
          "age between 18 years and 65 years and age > 70 years\n")],
        {"PR601"},
    ),
    "threshold-beyond-range": (
        [("non_renal_organ_failures > 2", "non_renal_organ_failures > 12")], {"PR606", "PR601"}
    ),
    "threshold-always-true": (
        [("lvef < 40 '%' or", "lvef < 140 '%' or")], {"PR606", "PR602"}
    ),
    "tautology": (
        [("life_expectancy < 3 months\n",
          "life_expectancy < 3 months or life_expectancy >= 3 months\n")],
        {"PR602"},
    ),
    "always-true-bound": (
        [("non_renal_organ_failures > 2", "non_renal_organ_failures >= 0")], {"PR606", "PR602"}
    ),
    "inclusion-implies-exclusion": (
        [(END, END + '\nexclusion E21 "Adults":\n  age >= 18 years\n')], {"PR603"}
    ),
    "inclusions-contradict": (
        [(END, END + '\ninclusion I5 "Elderly":\n  age > 70 years\n')], {"PR607"}
    ),
    "exclusions-cover-everyone": (
        [(END, END + '\nexclusion E21 "Low platelets":\n  platelet_count < 100000 \'/uL\'\n'
          '\nexclusion E22 "High platelets":\n  platelet_count >= 100000 \'/uL\'\n')],
        {"PR608"},
    ),
    "nobody-eligible-three-way": (
        [
            (
                END,
                END + '\ninclusion I5 "Good heart or a child":\n'
                "  lvef > 50 '%' or age < 18 years\n"
                "\nexclusion E21 \"Good heart\":\n  lvef > 50 '%'\n",
            )
        ],
        {"PR604"},
    ),
    "redundant-disjunct": (
        [("platelet_count < 25000 '/uL' or",
          "platelet_count < 25000 '/uL' or platelet_count < 20000 '/uL' or")],
        {"PR605"},
    ),
    "redundant-conjunct": ([(E9, E9 + " and age < 70 years")], {"PR605"}),
    "redundant-in-define": (
        [("max(urine_output over last 12 hours) < 0.5 'mL/kg/h'\n",
          "max(urine_output over last 12 hours) < 0.5 'mL/kg/h'\n"
          "  or max(urine_output over last 12 hours) < 0.4 'mL/kg/h'\n")],
        {"PR605"},
    ),
    "window-beyond-range": (
        [("fact urine_output: series of quantity 'mL/kg/h'",
          "fact urine_output: series of quantity 'mL/kg/h' range 0 to 50"),
         ("< 0.5 'mL/kg/h'\n", "< 0 'mL/kg/h'\n")],
        {"PR606"},
    ),
    "calendar-contradiction": (
        [(END, END + '\nexclusion E21 "Changed recently":\n'
          "  time_since(immunosuppression_last_change) <= 4 months\n"
          "  and time_since(immunosuppression_last_change) > 5 months\n")],
        {"PR601"},
    ),
    "any-and-all-contradict": (
        [(END, END + '\nexclusion E21 "High dose":\n'
          "  any(prednisone_equivalent_dose over last 30 days) > 15 'mg/d'\n"
          "  and all(prednisone_equivalent_dose over last 30 days) < 10 'mg/d'\n")],
        {"PR601"},
    ),
}  # fmt: skip


def planted(name: str) -> str:
    text = BASE
    for old, new in DEFECTS[name][0]:
        assert old in text, (name, old)
        text = text.replace(old, new, 1) if old != END else text[: -len(END)] + new
    return text


def _find(trace: Trace, text: str) -> Trace | None:
    for node in trace.walk():
        if " ".join(node.expr.split()) == text:
            return node
    return None


def _shows(f: Finding, protocol: Any, original: Any) -> bool:
    """Whether the witness, evaluated here, shows what the finding claims."""
    result = protocol.evaluate(f.witness)
    out = {c.id: c.outcome.value for c in result.criteria}
    ids = f.criteria
    match f.code:
        case "PR601":
            return out[ids[0]] != "met"
        case "PR602":
            return out[ids[0]] != "not_met"
        case "PR603":
            return out[ids[0]] == "met" and out[ids[1]] != "not_met"
        case "PR607":
            return out[ids[0]] == "met" and out[ids[1]] != "met"
        case "PR608":
            return out[ids[0]] == "not_met" and out[ids[1]] != "not_met"
        case "PR604":
            return result.status.value != "eligible"
        case "PR605":  # the original protocol is the planted one without the operand
            before = original.evaluate(f.witness)
            return all(out[i] == before.criterion(i).outcome.value for i in ids)
        case "PR606":
            span = f.diagnostic.span
            assert span is not None
            text = " ".join(span.text.split())
            value = "always" in f.diagnostic.message
            nodes = [_find(c.trace, text) for c in result.criteria]
            return any(n is not None and n.evaluated and n.value is value for n in nodes)
    raise AssertionError(f.code)


@pytest.fixture(scope="module")
def reports() -> dict[str, Any]:
    out = {}
    for name in DEFECTS:
        protocol = parse_protocol(planted(name), f"{name}.rules")
        out[name] = (protocol, lint(protocol))
    return out


def test_at_least_a_dozen_defects_are_planted() -> None:
    assert len(DEFECTS) >= 12
    assert {c for _, codes in DEFECTS.values() for c in codes} >= set(LINT_CODES)


@pytest.mark.parametrize("name", list(DEFECTS))
def test_each_planted_defect_is_found_with_a_confirmed_witness(
    name: str, reports: dict[str, Any], nct: Any
) -> None:
    protocol, report = reports[name]
    codes = {f.code for f in report.findings}
    assert DEFECTS[name][1] <= codes, [f.diagnostic.message for f in report.findings]
    for f in report.findings:
        assert f.witness_status == "confirmed", f
        assert f.witness is not None
        assert _shows(f, protocol, nct), (f.diagnostic.message, f.witness)


def test_the_shipped_protocol_has_no_findings(nct: Any) -> None:
    report = lint(nct)
    assert report.clean, [f.diagnostic.message for f in report.findings]
    assert not report.silenced and not report.undecided


def test_lint_codes_are_registered_and_documented() -> None:
    assert set(LINT_CODES) <= set(CODES)
    page = (Path(__file__).parent.parent / "docs" / "lint.md").read_text(encoding="utf-8")
    for code in LINT_CODES:
        assert code in page, f"{code} is not on docs/lint.md"


# --------------------------------------------------------------------------- allow comments


def _with_allow(comment_before: str = "", comment_after: str = "") -> str:
    text = planted("threshold-beyond-range")
    header = 'exclusion E13 "Organ failure'
    text = text.replace(header, comment_before + header)
    return text.replace(
        "non_renal_organ_failures > 12", "non_renal_organ_failures > 12" + comment_after
    )


def test_an_allow_comment_silences_a_finding_with_its_reason() -> None:
    text = _with_allow(
        '# lint: allow PR601 "planted for the test"\n', '  # lint: allow PR606 "also planted"'
    )
    report = lint(parse_protocol(text, "x.rules"))
    assert report.clean
    assert {(f.code, f.silenced) for f in report.silenced} == {
        ("PR601", "planted for the test"),
        ("PR606", "also planted"),
    }


def test_the_formatter_keeps_allow_comments_and_they_still_apply() -> None:
    text = _with_allow('# lint: allow PR601, PR606 "planted"\n')
    formatted = format_text(text, "x.rules")
    assert '# lint: allow PR601, PR606 "planted"' in formatted
    assert lint(parse_protocol(formatted, "x.rules")).clean


@pytest.mark.parametrize(
    ("comment", "code"),
    [
        ("# lint: allow PR601\n", "PR620"),  # no reason
        ('# lint: allow PR999 "x"\n', "PR620"),  # not a lint code
        ('# lint: allow PR602 "x"\n', "PR621"),  # nothing to silence
    ],
)
def test_malformed_and_unused_allow_comments(comment: str, code: str) -> None:
    report = lint(parse_protocol(_with_allow(comment), "x.rules"))
    assert code in {d.code for d in report.problems}
    assert not report.clean


def test_a_detached_allow_comment_silences_nothing() -> None:
    text = _with_allow('# lint: allow PR601 "planted"\n\n')
    report = lint(parse_protocol(text, "x.rules"))
    assert "PR601" in {f.code for f in report.findings}
    assert "PR621" in {d.code for d in report.problems}


# --------------------------------------------------------------------------- the command


def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    runner = CliRunner()
    clean = runner.invoke(cli, ["lint", str(PROTOCOL_FILE)])
    assert clean.exit_code == 0, clean.output
    bad = tmp_path / "bad.rules"
    bad.write_text(planted("inclusions-contradict"), encoding="utf-8")
    result = runner.invoke(cli, ["lint", str(bad), "--format", "json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["version"] == "1.0"
    (report,) = data["protocols"]
    (finding,) = report["findings"]
    assert finding["code"] == "PR607" and finding["criteria"] == ["I2", "I5"]
    assert finding["witness_status"] == "confirmed" and finding["witness"]["age"] <= 65
    text = runner.invoke(cli, ["lint", str(bad)])
    assert "warning[PR607]" in text.output and "witness (confirmed by eval" in text.output


def test_lint_of_a_protocol_with_calculations_does_not_crash() -> None:
    text = """protocol CALC
use kidney
fact creatinine: quantity 'mg/dL'
fact age: quantity 'a' range 0 to 130
fact female: boolean
fact weight: quantity 'kg' range 1 to 400
fact height: quantity 'm' range 0.5 to 2.5
fact doses: series of quantity 'mg' range 0 to 1000

define egfr = ckd_epi_2021(creatinine, age, female)

inclusion I1 "eGFR 30 or more": egfr >= 30 'mL/min/{1.73_m2}'
inclusion I2 "BMI under 40": bmi(weight, height) < 40 'kg/m2'
exclusion E1 "Two high doses in a row":
  consecutive(doses over last 7 days where value > 500 'mg') >= 2
exclusion E2 "Rounded":
  round(ln(weight / 1 'kg'), 1) > 100 or first_known(age, 50 years) > 200 years
"""
    protocol = parse_protocol(text, "calc.rules")
    report = lint(protocol)
    # `first_known(age, 50 years)` is at most 130 years: the second operand of E2 is never
    # true, so it never changes E2. (ln and round are free values: nothing is claimed of them.)
    messages = [f.diagnostic.message for f in report.findings]
    assert any(m.startswith("`first_known(age, 50 years) > 200 years` never") for m in messages)
    assert {"ln", "round"} <= set(report.abstracted)
    for f in report.findings:
        assert f.witness_status in ("confirmed", "unconfirmed", "none")


# --------------------------------------------------------------------------- laws


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    a=st.integers(-20, 120),
    b=st.integers(-20, 120),
    c=st.integers(-20, 120),
)
def test_lint_finds_an_impossible_interval_exactly_and_its_witnesses_hold(
    a: int, b: int, c: int
) -> None:
    """`x > a and x < b` over a declared range 0 to 100 can be met exactly when the open
    interval meets the range; every witness lint gives shows, under `eval`, what it claims."""
    text = (
        "protocol LAW\nfact x: quantity 'mg/dL' range 0 to 100\nfact y: boolean\n"
        f"inclusion I1 \"In the interval\": x > {a} 'mg/dL' and x < {b} 'mg/dL'\n"
        f"exclusion E1 \"High or y\": x >= {c} 'mg/dL' or y\n"
    )
    protocol = parse_protocol(text, "law.rules")
    report = lint(protocol)
    possible = a < b and a < 100 and b > 0
    never_met = any(f.code == "PR601" and f.criteria == ("I1",) for f in report.findings)
    assert never_met is not possible, [f.diagnostic.message for f in report.findings]
    assert not report.undecided
    for f in report.findings:
        if f.code == "PR605":  # redundancy: the witness is checked by the planted tests
            continue
        assert f.witness_status == "confirmed", f.diagnostic.message
        if f.code == "PR606":  # the comparison alone (an `and` may not reach it)
            assert f.diagnostic.span is not None
            alone = parse_protocol(
                text.split("inclusion")[0] + f'inclusion C "c": {f.diagnostic.span.text}\n'
            )
            outcome = alone.evaluate(f.witness).criterion("C").outcome.value
            assert outcome == ("met" if "always" in f.diagnostic.message else "not_met")
        else:
            assert _shows(f, protocol, protocol), (f.diagnostic.message, f.witness)


def test_undecided_questions_are_shown_never_silently_dropped(nct: Any) -> None:
    import attrs

    from protocol_rules.tools.lint import lint_dict, lint_text

    report = attrs.evolve(lint(nct), undecided=("can E9 be met?",))
    assert "undecided (1 question(s) the solver could not answer in time; raise --timeout)" in (
        lint_text(report)
    )
    assert lint_dict(report)["undecided"] == ["can E9 be met?"]
