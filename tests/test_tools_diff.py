"""`protocol-rules diff`: what an amendment of NCT04194671 changes, with witnesses both versions
confirm (checked here again), proofs for rewordings, and the population that moves.

Laws: a protocol diffed with itself (or with a reformatted copy) is the same; a criterion the
solver proves equivalent gives every generated patient the same outcome; a witness's outcomes,
evaluated independently, differ as the report says.
"""

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
from protocol_rules.testing import patients

from .conftest import PATIENTS, PROTOCOL_FILE

pytest.importorskip("z3")

from protocol_rules.tools.diff import diff, diff_dict, diff_markdown, diff_text

BASE = PROTOCOL_FILE.read_text(encoding="utf-8")
E9 = "age < 65 years and baseline_egfr < 60 'mL/min/{1.73_m2}'"
E9_45 = "age < 65 years and baseline_egfr < 45 'mL/min/{1.73_m2}'"
E9_SWAPPED = "baseline_egfr < 60 'mL/min/{1.73_m2}' and not (age >= 65 years)"


def _amended(*edits: tuple[str, str], name: str = "amended.rules") -> Any:
    text = BASE
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    return parse_protocol(text, name)


@pytest.fixture(scope="module")
def threshold_change(nct: Any) -> Any:
    return diff(nct, _amended((E9, E9_45)))


def test_a_threshold_change_is_reported_with_a_witness_both_versions_confirm(
    nct: Any, threshold_change: Any
) -> None:
    report = threshold_change
    assert not report.same
    changed = [c for c in report.criteria if c.change != "unchanged"]
    assert [c.id for c in changed] == ["E9"]
    e9 = changed[0]
    assert e9.change == "changed" and e9.logic == "different"
    assert e9.witness_status == "confirmed"
    new = _amended((E9, E9_45))
    before = nct.evaluate(e9.witness).criterion("E9").outcome.value
    after = new.evaluate(e9.witness).criterion("E9").outcome.value
    assert (before, after) == e9.outcomes == ("met", "not_met")
    # the eGFR the witness holds is where the two thresholds disagree
    egfr = e9.witness["baseline_egfr"]
    egfr = egfr["value"] if isinstance(egfr, dict) else egfr
    assert 45 <= egfr < 60


def test_the_status_witness_changes_status(nct: Any, threshold_change: Any) -> None:
    report = threshold_change
    assert report.statuses_equal is False
    new = _amended((E9, E9_45))
    witness = report.status_witness
    statuses = (nct.evaluate(witness).status.value, new.evaluate(witness).status.value)
    assert statuses == report.status_outcomes == ("ineligible", "eligible")


def test_the_population_count_matches_patient_by_patient_evaluation(
    nct: Any, tmp_path: Path
) -> None:
    pytest.importorskip("polars")
    records = []
    for path in sorted(PATIENTS.glob("*.json")):
        if path.name != "expected.json":
            records.append({"id": path.stem, **json.loads(path.read_text(encoding="utf-8"))})
    # three more young patients around the two thresholds
    young = json.loads((PATIENTS / "young-low-egfr.json").read_text(encoding="utf-8"))
    for i, egfr in enumerate((44, 50, 59.9)):
        records.append({**young, "id": f"egfr-{i}", "baseline_egfr": egfr})
    data = tmp_path / "population.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    new = _amended((E9, E9_45))

    report = diff(nct, new, population=str(data))

    moves: dict[tuple[str, str], int] = {}
    for r in records:
        patient = {k: v for k, v in r.items() if k != "id"}
        a, b = nct.evaluate(patient).status.value, new.evaluate(patient).status.value
        if a != b:
            moves[(a, b)] = moves.get((a, b), 0) + 1
    assert moves, "the population should hold patients the amendment moves"
    assert report.population is not None
    assert report.population.patients == len(records)
    assert {(a, b): n for a, b, n in report.population.moves} == moves
    e9 = next(c for c in report.criteria if c.id == "E9")
    assert e9.population is not None and e9.population >= 2


def test_a_reformatted_copy_means_the_same(nct: Any) -> None:
    reformatted = _amended(
        (E9, "(age < 65 years)\n    and (baseline_egfr < 60 'mL/min/{1.73_m2}')"),
        ("\nexclusion ", "\n\n# an extra comment\nexclusion "),
    )
    report = diff(nct, reformatted)
    assert report.same
    assert all(c.change == "unchanged" for c in report.criteria)
    assert report.statuses_equal is True


def test_a_rewritten_criterion_is_proved_equivalent(nct: Any) -> None:
    report = diff(nct, _amended((E9, E9_SWAPPED)))
    e9 = next(c for c in report.criteria if c.id == "E9")
    assert e9.logic == "equivalent" and e9.change == "unchanged"
    assert e9.witness is None
    assert report.same


def test_a_reworded_criterion_is_reported_but_means_the_same(nct: Any) -> None:
    old_text = '"Patients younger than 65 years old ,whose estimated'
    report = diff(nct, _amended((old_text, '"Patients younger than 65 years, whose estimated')))
    e9 = next(c for c in report.criteria if c.id == "E9")
    assert e9.change == "reworded" and e9.reworded == ("text",)
    assert e9.logic == "identical"
    assert report.same


