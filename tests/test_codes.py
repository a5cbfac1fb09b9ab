"""Codes in the language (docs/language/codes.md): the polars engine agrees with the
interpreter on `in` / `contains` over codes, sets and series of codes, refuses what it cannot
screen with PR503, and reports malformed codes in the data as `evaluate` does (PR430-PR433)."""

from __future__ import annotations

from typing import Any

import pytest

from protocol_rules import PatientDataError, parse_protocol
from protocol_rules.codes import StaticTerminology
from protocol_rules.sources import to_layout

from .test_screening import assert_agree, drawn, with_ids

CODED = """\
protocol CODED
fact primary_diagnosis: code "Primary diagnosis of the admission"
fact diagnoses: set of code "Every diagnosis coded for the admission"
fact diagnosis_events: series of code "Diagnoses, each with the time it was recorded"
codes aki = {ICD10CM#N17*, SNOMED#14669001 "Acute renal failure syndrome"}
codes ckd = {ICD10CM#N18.6, ICD10CM#N19}
inclusion I1 "AKI": primary_diagnosis in aki or primary_diagnosis = ICD10CM#I10
inclusion I2 "Any": diagnoses contains any of aki
exclusion E1 "All": diagnoses contains all of {ICD10CM#N18.6, ICD10CM#N17*}
exclusion E2 "One": diagnoses contains ICD10CM#N19
exclusion E3 "None recent": all(diagnosis_events over last 1 year) not in aki
exclusion E4 "Some recent": any(diagnosis_events over last 30 days) in ckd
exclusion E5 "Not in": primary_diagnosis not in ckd
"""


def test_polars_agrees_with_the_interpreter_on_codes() -> None:
    protocol = parse_protocol(CODED)
    records = drawn(protocol, 300, absent=0.2)
    assert_agree(protocol, with_ids(records))
    assert_agree(protocol, records, to_layout(with_ids(records)))


def test_descendants_from_a_terminology_are_screened_too() -> None:
    snomed = StaticTerminology({"SNOMED#77386006": ["SNOMED#72892002"]})
    text = (
        "protocol P\nfact conditions: set of code\n"
        'codes pregnancy = {SNOMED#77386006* "Pregnancy"}\n'
        'exclusion E1 "Pregnant": conditions contains any of pregnancy\n'
    )
    protocol = parse_protocol(text, terminology=snomed)
    records = [
        {"conditions": ["SNOMED#72892002"]},
        {"conditions": [{"system": "http://snomed.info/sct", "code": "77386006"}]},
        {"conditions": ["SNOMED#14669001"]},
        {"conditions": []},
        {},
    ]
    assert [protocol.evaluate(r).status.value for r in records] == [
        "ineligible",
        "ineligible",
        "eligible",
        "eligible",
        "indeterminate",
    ]
    assert_agree(protocol, with_ids(records))


def test_a_filter_on_codes_is_screened_as_evaluate_reads_it() -> None:
    """`W where value in S` on a series of codes: the windows of the polars engine read filters
    (engines/polars_windows.py), and the code handlers read `value` as each observation's code."""
    window = "diagnosis_events over last 1 year where value in ckd"
    text = CODED + f'exclusion E9 "Filter": exists({window}) and count({window}) >= 2\n'
    protocol = parse_protocol(text)
    records = drawn(protocol, 200, absent=0.2)
    assert_agree(protocol, with_ids(records))
    assert_agree(protocol, records, to_layout(with_ids(records)))


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("N17.9", "PR431"),
        ("FOO#1", "PR432"),
        ("LOINC#2160-1", "PR433"),
        ({"system": "http://loinc.org"}, "PR430"),
    ],
)
def test_malformed_codes_in_data(value: Any, code: str) -> None:
    protocol = parse_protocol(CODED)
    record = {"primary_diagnosis": "ICD10CM#N17.9", "diagnoses": [value]}
    with pytest.raises(PatientDataError) as caught:
        protocol.evaluate(record)
    assert caught.value.diagnostics[0].code == code
    good = {"primary_diagnosis": "ICD10CM#N17.9", "diagnoses": ["ICD10CM#N17.9"]}
    assert_agree(protocol, with_ids([record, good]))


def test_the_sql_compiler_refuses_codes_with_pr520() -> None:
    from protocol_rules.engines import ScreeningError
    from protocol_rules.engines.sql import compile_sql

    with pytest.raises(ScreeningError) as caught:
        compile_sql(parse_protocol(CODED).checked, "duckdb")
    (d,) = caught.value.diagnostics
    assert d.code == "PR520" and "`primary_diagnosis`" in d.message and "codes" in d.message
