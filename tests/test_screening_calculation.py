"""Screening protocols that calculate: `if`, `unknown`, `first_known`, `^`, math functions and
calls of the kidney library agree, row by row, with the interpreter (`evaluate`)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

pytest.importorskip("polars")

from protocol_rules import parse_protocol
from protocol_rules.sources import to_layout

from .test_screening import assert_agree, drawn, with_ids

CALC = """protocol CALC
use kidney
fact creatinine: quantity 'mg/dL' molar_mass 113.12 'g/mol'
fact age: quantity 'a' range 0 to 130
fact sex: one of female, male
fact weight: quantity 'kg' range 1 to 400
fact height: quantity 'cm' range 30 to 250
fact urea: quantity 'mmol/L' molar_mass 60.06 'g/mol'
fact bun: quantity 'mg/dL' molar_mass 28.0134 'g/mol'
fact urine_output: series of quantity 'mL/kg/h'
fact x: number

define egfr = ckd_epi_2021(creatinine, age, sex = female)
define scaled(v: number, k: number) = if v is known then v * k else 0

inclusion EGFR "eGFR 25-75": egfr between 25 'mL/min/{1.73_m2}' and 75 'mL/min/{1.73_m2}'
exclusion CRCL "CrCl < 30 mL/min":
  cockcroft_gault(creatinine, age, weight, sex = female) < 30 'mL/min'
inclusion BMI "BMI 20-45": bmi(weight, height) between 20 'kg/m2' and 45 'kg/m2'
exclusion UREA "urea > 20 mmol/L": first_known(urea, bun) > 20 'mmol/L'
inclusion URINE "6 hourly values below 0.5":
  if count(urine_output over last 6 hours) >= 6
    then all(urine_output over last 6 hours) < 0.5 'mL/kg/h'
    else unknown
inclusion MATH "math": round(x, 2) != 2.68 and (ln(x) < 5 or sqrt(x) < 3) and x ^ 0.5 < 100
  and max(x, 3) - min(x, 3) >= 0 and abs(-x) = abs(x) and exp(x) > 0 and log10(x) < 3
inclusion CALL "calls": scaled(x, 2) + scaled(x, 3) >= 0 and -2 ^ 2 = -4
"""


def grid() -> list[dict[str, Any]]:
    """Patients at the knots, with missing facts and domain errors (ln, sqrt of negatives)."""
    as_of = "2026-03-01T08:30:00Z"
    out = []
    urine = [
        [{"value": v, "at": f"2026-03-01T0{h + 3}:00:00Z"} for h, v in enumerate(values)]
        for values in ([0.3] * 6, [0.3] * 5 + [0.7], [0.3] * 5, [])
    ]
    for creatinine, age, sex, x, series in itertools.product(
        (0.7, 0.9, 1.4, None), (40, 80, None), ("female", "male", None), (2.675, -1, 0, None),
        urine,
    ):  # fmt: skip
        patient: dict[str, Any] = {"as_of": as_of, "urine_output": series, "weight": 70}
        for name, value in (("creatinine", creatinine), ("age", age), ("sex", sex), ("x", x)):
            if value is not None:
                patient[name] = value
        patient["height"] = 170 if age != 80 else {"value": 67, "unit": "[in_i]"}
        patient["bun" if age == 40 else "urea"] = 60 if age == 40 else 18
        out.append(patient)
    return out


def test_calculation_protocol_agrees_with_evaluate():
    protocol = parse_protocol(CALC)
    records = grid()
    assert_agree(protocol, with_ids(records))
    assert_agree(protocol, records, to_layout(with_ids(records)))


def test_drawn_patients_agree_with_evaluate():
    protocol = parse_protocol(CALC)
    found = drawn(protocol, 150, absent=0.2)
    assert_agree(protocol, with_ids(found))