def test_added_and_removed_criteria(nct: Any) -> None:
    removed = BASE[BASE.index('exclusion E9 "') : BASE.index('exclusion E10 "')]
    new = _amended(
        (removed, ""),
        ("in_other_trial\n", 'in_other_trial\n\nexclusion E99 "Old":\n  age > 90 years\n'),
    )
    report = diff(nct, new)
    changes = {c.id: c.change for c in report.criteria if c.change != "unchanged"}
    assert changes == {"E9": "removed", "E99": "added"}
    assert not report.same


def test_a_protocol_diffed_with_itself_is_the_same(nct: Any) -> None:
    report = diff(nct, nct)
    assert report.same
    assert {c.logic for c in report.criteria} == {"identical"}
    assert not report.facts


_EQUIVALENT = {
    "E9": (E9, E9_SWAPPED),
    "E9-between": (E9, "not (age >= 65 years) and not (baseline_egfr >= 60 'mL/min/{1.73_m2}')"),
}


@pytest.fixture(scope="module")
def equivalent_pairs(nct: Any) -> list[tuple[Any, str]]:
    out = []
    for old, new in _EQUIVALENT.values():
        amended = _amended((old, new))
        report = diff(nct, amended)
        assert report.same, old
        out.append((amended, "E9"))
    return out


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_an_equivalence_proof_holds_for_every_generated_patient(
    nct: Any, equivalent_pairs: list[tuple[Any, str]], data: Any
) -> None:
    patient = data.draw(patients(nct))
    before = nct.evaluate(patient)
    for amended, cid in equivalent_pairs:
        after = amended.evaluate(patient)
        assert after.criterion(cid).outcome == before.criterion(cid).outcome
        assert after.status == before.status


# --------------------------------------------------------------------------- output and CLI


def test_text_markdown_and_json_name_the_change_and_the_witness(threshold_change: Any) -> None:
    text = diff_text(threshold_change)
    assert "E9" in text and "witness (confirmed by eval)" in text
    markdown = diff_markdown(threshold_change)
    assert "E9" in markdown and "```json" in markdown
    payload = diff_dict(threshold_change)
    assert json.loads(json.dumps(payload)) == payload
    e9 = next(c for c in payload["criteria"] if c["id"] == "E9")
    assert e9["change"] == "changed" and e9["witness_status"] == "confirmed"
    assert e9["outcomes"] == {"old": "met", "new": "not_met"}
    assert payload["same"] is False and payload["status"]["equal"] is False


def test_cli_exit_codes(tmp_path: Path) -> None:
    amended = tmp_path / "amended.rules"
    amended.write_text(BASE.replace(E9, E9_45), encoding="utf-8")
    copy = tmp_path / "copy.rules"
    copy.write_text(BASE.replace(E9, E9_SWAPPED), encoding="utf-8")
    runner = CliRunner()
    same = runner.invoke(cli, ["diff", str(PROTOCOL_FILE), str(copy)])
    assert same.exit_code == 0, same.output
    differ = runner.invoke(cli, ["diff", str(PROTOCOL_FILE), str(amended), "--format", "json"])
    assert differ.exit_code == 1, differ.output
    assert json.loads(differ.output)["same"] is False


def test_cli_refuses_a_bad_protocol_with_its_diagnostic(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rules"
    bad.write_text(BASE.replace(E9, "age < 65 yeers"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["diff", str(PROTOCOL_FILE), str(bad)])
    assert result.exit_code == 1
    assert "error[PR" in result.output and "Traceback" not in result.output


def test_the_markdown_report_escapes_untrusted_criterion_text() -> None:
    header = "protocol M\nfact age: quantity 'a' range 0 to 130\n"
    text = '"Adult ``` <script>alert(1)</script> **x**"'
    old = parse_protocol(f"{header}inclusion I1 {text}: age >= 18 years\n", "a.rules")
    new = parse_protocol(f"{header}inclusion I1 {text}: age >= 21 years\n", "b.rules")
    markdown = diff_markdown(diff(old, new))
    assert "<script>" not in markdown
    assert "**x**" not in markdown
    assert markdown.count("```") % 2 == 0  # every fence opened is closed


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(threshold=st.integers(1, 120), op=st.sampled_from(["<", "<="]))
def test_diff_reports_e9_changed_exactly_when_its_threshold_changes(
    nct: Any, threshold: int, op: str
) -> None:
    """A random amendment of E9's eGFR threshold: changed exactly when it means another set of
    patients, and then with a witness whose eGFR lies between the two thresholds."""
    new_e9 = f"age < 65 years and baseline_egfr {op} {threshold} 'mL/min/{{1.73_m2}}'"
    amended = _amended((E9, new_e9))
    e9 = next(c for c in diff(nct, amended).criteria if c.id == "E9")
    same = op == "<" and threshold == 60
    assert (e9.change == "unchanged") is same, (op, threshold, e9.logic)
    if not same:
        assert e9.logic == "different" and e9.witness_status == "confirmed"
        before = nct.evaluate(e9.witness).criterion("E9").outcome.value
        after = amended.evaluate(e9.witness).criterion("E9").outcome.value
        assert before != after
        egfr = e9.witness["baseline_egfr"]
        egfr = egfr["value"] if isinstance(egfr, dict) else egfr
        assert min(threshold, 60) <= egfr <= max(threshold, 60)
