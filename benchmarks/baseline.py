"""Hand-written baseline for NCT04194671: the 24 criteria in plain, dependency-free Python.

This is what a careful engineer would write without the rules engine: one function per
criterion group, reading the raw patient dict (the same input format the engine takes) and
applying the readings of `protocols/nct04194671.rules` with Kleene three-valued logic. It
serves two purposes:

- a speed baseline for the engine's benchmarks (`evaluate_baseline` is the timed function);
- an independent oracle: `python3 benchmarks/baseline.py` evaluates every
  `examples/patients/*.json` and compares with `examples/patients/expected.json`.

Truth values are Python `True`, `False` and `None` (unknown). Units are converted with small
tables for the handful of units each fact accepts; that is acceptable here and only here (the
engine itself converts UCUM with a units library).
"""

from __future__ import annotations

import calendar
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

MET, NOT_MET, UNKNOWN = "met", "not_met", "unknown"
CRITERIA = ("I1", "I2", "I3", "I4", *(f"E{i}" for i in range(1, 21)))

HOUR = 3600.0
DAY = 86400.0
MONTH_DAYS = 30.4375  # UCUM 'mo' (mean Julian month)
YEAR_DAYS = 365.25  # UCUM 'a' (mean Julian year)

# fmt: off
# Factor from an accepted unit to the fact's declared unit (first key of each table).
CREATININE_MOLAR_MASS = 113.12  # g/mol
_CREATININE = {  # -> mg/dL
    "mg/dL": 1.0,
    "mg/L": 0.1,
    "umol/L": CREATININE_MOLAR_MASS / 10_000.0,  # 1 umol/L = 113.12 ug/L = 0.011312 mg/dL
    "mmol/L": CREATININE_MOLAR_MASS / 10.0,
}
_PLATELETS = {"/uL": 1.0, "/mm3": 1.0, "10*3/uL": 1e3, "10*9/L": 1e3, "/L": 1e-6}  # -> /uL
_DURATION_MO = {"mo": 1.0, "d": 1 / MONTH_DAYS, "wk": 7 / MONTH_DAYS, "a": YEAR_DAYS / MONTH_DAYS}
_AGE_A = {"a": 1.0, "mo": MONTH_DAYS / YEAR_DAYS}
_URINE = {"mL/kg/h": 1.0}
_EGFR = {"mL/min/{1.73_m2}": 1.0}
_LVEF = {"%": 1.0}
_DOSE = {"mg/d": 1.0}

FACTS = frozenset((
    "age", "serum_creatinine", "baseline_creatinine", "urine_output", "informed_consent",
    "able_to_comply", "aki_cause", "pregnant", "lactating", "allergic", "organ_transplant",
    "hematopoietic_stem_cell_transplant", "malignant_tumor", "cancer_history", "life_expectancy",
    "end_stage_liver_disease", "uncontrolled_infection", "baseline_egfr",
    "severe_pulmonary_dysfunction", "lvef", "severe_arrhythmia", "hemodynamically_unstable",
    "non_renal_organ_failures", "vasculitis", "chronic_systemic_infection_history",
    "vasopressor_escalation_expected", "on_systemic_immunosuppression",
    "immunosuppression_last_change", "prednisone_equivalent_dose", "platelet_count",
    "severe_hematologic_abnormality", "mechanical_ventilation", "in_other_trial",
))
AKI_CAUSES = frozenset((
    "prerenal", "ischemic_atn", "toxic_atn", "septic", "post_renal_obstruction",
    "glomerulonephritis", "lupus_nephritis", "anca_nephritis", "anti_gbm_disease",
    "cryoglobulinemia", "thrombotic_microangiopathy", "purpura_nephritis", "other",
))
EXCLUDED_CAUSES = frozenset((
    "post_renal_obstruction", "glomerulonephritis", "lupus_nephritis", "anca_nephritis",
    "anti_gbm_disease", "cryoglobulinemia", "thrombotic_microangiopathy", "purpura_nephritis",
))

# The facts each criterion reads, for `missing_facts`.
READS = {
    "I1": ("serum_creatinine", "baseline_creatinine", "urine_output"),
    "I2": ("age",), "I3": ("informed_consent",), "I4": ("able_to_comply",),
    "E1": ("aki_cause",), "E2": ("pregnant", "lactating"), "E3": ("allergic",),
    "E4": ("organ_transplant", "hematopoietic_stem_cell_transplant"),
    "E5": ("malignant_tumor", "cancer_history"), "E6": ("life_expectancy",),
    "E7": ("end_stage_liver_disease",), "E8": ("uncontrolled_infection",),
    "E9": ("age", "baseline_egfr"), "E10": ("severe_pulmonary_dysfunction",),
    "E11": ("lvef", "severe_arrhythmia"), "E12": ("hemodynamically_unstable",),
    "E13": ("non_renal_organ_failures",), "E14": ("vasculitis",),
    "E15": ("chronic_systemic_infection_history",), "E16": ("vasopressor_escalation_expected",),
    "E17": ("on_systemic_immunosuppression", "immunosuppression_last_change",
            "prednisone_equivalent_dose"),
    "E18": ("platelet_count", "severe_hematologic_abnormality"),
    "E19": ("mechanical_ventilation",), "E20": ("in_other_trial",),
}
# fmt: on


