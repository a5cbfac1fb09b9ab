"""Deterministic random patients for NCT04194671, as raw JSON-ready dicts.

The records look like what a screening tool sends: ages as plain numbers, creatinine in
`mg/dL` or `umol/L` depending on the lab, platelets in `/uL` or `10*9/L`, life expectancy in
months, weeks or years, timestamped series with a UTC offset, and some facts left out (or
sent as null) so that every status — eligible, ineligible and indeterminate — occurs. A few
values sit exactly on a criterion's boundary (age 65, platelets 25 `10*9/L`, life expectancy
3 months, ...), and a few observations fall just outside a window, so that the benchmark's
agreement check also exercises the edges.

    >>> from patients import generate
    >>> len(generate(10, seed=1))
    10
"""

from __future__ import annotations

import calendar
import random
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

SEED = 20260301
OFFSETS = (UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5)))
START = datetime(2025, 1, 1, tzinfo=UTC)

# fmt: off
USUAL_CAUSES = ("prerenal", "ischemic_atn", "toxic_atn", "septic", "other")
EXCLUDED_CAUSES = (
    "post_renal_obstruction", "glomerulonephritis", "lupus_nephritis", "anca_nephritis",
    "anti_gbm_disease", "cryoglobulinemia", "thrombotic_microangiopathy", "purpura_nephritis",
)
# Boolean facts: the probability of `true` when the fact is sent.
BOOLEANS = {
    "informed_consent": 0.95, "able_to_comply": 0.95, "pregnant": 0.01, "lactating": 0.01,
    "allergic": 0.02, "organ_transplant": 0.02, "hematopoietic_stem_cell_transplant": 0.01,
    "malignant_tumor": 0.02, "cancer_history": 0.03, "end_stage_liver_disease": 0.02,
    "uncontrolled_infection": 0.03, "severe_pulmonary_dysfunction": 0.02,
    "severe_arrhythmia": 0.02, "hemodynamically_unstable": 0.03, "vasculitis": 0.01,
    "chronic_systemic_infection_history": 0.01, "vasopressor_escalation_expected": 0.03,
    "on_systemic_immunosuppression": 0.08, "severe_hematologic_abnormality": 0.01,
    "mechanical_ventilation": 0.03, "in_other_trial": 0.02,
}
# Creatinine: unit -> factor from mg/dL (exact enough for realistic lab values).
CREATININE_UNITS = {"mg/dL": 1.0, "umol/L": 88.4, "mg/L": 10.0, "mmol/L": 0.0884}
CREATININE_WEIGHTS = (55, 40, 3, 2)
# fmt: on

P_ABSENT = 0.012  # each fact is left out with this probability
P_NULL = 0.003  # ... or sent as null
P_EDGE = 0.04  # a value is put on its criterion's boundary


def generate(n: int, seed: int = SEED) -> list[dict[str, Any]]:
    """`n` patient records; the same `n` and `seed` always give the same records."""
    rng = random.Random(seed)
    return [patient(rng) for _ in range(n)]


def patient(rng: random.Random) -> dict[str, Any]:
    """One patient record."""
    tz = rng.choice(OFFSETS)
    as_of = START + timedelta(minutes=rng.randrange(0, 365 * 24 * 60, 15))
    draft = {"as_of": _instant(as_of, tz)}
    draft |= _kidney(rng, as_of, tz)
    draft |= _demographics(rng)
    draft |= _conditions(rng)
    draft |= _immunosuppression(rng, as_of, tz)
    record: dict[str, Any] = {}
    for key, value in draft.items():
        roll = 1.0 if key == "as_of" else rng.random()
        if roll >= P_ABSENT:
            record[key] = value
        elif roll < P_NULL:
            record[key] = None
    return record


def _instant(moment: datetime, tz: timezone) -> str:
    return moment.astimezone(tz).isoformat().replace("+00:00", "Z")


def _edge(rng: random.Random) -> bool:
    return rng.random() < P_EDGE


# ------------------------------------------------------------------ kidney (I1)


def _kidney(rng: random.Random, as_of: datetime, tz: timezone) -> dict[str, Any]:
    unit = rng.choices(list(CREATININE_UNITS), CREATININE_WEIGHTS)[0]
    baseline = round(rng.uniform(0.5, 1.4), 1)
    peak_ratio = 2.0 if _edge(rng) else rng.uniform(1.7, 4.0)
    out: dict[str, Any] = {
        "serum_creatinine": _creatinine_series(rng, as_of, tz, unit, baseline, peak_ratio),
        "baseline_creatinine": _creatinine(baseline, unit),
    }
    if rng.random() < 0.8:
        out["urine_output"] = _urine_series(rng, as_of, tz)
    return out


def _creatinine(mg_dl: float, unit: str) -> Any:
    value = round(mg_dl * CREATININE_UNITS[unit], 4)
    return value if unit == "mg/dL" and value < 5 else {"value": value, "unit": unit}


