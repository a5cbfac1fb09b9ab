"""NCT04194671 criterion by criterion: each is met, not met and unknown when it should be."""

from __future__ import annotations

import pytest

from .conftest import load_patient

IDS = [f"I{i}" for i in range(1, 5)] + [f"E{i}" for i in range(1, 21)]


@pytest.mark.parametrize("cid", IDS)
def test_each_criterion_is_decided_for_the_complete_eligible_patient(nct, cid):
    outcome = nct.evaluate(load_patient("eligible.json")).outcomes[cid].value
    assert outcome == ("met" if cid.startswith("I") else "not_met")


@pytest.mark.parametrize("cid", IDS)
def test_each_criterion_is_unknown_without_its_facts(nct, cid):
    patient = load_patient("eligible.json")
    criterion = next(c for c in nct.criteria if c.id == cid)
    for name in criterion.facts:
        patient.pop(name, None)
    result = nct.evaluate(patient)
    assert result.outcomes[cid].value == "unknown"
    assert result.status.value == "indeterminate"
    assert cid in [c.id for c in result.deciding]
    missing = {m.name for m in result.missing_facts}
    assert missing and missing <= set(criterion.facts)


BOOLEAN_ONLY = {
    "I3": ["informed_consent"], "I4": ["able_to_comply"], "E2": ["pregnant", "lactating"],
    "E3": ["allergic"], "E4": ["organ_transplant", "hematopoietic_stem_cell_transplant"],
    "E5": ["malignant_tumor", "cancer_history"], "E7": ["end_stage_liver_disease"],
    "E8": ["uncontrolled_infection"], "E10": ["severe_pulmonary_dysfunction"],
    "E12": ["hemodynamically_unstable"], "E14": ["vasculitis"],
    "E15": ["chronic_systemic_infection_history"], "E16": ["vasopressor_escalation_expected"],
    "E19": ["mechanical_ventilation"], "E20": ["in_other_trial"],
}  # fmt: skip


@pytest.mark.parametrize(("cid", "facts"), sorted(BOOLEAN_ONLY.items()))
def test_each_boolean_criterion_flips_with_any_of_its_facts(nct, cid, facts):
    for name in facts:
        patient = load_patient("eligible.json")
        patient[name] = not patient[name]
        result = nct.evaluate(patient)
        assert result.outcomes[cid].value == ("not_met" if cid.startswith("I") else "met")
        assert result.status.value == "ineligible"
        assert [c.id for c in result.deciding] == [cid]