# --- Kleene logic --------------------------------------------------------------------------


def k_or(a, b):
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def k_and(a, b):
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def lt(a, b):
    return None if a is None or b is None else a < b


def gt(a, b):
    return None if a is None or b is None else a > b


# --- reading raw facts ---------------------------------------------------------------------


def _timestamp(text: str) -> float:
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _convert(fact: str, value, unit: str | None, table: dict) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError(f"{fact}: expected a number, got {value!r}")
    if unit is None:
        return float(value)
    try:
        return value * table[unit]
    except KeyError:
        raise ValueError(f"{fact}: unit {unit!r} not accepted (one of {sorted(table)})") from None


def _number(fact: str, value, table: dict) -> float | None:
    """A quantity in the fact's declared unit: a bare number, or a {"value", "unit"} dict."""
    if isinstance(value, dict):
        if value.get("value") is None:
            return None
        return _convert(fact, value["value"], value.get("unit"), table)
    return None if value is None else _convert(fact, value, None, table)


def _boolean(patient: dict, fact: str) -> bool | None:
    value = patient.get(fact)
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"{fact}: expected true or false, got {value!r}")


def _window(patient: dict, fact: str, table: dict, as_of: float, seconds: float):
    """Values of a series with as_of - seconds <= at <= as_of; None when the series is absent."""
    series = patient.get(fact)
    if series is None:
        return None
    start = as_of - seconds
    values = []
    for obs in series:
        at = _timestamp(obs["at"])
        if start <= at <= as_of:
            values.append(_convert(fact, obs["value"], obs.get("unit"), table))
    return values


# --- criteria ------------------------------------------------------------------------------


def severe_aki(p: dict, as_of: float):
    """I1: creatinine more than doubled in 48 h, or urine output below 0.5 mL/kg/h for 12 h."""
    creat = _window(p, "serum_creatinine", _CREATININE, as_of, 48 * HOUR)
    peak = max(creat) if creat else None
    baseline = _number("baseline_creatinine", p.get("baseline_creatinine"), _CREATININE)
    doubled = gt(peak, None if baseline is None else 2 * baseline)
    urine = _window(p, "urine_output", _URINE, as_of, 12 * HOUR)
    oliguria = lt(max(urine) if urine else None, 0.5)
    return k_or(doubled, oliguria)


def inclusions(p: dict, as_of: float) -> dict:
    age = _number("age", p.get("age"), _AGE_A)
    return {
        "I1": severe_aki(p, as_of),
        "I2": None if age is None else 18 <= age <= 65,
        "I3": _boolean(p, "informed_consent"),
        "I4": _boolean(p, "able_to_comply"),
    }


def simple_exclusions(p: dict) -> dict:
    """E1-E8, E10, E12-E16, E19, E20: choices, booleans, counts and one duration."""
    cause = p.get("aki_cause")
    if cause is not None and cause not in AKI_CAUSES:
        raise ValueError(f"aki_cause: {cause!r} is not one of {sorted(AKI_CAUSES)}")
    nrof = p.get("non_renal_organ_failures")
    if nrof is not None and (isinstance(nrof, bool) or not isinstance(nrof, int)):
        raise ValueError(f"non_renal_organ_failures: expected an integer, got {nrof!r}")
    life = _number("life_expectancy", p.get("life_expectancy"), _DURATION_MO)
    b = _boolean
    return {
        "E1": None if cause is None else cause in EXCLUDED_CAUSES,
        "E2": k_or(b(p, "pregnant"), b(p, "lactating")),
        "E3": b(p, "allergic"),
        "E4": k_or(b(p, "organ_transplant"), b(p, "hematopoietic_stem_cell_transplant")),
        "E5": k_or(b(p, "malignant_tumor"), b(p, "cancer_history")),
        "E6": lt(life, 3.0),
        "E7": b(p, "end_stage_liver_disease"),
        "E8": b(p, "uncontrolled_infection"),
        "E10": b(p, "severe_pulmonary_dysfunction"),
        "E12": b(p, "hemodynamically_unstable"),
        "E13": gt(nrof, 2),
        "E14": b(p, "vasculitis"),
        "E15": b(p, "chronic_systemic_infection_history"),
        "E16": b(p, "vasopressor_escalation_expected"),
        "E19": b(p, "mechanical_ventilation"),
        "E20": b(p, "in_other_trial"),
    }


def organ_exclusions(p: dict) -> dict:
    """E9 (young with low baseline eGFR), E11 (cardiac), E18 (hematologic)."""
    age = _number("age", p.get("age"), _AGE_A)
    egfr = _number("baseline_egfr", p.get("baseline_egfr"), _EGFR)
    lvef = _number("lvef", p.get("lvef"), _LVEF)
    platelets = _number("platelet_count", p.get("platelet_count"), _PLATELETS)
    return {
        "E9": k_and(lt(age, 65.0), lt(egfr, 60.0)),
        "E11": k_or(lt(lvef, 40.0), _boolean(p, "severe_arrhythmia")),
        "E18": k_or(lt(platelets, 25000.0), _boolean(p, "severe_hematologic_abnormality")),
    }