def _creatinine_series(
    rng: random.Random, as_of: datetime, tz: timezone, unit: str, baseline: float, ratio: float
) -> list[dict[str, Any]]:
    hours = sorted(rng.sample(range(0, 96), rng.randint(1, 6)), reverse=True)
    if _edge(rng):
        hours.append(48)  # exactly on the window's lower bound
    series = []
    for k, h in enumerate(hours):
        level = baseline * (1 + (ratio - 1) * (k + 1) / len(hours))
        value = round(level * CREATININE_UNITS[unit], 4)
        series.append(
            {"value": value, "unit": unit, "at": _instant(as_of - timedelta(hours=h), tz)}
        )
    if rng.random() < 0.05:  # a result timestamped after as_of (entered late)
        series.append(
            {"value": 9.9, "unit": "mg/dL", "at": _instant(as_of + timedelta(hours=1), tz)}
        )
    rng.shuffle(series)
    return series


def _urine_series(rng: random.Random, as_of: datetime, tz: timezone) -> list[dict[str, Any]]:
    oliguric = rng.random() < 0.3
    series = []
    for h in sorted(rng.sample(range(0, 30), rng.randint(0, 6))):
        value = round(rng.uniform(0.1, 0.49) if oliguric else rng.uniform(0.3, 1.6), 2)
        if _edge(rng):
            value = 0.5
        obs: dict[str, Any] = {"value": value, "at": _instant(as_of - timedelta(hours=h), tz)}
        if rng.random() < 0.9:
            obs["unit"] = "mL/kg/h"
        series.append(obs)
    return series


# ------------------------------------------------------------------ demographics (I2, E9)


def _demographics(rng: random.Random) -> dict[str, Any]:
    age: Any = rng.choice((18, 65)) if _edge(rng) else rng.randint(17, 68)
    if rng.random() < 0.05:
        age = {"value": age, "unit": "a"}
    egfr: Any = 60 if _edge(rng) else rng.randint(56, 120)
    if rng.random() < 0.2:
        egfr = {"value": egfr, "unit": "mL/min/{1.73_m2}"}
    return {"age": age, "baseline_egfr": egfr}


# ------------------------------------------------------------------ the exclusions


def _conditions(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {name: rng.random() < p for name, p in BOOLEANS.items()}
    excluded = rng.random() < 0.04
    out["aki_cause"] = rng.choice(EXCLUDED_CAUSES if excluded else USUAL_CAUSES)
    out["life_expectancy"] = _life_expectancy(rng)
    out["lvef"] = 40 if _edge(rng) else rng.randint(38, 70)
    out["non_renal_organ_failures"] = rng.choices(range(5), (60, 25, 11, 3, 1))[0]
    out["platelet_count"] = _platelets(rng)
    return out


def _life_expectancy(rng: random.Random) -> Any:
    if _edge(rng):
        return {"value": 3, "unit": "mo"}
    unit = rng.choice(("mo", "wk", "a", "d"))
    value = {"mo": rng.randint(1, 60), "wk": rng.randint(4, 200), "a": rng.randint(1, 10)}.get(
        unit, rng.randint(30, 1500)
    )
    return value if unit == "mo" and rng.random() < 0.5 else {"value": value, "unit": unit}


def _platelets(rng: random.Random) -> Any:
    per_nl = 25 if _edge(rng) else rng.randint(10, 450)  # 10*9/L
    style = rng.random()
    if style < 0.5:
        return {"value": per_nl, "unit": "10*9/L"}
    if style < 0.6:
        return {"value": per_nl, "unit": "10*3/uL"}
    return per_nl * 1000  # /uL, the declared unit


# ------------------------------------------------------------------ immunosuppression (E17)


def _immunosuppression(rng: random.Random, as_of: datetime, tz: timezone) -> dict[str, Any]:
    screening = as_of.astimezone(UTC).date()
    if _edge(rng):  # around 4 calendar months before the screening date (month ends included)
        year, month0 = divmod(screening.year * 12 + screening.month - 1 - 4, 12)
        day = min(screening.day, calendar.monthrange(year, month0 + 1)[1])
        last_change = date(year, month0 + 1, day) + timedelta(days=rng.choice((-1, 0, 1, 2)))
    else:
        last_change = screening - timedelta(days=rng.randint(10, 400))
    doses = []
    if rng.random() < 0.15:
        for d in sorted(rng.sample(range(0, 60), rng.randint(1, 8))):
            value = 15 if _edge(rng) else rng.choice((5, 5, 7.5, 7.5, 10, 10, 12.5, 20, 40))
            doses.append(
                {"value": value, "unit": "mg/d", "at": _instant(as_of - timedelta(days=d), tz)}
            )
    return {
        "immunosuppression_last_change": last_change.isoformat(),
        "prednisone_equivalent_dose": doses,
    }


if __name__ == "__main__":
    import json
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(json.dumps(generate(count), indent=2))
