"""The example patients of NCT04194671 against their hand-worked verdicts (expected.json)."""

from __future__ import annotations

import pytest

from .conftest import PATIENTS, expected, load_patient

CASES = sorted(expected())


@pytest.mark.parametrize("name", CASES)
def test_status_outcomes_deciding_and_missing_facts(nct, name):
    want = expected()[name]
    result = nct.evaluate(load_patient(name))
    assert result.status.value == want["status"]
    assert {k: v.value for k, v in result.outcomes.items()} == want["outcomes"]
    assert sorted(c.id for c in result.deciding) == sorted(want["deciding"])
    assert sorted(m.name for m in result.missing_facts) == sorted(want["missing_facts"])


def test_every_example_file_has_an_expectation():
    files = {p.name for p in PATIENTS.glob("*.json")} - {"expected.json"}
    assert files == set(CASES)
    assert len(files) >= 8