def plus_months(day: date, months: int) -> date:
    """`day` plus whole calendar months, the day of the month clamped to the month's last day."""
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))


def changed_within_months(last_change: str, as_of: float, months: int) -> bool:
    """The change date plus `months` calendar months is on or after the screening date.

    Dates have day precision, so the screening moment `as_of` counts as its UTC date.
    """
    changed = date.fromisoformat(last_change)
    screening = datetime.fromtimestamp(as_of, UTC).date()
    if changed > screening:
        raise ValueError(f"immunosuppression_last_change: {last_change} is after as_of")
    return plus_months(changed, months) >= screening


def immunosuppression(p: dict, as_of: float):
    """E17: immunosuppression changed <= 4 calendar months ago, or > 15 mg/d prednisone in 30 d."""
    last_change = p.get("immunosuppression_last_change")
    recent = None
    if last_change is not None:
        recent = changed_within_months(last_change, as_of, 4)
    unstable = k_and(_boolean(p, "on_systemic_immunosuppression"), recent)
    doses = _window(p, "prednisone_equivalent_dose", _DOSE, as_of, 30 * DAY)
    high_dose = None if doses is None else any(v > 15.0 for v in doses)
    return k_or(unstable, high_dose)


# --- the verdict ---------------------------------------------------------------------------


def evaluate_baseline(patient: dict, as_of: datetime | None = None) -> dict:
    """Evaluate the 24 criteria of NCT04194671 for one raw patient dict."""
    unknown_keys = patient.keys() - FACTS - {"as_of"}
    if unknown_keys:
        raise ValueError(f"undeclared facts: {sorted(unknown_keys)}")
    if as_of is None:
        if patient.get("as_of") is None:
            raise ValueError("no as_of given and none in the patient")
        now = _timestamp(patient["as_of"])
    else:
        now = (as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)).timestamp()

    values = inclusions(patient, now)
    values.update(simple_exclusions(patient))
    values.update(organ_exclusions(patient))
    values["E17"] = immunosuppression(patient, now)

    outcomes = {}
    for cid in CRITERIA:
        v = values[cid]
        outcomes[cid] = UNKNOWN if v is None else MET if v else NOT_MET

    incl = [outcomes[c] for c in CRITERIA[:4]]
    excl = [outcomes[c] for c in CRITERIA[4:]]
    if NOT_MET in incl or MET in excl:
        status, missing = "ineligible", []
    elif UNKNOWN in incl or UNKNOWN in excl:
        status = "indeterminate"
        missing = sorted(
            {
                f
                for c in CRITERIA
                if outcomes[c] == UNKNOWN
                for f in READS[c]
                if patient.get(f) is None
            }
        )
    else:
        status, missing = "eligible", []
    return {"status": status, "outcomes": outcomes, "missing_facts": missing}


def deciding(result: dict) -> list[str]:
    """The criteria that decide a verdict, as in expected.json."""
    o, status = result["outcomes"], result["status"]
    if status == "ineligible":
        return [c for c in CRITERIA if o[c] == (NOT_MET if c[0] == "I" else MET)]
    if status == "indeterminate":
        return [c for c in CRITERIA if o[c] == UNKNOWN]
    return []


def main() -> int:
    folder = Path(__file__).resolve().parent.parent / "examples" / "patients"
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    files = sorted(f for f in folder.glob("*.json") if f.name != "expected.json")
    mismatches = 0
    for name in sorted(set(expected) - {f.name for f in files}):
        print(f"{name}: in expected.json but no such file")
        mismatches += 1
    for path in files:
        want = expected.get(path.name)
        if want is None:
            print(f"{path.name}: no entry in expected.json")
            mismatches += 1
            continue
        got = evaluate_baseline(json.loads(path.read_text(encoding="utf-8")))
        got_deciding = deciding(got)
        problems = []
        if got["status"] != want["status"]:
            problems.append(f"status {got['status']} != expected {want['status']}")
        if got_deciding != want["deciding"]:
            problems.append(f"deciding {got_deciding} != expected {want['deciding']}")
        for cid in CRITERIA:
            if got["outcomes"][cid] != want["outcomes"].get(cid):
                problems.append(f"{cid} {got['outcomes'][cid]} != {want['outcomes'].get(cid)}")
        if got["missing_facts"] != want["missing_facts"]:
            problems.append(f"missing_facts {got['missing_facts']} != {want['missing_facts']}")
        if problems:
            mismatches += 1
            print(f"{path.name}: MISMATCH")
            for problem in problems:
                print(f"    {problem}")
        else:
            print(f"{path.name}: ok ({' '.join([got['status'], *got_deciding])})")
    print(f"{len(files)} patients, {mismatches} mismatch(es)")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
