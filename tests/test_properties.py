"""Laws of the engine, as Hypothesis properties (``HYPOTHESIS_PROFILE=ci``: 300 examples each).

- NCT04194671 at and around every threshold and window edge, against the registry text (the
  expectations written here) and against an independent oracle, `benchmarks/baseline.py`;
- Kleene logic against a truth-table evaluator written here, and the algebraic laws it keeps;
- unit invariance, information monotonicity, determinism and serialisation.

``PROTOCOL_RULES_FILE`` points the NCT04194671 laws at another copy of the rules file: a
mutated copy (a threshold, a strictness or a window length changed) must make some law fail.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import sys
from calendar import monthrange
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import assume, find, given, settings
from hypothesis import strategies as st

from protocol_rules import Outcome, Status, load_protocol, parse_protocol, units
from protocol_rules.calendar import CalendarDuration
from protocol_rules.check.types import QtyT, SeriesT
from protocol_rules.testing import boundaries, compatible_units, exact_in, expressions, patients

ROOT = Path(__file__).resolve().parents[1]
RULES_FILE = Path(os.environ.get("PROTOCOL_RULES_FILE") or ROOT / "protocols" / "nct04194671.rules")
sys.path.insert(0, str(ROOT / "benchmarks"))
from baseline import evaluate_baseline  # noqa: E402

NCT = load_protocol(RULES_FILE)
SCHEMA = json.loads(
    (ROOT / "src" / "protocol_rules" / "schemas" / "result.schema.json").read_text("utf-8")
)
AS_OF = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HOUR, DAY = 3600.0, 86400.0
MET, NOT_MET, UNKNOWN = "met", "not_met", "unknown"


# --------------------------------------------------------------------------- helpers


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def eligible(as_of: datetime = AS_OF) -> dict[str, Any]:
    """A patient who meets every criterion: each law changes the facts it is about."""
    return {
        "as_of": iso(as_of),
        "age": 40,
        "serum_creatinine": [{"value": 2.5, "at": iso(as_of - timedelta(hours=2))}],
        "baseline_creatinine": 1.0,
        "urine_output": [{"value": 0.8, "at": iso(as_of - timedelta(hours=1))}],
        "informed_consent": True,
        "able_to_comply": True,
        "aki_cause": "septic",
        **dict.fromkeys(
            [
                "pregnant",
                "lactating",
                "allergic",
                "organ_transplant",
                "hematopoietic_stem_cell_transplant",
                "malignant_tumor",
                "cancer_history",
                "end_stage_liver_disease",
                "uncontrolled_infection",
                "severe_pulmonary_dysfunction",
                "severe_arrhythmia",
                "hemodynamically_unstable",
                "vasculitis",
                "chronic_systemic_infection_history",
                "vasopressor_escalation_expected",
                "on_systemic_immunosuppression",
                "severe_hematologic_abnormality",
                "mechanical_ventilation",
                "in_other_trial",
            ],
            False,
        ),
        "life_expectancy": 24,
        "baseline_egfr": 90,
        "lvef": 60,
        "non_renal_organ_failures": 0,
        "prednisone_equivalent_dose": [],
        "platelet_count": 200000,
    }


def outcomes(result: Any) -> dict[str, str]:
    return {c.id: c.outcome.value for c in result.criteria}


def verdict(patient: dict[str, Any]) -> dict[str, str]:
    """Each criterion's outcome, after checking the whole verdict against the oracle."""
    result = NCT.evaluate(patient)
    got = outcomes(result)
    if _declared_units_only(patient):
        want = evaluate_baseline(patient)
        assert got == want["outcomes"]
        assert result.status.value == want["status"]
    return got


def _declared_units_only(patient: dict[str, Any]) -> bool:
    """The oracle converts with float tables; compare with it only on declared units."""
    for fact in NCT.facts:
        value = patient.get(fact.name)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict) and item.get("unit") not in (None, fact.unit):
                return False
    return True


def quantity(value: float, declared: str, unit: str, molar_mass: float | None = None) -> Any:
    """`value` (in `declared`) sent in `unit`, exactly; rejects the example if it cannot be."""
    if unit == declared:
        return value
    there = exact_in(value, declared, unit, molar_mass)
    assume(there is not None)
    return {"value": there, "unit": unit}


def k_or(*values: bool | None) -> str:
    if True in values:
        return MET
    return UNKNOWN if None in values else NOT_MET


def k_and(*values: bool | None) -> str:
    if False in values:
        return NOT_MET
    return UNKNOWN if None in values else MET


def met(condition: bool) -> str:
    return MET if condition else NOT_MET


#: The yes/no facts (and the cause of AKI) of an eligible patient.
YES_NO = {k: v for k, v in eligible().items() if isinstance(v, bool) or k == "aki_cause"}
three_valued = st.sampled_from([True, False, None])
as_of_times = st.datetimes(
    datetime(2020, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


# --------------------------------------------------------------------------- the oracle


@given(patients(NCT, units="declared"))
def test_every_criterion_agrees_with_the_oracle(patient):
    result = NCT.evaluate(patient)
    want = evaluate_baseline(patient)
    assert outcomes(result) == want["outcomes"]
    assert result.status.value == want["status"]


@given(patients(NCT, units="declared", absent=0.05, fixed=YES_NO))
def test_nearly_eligible_patients_agree_with_the_oracle(patient):
    """Yes/no facts fixed as for an eligible patient, so the measured facts decide."""
    result = NCT.evaluate(patient)
    want = evaluate_baseline(patient)
    assert outcomes(result) == want["outcomes"]
    assert result.status.value == want["status"]


# --------------------------------------------------------------------------- NCT04194671


@given(
    age=st.sampled_from([0, 17, 17.5, 17.999, 18, 18.001, 40, 64.999, 65, 65.001, 66, 130]),
    unit=st.sampled_from(["a", "a", "mo"]),
    egfr=st.sampled_from([30, 59.999, 60, 90]),
)
def test_age_between_18_and_65_inclusive(age, unit, egfr):
    patient = eligible() | {"age": quantity(age, "a", unit), "baseline_egfr": egfr}
    got = verdict(patient)
    assert got["I2"] == met(18 <= age <= 65)
    assert got["E9"] == met(age < 65 and egfr < 60)


@given(
    age=st.sampled_from([18, 40, 64, 64.999]) | st.floats(18, 64.99),
    egfr=st.sampled_from([0, 59, 59.99, 59.999999, 60, 60.000001, 60.01, 61]),
)
def test_egfr_below_60_excludes_patients_under_65(age, egfr):
    got = verdict(eligible() | {"age": age, "baseline_egfr": egfr})
    assert got["E9"] == met(egfr < 60)


@given(
    age=st.sampled_from([65, 65.001, 66, 80, 130]) | st.floats(65, 130),
    egfr=st.sampled_from([0, 59.99, 60, 60.01]) | st.floats(0, 200),
)
def test_any_egfr_is_fine_from_65(age, egfr):
    assert verdict(eligible() | {"age": age, "baseline_egfr": egfr})["E9"] == NOT_MET


@given(
    count=st.sampled_from([0, 1000, 24999, 24999.99, 25000, 25000.01, 25001, 150000]),
    unit=st.sampled_from(["/uL", "/uL", "10*9/L", "10*3/uL", "/mm3", "/L"]),
    other=three_valued,
)
def test_platelets_below_25000_per_ul(count, unit, other):
    patient = eligible() | {
        "platelet_count": quantity(count, "/uL", unit),
        "severe_hematologic_abnormality": other,
    }
    assert verdict(patient)["E18"] == k_or(count < 25000, other)


@given(
    lvef=st.sampled_from([0, 35, 39.99, 39.999999, 40, 40.000001, 40.01, 41, 100]),
    unit=st.sampled_from(["%", "%", "1"]),
    arrhythmia=three_valued,
)
def test_lvef_below_40_percent(lvef, unit, arrhythmia):
    patient = eligible() | {"lvef": quantity(lvef, "%", unit), "severe_arrhythmia": arrhythmia}
    assert verdict(patient)["E11"] == k_or(lvef < 40, arrhythmia)


@given(
    months=st.sampled_from([0.5, 2.99, 2.999, 3, 3.001, 3.01, 24]),
    unit=st.sampled_from(["mo", "mo", "d", "wk", "a"]),
)
def test_life_expectancy_below_3_months(months, unit):
    patient = eligible() | {"life_expectancy": quantity(months, "mo", unit)}
    assert verdict(patient)["E6"] == met(months < 3)


@given(st.integers(0, 10))
def test_organ_failures_above_2(failures):
    got = verdict(eligible() | {"non_renal_organ_failures": failures})
    assert got["E13"] == met(failures > 2)


@given(
    dose=st.sampled_from([0, 10, 14.99, 14.999999, 15, 15.000001, 15.01, 20]),
    unit=st.sampled_from(["mg/d", "mg/d", "g/d"]),
    seconds_ago=st.sampled_from([-1.0, 0.0, DAY, 30 * DAY - 1, 30 * DAY, 30 * DAY + 1, 31 * DAY]),
    as_of=as_of_times,
)
def test_prednisone_above_15_mg_in_the_last_30_days(dose, unit, seconds_ago, as_of):
    at = as_of - timedelta(seconds=seconds_ago)
    observation = {"value": dose, "unit": "mg/d", "at": iso(at)}
    if unit != "mg/d":
        observation |= quantity(dose, "mg/d", unit)
    patient = eligible(as_of) | {"prednisone_equivalent_dose": [observation]}
    in_window = 0 <= seconds_ago <= 30 * DAY
    assert verdict(patient)["E17"] == met(in_window and dose > 15)


@given(
    days=st.integers(115, 128),
    time_of_day=st.sampled_from([0, 1, 12 * 3600, 86399]),
    on_therapy=three_valued,
    day=st.dates(datetime(2020, 1, 1).date(), datetime(2030, 1, 1).date())
    | st.sampled_from(
        [date(2023, 10, 31), date(2023, 10, 29), date(2024, 10, 31), date(2025, 8, 31)]
    ),
)
def test_immunosuppression_changed_at_most_4_calendar_months_ago(
    days, time_of_day, on_therapy, day
):
    """Four calendar months (the day clamped to the month's end) from the change to screening."""
    changed = datetime(day.year, day.month, day.day, tzinfo=UTC)
    as_of = changed + timedelta(days=days, seconds=time_of_day)
    patient = eligible(as_of) | {
        "on_systemic_immunosuppression": on_therapy,
        "immunosuppression_last_change": day.isoformat(),
    }
    year, month0 = divmod(day.year * 12 + day.month - 1 + 4, 12)
    plus_four = date(year, month0 + 1, min(day.day, monthrange(year, month0 + 1)[1]))
    recent = plus_four >= as_of.date()
    assert verdict(patient)["E17"] == k_and(on_therapy, recent)


@given(
    baseline=st.sampled_from([0.4, 0.7, 1.0, 1.13, 2.5])
    | st.floats(0.1, 5).map(lambda b: round(b, 6)),
    delta=st.sampled_from([-0.01, -1e-9, 0.0, 1e-9, 0.01]),
    unit=st.sampled_from(["mg/dL", "mg/dL", "umol/L", "mg/L"]),
    hours_ago=st.sampled_from([0, 1, 24, 47]),
)
def test_creatinine_more_than_twice_baseline(baseline, delta, unit, hours_ago):
    peak = units.clean(2 * baseline * (1 + delta))
    molar_mass = 113.12
    observation = {"value": peak, "at": iso(AS_OF - timedelta(hours=hours_ago))}
    if unit != "mg/dL":
        observation |= quantity(peak, "mg/dL", unit, molar_mass)
    patient = eligible() | {
        "baseline_creatinine": quantity(baseline, "mg/dL", unit, molar_mass),
        "serum_creatinine": [observation],
    }
    assert verdict(patient)["I1"] == met(peak > 2 * baseline)


@given(
    seconds_ago=st.sampled_from(
        [-1.0, 0.0, HOUR, 48 * HOUR - 1, 48 * HOUR, 48 * HOUR + 1, 72 * HOUR]
    ),
    as_of=as_of_times,
)
def test_creatinine_window_is_the_last_48_hours(seconds_ago, as_of):
    patient = eligible(as_of) | {
        "baseline_creatinine": 1.0,
        "serum_creatinine": [
            {"value": 1.0, "at": iso(as_of - timedelta(hours=1))},
            {"value": 3.0, "at": iso(as_of - timedelta(seconds=seconds_ago))},
        ],
    }
    assert verdict(patient)["I1"] == met(0 <= seconds_ago <= 48 * HOUR)


@given(
    value=st.sampled_from([0.1, 0.49, 0.4999999, 0.5, 0.5000001, 0.51]),
    seconds_ago=st.sampled_from(
        [-1.0, 0.0, HOUR, 12 * HOUR - 1, 12 * HOUR, 12 * HOUR + 1, 24 * HOUR]
    ),
    as_of=as_of_times,
)
def test_urine_output_below_half_over_the_last_12_hours(value, seconds_ago, as_of):
    patient = eligible(as_of) | {
        "serum_creatinine": [{"value": 1.0, "at": iso(as_of - timedelta(hours=1))}],
        "urine_output": [{"value": value, "at": iso(as_of - timedelta(seconds=seconds_ago))}],
    }
    in_window = 0 <= seconds_ago <= 12 * HOUR
    assert verdict(patient)["I1"] == (met(value < 0.5) if in_window else UNKNOWN)


@given(cause=st.sampled_from(NCT.fact("aki_cause").type.choices))
def test_excluded_causes_of_aki(cause):
    excluded = {
        "post_renal_obstruction",
        "glomerulonephritis",
        "lupus_nephritis",
        "anca_nephritis",
        "anti_gbm_disease",
        "cryoglobulinemia",
        "thrombotic_microangiopathy",
        "purpura_nephritis",
    }
    assert verdict(eligible() | {"aki_cause": cause})["E1"] == met(cause in excluded)


def test_harvested_boundaries_of_nct04194671():
    """`testing.boundaries` finds what the laws above probe (read from the canonical file)."""
    found = boundaries(load_protocol(ROOT / "protocols" / "nct04194671.rules"))
    assert found.values["age"] == (18.0, 65.0)
    for fact, threshold in [
        ("baseline_egfr", 60.0),
        ("platelet_count", 25000.0),
        ("lvef", 40.0),
        ("life_expectancy", 3.0),
        ("non_renal_organ_failures", 2.0),
        ("prednisone_equivalent_dose", 15.0),
        ("urine_output", 0.5),
    ]:
        assert found.values[fact] == (threshold,)
    assert found.windows == {
        "serum_creatinine": (48 * HOUR,),
        "urine_output": (12 * HOUR,),
        "prednisone_equivalent_dose": (30 * DAY,),
    }
    assert found.ages == {}
    assert found.calendars == {"immunosuppression_last_change": (CalendarDuration(months=4),)}
    ((left, right),) = found.relations
    assert {(left.fact, left.scale), (right.fact, right.scale)} == {
        ("serum_creatinine", 1.0),
        ("baseline_creatinine", 2.0),
    }


# --------------------------------------------------------------------------- Kleene logic

BOOLEANS = ("p", "q", "r")
KLEENE_HEADER = "protocol K\n" + "".join(f"fact {n}: boolean\n" for n in BOOLEANS)
ASSIGNMENTS = list(itertools.product([True, False, None], repeat=len(BOOLEANS)))

_leaf = st.one_of(
    st.sampled_from(BOOLEANS).map(lambda n: ("fact", n)),
    st.booleans().map(lambda b: ("const", b)),
    st.tuples(st.sampled_from(["known", "unknown"]), st.sampled_from(BOOLEANS)),
)


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    lists = st.lists(children, min_size=1, max_size=3).map(tuple)
    return st.one_of(
        st.tuples(st.just("not"), children),
        st.tuples(st.sampled_from(["and", "or"]), st.lists(children, min_size=2, max_size=3)),
        lists.flatmap(
            lambda cs: st.tuples(
                st.sampled_from(["at least", "at most"]), st.integers(0, len(cs)), st.just(cs)
            )
        ),
        # calculation (docs/language/calculation.md): `if` and `first_known` on conditions
        st.tuples(st.just("if"), children, children, children),
        st.tuples(st.just("first_known"), st.lists(children, min_size=1, max_size=3)),
    )


trees = st.recursive(_leaf, _extend, max_leaves=10)


def truth(tree: Any, env: dict[str, bool | None]) -> bool | None:
    """The independent evaluator: Kleene's strong three-valued logic, case by case."""
    kind = tree[0]
    if kind == "fact":
        return env[tree[1]]
    if kind == "const":
        return tree[1]
    if kind == "known":
        return env[tree[1]] is not None
    if kind == "unknown":
        return env[tree[1]] is None
    if kind == "not":
        value = truth(tree[1], env)
        return None if value is None else not value
    if kind in ("and", "or"):
        values = [truth(t, env) for t in tree[1]]
        decisive = kind == "or"  # `or` is decided by a true operand, `and` by a false one
        if decisive in values:
            return decisive
        return None if None in values else not decisive
    if kind == "if":  # unknown when the condition is, even if both branches agree
        condition = truth(tree[1], env)
        return None if condition is None else truth(tree[2] if condition else tree[3], env)
    if kind == "first_known":
        return next((v for v in (truth(t, env) for t in tree[1]) if v is not None), None)
    n, values = tree[1], [truth(t, env) for t in tree[2]]
    true, unknown = values.count(True), values.count(None)
    if kind == "at least":
        return True if true >= n else (False if true + unknown < n else None)
    return True if true + unknown <= n else (False if true > n else None)


_PREC = {"if": 0, "or": 1, "and": 2, "not": 3}


def render(tree: Any, minimal: bool) -> str:
    """Rules text of a tree: every operand parenthesised, or only where precedence needs it."""

    def wrap(sub: Any, need: int) -> str:
        text = render(sub, minimal)
        prec = _PREC.get(sub[0], 4)
        return f"({text})" if not minimal or prec < need else text

    kind = tree[0]
    if kind == "fact":
        return tree[1]
    if kind == "const":
        return "true" if tree[1] else "false"
    if kind in ("known", "unknown"):
        return f"{tree[1]} is {kind}"
    if kind == "not":
        return f"not {wrap(tree[1], 3)}"
    if kind in ("and", "or"):
        need = 3 if kind == "and" else 2
        return f" {kind} ".join(wrap(t, need) for t in tree[1])
    if kind == "if":
        return f"if {wrap(tree[1], 1)} then {wrap(tree[2], 1)} else {wrap(tree[3], 0)}"
    if kind == "first_known":
        return f"first_known({', '.join(render(t, minimal) for t in tree[1])})"
    return f"{kind} {tree[1]} of ({', '.join(render(t, minimal) for t in tree[2])})"


def kleene_outcomes(criteria: list[str]) -> list[dict[str, Outcome]]:
    """Each criterion's outcome for each assignment of true / false / unknown to p, q, r."""
    text = KLEENE_HEADER + "".join(f'inclusion C{i} "c": {c}\n' for i, c in enumerate(criteria))
    protocol = parse_protocol(text)
    results = []
    for k, values in enumerate(ASSIGNMENTS):
        # an unknown fact is sent as null or left out, alternately
        patient = {n: v for n, v in zip(BOOLEANS, values, strict=True) if v is not None or k % 2}
        results.append(protocol.evaluate(patient).outcomes)
    return results


@given(trees, st.booleans())
def test_kleene_logic_matches_the_truth_table(tree, minimal):
    results = kleene_outcomes([render(tree, minimal)])
    for values, result in zip(ASSIGNMENTS, results, strict=True):
        expected = truth(tree, dict(zip(BOOLEANS, values, strict=True)))
        assert result["C0"].value == {True: MET, False: NOT_MET, None: UNKNOWN}[expected], values


LAWS = {
    "de_morgan_and": ("not (({a}) and ({b}))", "not ({a}) or not ({b})"),
    "de_morgan_or": ("not (({a}) or ({b}))", "not ({a}) and not ({b})"),
    "commutative_and": ("({a}) and ({b})", "({b}) and ({a})"),
    "commutative_or": ("({a}) or ({b})", "({b}) or ({a})"),
    "absorption_or": ("({a}) or (({a}) and ({b}))", "{a}"),
    "absorption_and": ("({a}) and (({a}) or ({b}))", "{a}"),
    "double_negation": ("not not ({a})", "{a}"),
    "distributive": ("({a}) and (({b}) or ({c}))", "(({a}) and ({b})) or (({a}) and ({c}))"),
    "idempotent": ("({a}) or ({a})", "{a}"),
}


@pytest.mark.parametrize("law", sorted(LAWS))
@settings(max_examples=100)
@given(a=trees, b=trees, c=trees)
def test_kleene_laws_hold_with_unknowns(law, a, b, c):
    left, right = LAWS[law]
    texts = {k: render(t, minimal=True) for k, t in {"a": a, "b": b, "c": c}.items()}
    for result in kleene_outcomes([left.format(**texts), right.format(**texts)]):
        assert result["C0"] is result["C1"]


# --------------------------------------------------------------------------- units


def in_declared_unit(fact_name: str, value: Any) -> float:
    fact = NCT.fact(fact_name)
    if isinstance(value, dict):
        unit = value.get("unit") or fact.unit
        return units.conversion(unit, fact.unit, fact.molar_mass)(value["value"])
    return value


def reexpress(patient: dict[str, Any], choose: Any) -> dict[str, Any]:
    """The same patient with quantities sent in other units, where that is exact."""
    out = copy.deepcopy(patient)
    for fact in NCT.facts:
        element = fact.type.element if isinstance(fact.type, SeriesT) else fact.type
        value = out.get(fact.name)
        if not isinstance(element, QtyT) or value is None:
            continue
        items = value if isinstance(value, list) else [value]
        sent = []
        for item in items:
            raw = item if not isinstance(fact.type, SeriesT) else {"unit": None, **item}
            declared = in_declared_unit(fact.name, raw)
            unit = choose(fact.name, compatible_units(fact.unit, fact.molar_mass))
            there = exact_in(declared, fact.unit, unit, fact.molar_mass)
            new = {"value": there, "unit": unit} if there is not None else {"value": declared}
            sent.append({"at": item["at"], **new} if isinstance(fact.type, SeriesT) else new)
        out[fact.name] = sent if isinstance(value, list) else sent[0]
    return out


def same_verdict(a: Any, b: Any) -> None:
    assert outcomes(a) == outcomes(b)
    assert a.status is b.status
    assert [m.name for m in a.missing_facts] == [m.name for m in b.missing_facts]


@given(patients(NCT), st.randoms(use_true_random=False))
def test_units_never_change_an_outcome(patient, rnd):
    other = reexpress(patient, lambda _fact, options: rnd.choice(options))
    same_verdict(NCT.evaluate(patient), NCT.evaluate(other))


@pytest.mark.parametrize(
    ("declared", "threshold", "sent", "expected"),
    [
        # 3.6 L/h is exactly 60 mL/min: the boundary holds either way round
        ("mL/min/{1.73_m2}", "egfr < 3.6 'L/h/{1.73_m2}'", 60, Outcome.NOT_MET),
        ("mL/min/{1.73_m2}", "egfr <= 60 'mL/min/{1.73_m2}'", (3.6, "L/h/{1.73_m2}"), Outcome.MET),
        # 30322.68975 days are exactly 996.228 months
        ("mo", "egfr <= 996.228 months", (30322.68975, "d"), Outcome.MET),
        ("mo", "egfr >= 30322.68975 days", 996.228, Outcome.MET),
    ],
)
def test_a_repeating_conversion_factor_keeps_exact_values(declared, threshold, sent, expected):
    protocol = parse_protocol(
        f"protocol U\nfact egfr: quantity '{declared}'\ninclusion I1 \"x\": {threshold}\n"
    )
    value = {"value": sent[0], "unit": sent[1]} if isinstance(sent, tuple) else sent
    assert protocol.evaluate({"egfr": value}).outcomes["I1"] is expected


NAMED_UNITS = {
    "serum_creatinine": "umol/L",
    "baseline_creatinine": "umol/L",
    "platelet_count": "10*9/L",
    "life_expectancy": "d",
    "age": "mo",
    "prednisone_equivalent_dose": "g/d",
}


@given(patients(NCT, units="declared"))
def test_creatinine_in_umol_platelets_in_10_9_per_l_months_in_days(patient):
    other = reexpress(patient, lambda fact, options: NAMED_UNITS.get(fact, options[0]))
    same_verdict(NCT.evaluate(patient), NCT.evaluate(other))


_SAME_THRESHOLDS = {
    "18 years and 65 years": "216 months and 780 months",
    "age < 65 years": "age < 23741.25 days",
    "< 60 'mL/min/{1.73_m2}'": "< 3.6 'L/h/{1.73_m2}'",
    "25000 '/uL'": "25 '10*9/L'",
    "life_expectancy < 3 months": "life_expectancy < 91.3125 days",
    "lvef < 40 '%'": "lvef < 0.4 '1'",
    "<= 4 months": "<= 2 * 2 months",
    "> 15 'mg/d'": "> 0.015 'g/d'",
    "< 0.5 'mL/kg/h'": "< 0.0005 'L/kg/h'",
    "over last 48 hours": "over last 2 days",
    "over last 12 hours": "over last 720 minutes",
    "over last 30 days": "over last 720 hours",
}
_RULES_TEXT = RULES_FILE.read_text(encoding="utf-8")
_REWRITTEN = _RULES_TEXT
for _old, _new in _SAME_THRESHOLDS.items():
    _REWRITTEN = _REWRITTEN.replace(_old, _new)
NCT_OTHER_UNITS = parse_protocol(_REWRITTEN, "rewritten.rules")


@given(patients(NCT))
def test_thresholds_written_in_other_units_change_nothing(patient):
    """``25 '10*9/L'`` is exactly ``25000 '/uL'``: boundaries survive the conversion."""
    same_verdict(NCT.evaluate(patient), NCT_OTHER_UNITS.evaluate(patient))


# --------------------------------------------------------------------------- monotonicity


def complete(partial: dict[str, Any], full: dict[str, Any]) -> dict[str, Any]:
    """`partial` with its missing facts taken from `full`."""
    out = dict(partial)
    for name, value in full.items():
        if out.get(name) is None:
            out[name] = value
    return out


def assert_monotone(protocol: Any, partial: dict[str, Any], full: dict[str, Any]) -> None:
    before = protocol.evaluate(partial)
    after = protocol.evaluate(complete(partial, full))
    for criterion in before.criteria:
        if criterion.outcome is not Outcome.UNKNOWN:
            assert after.criterion(criterion.id).outcome is criterion.outcome, criterion.id
    if before.status is not Status.INDETERMINATE:
        assert after.status is before.status


@given(st.data())
def test_learning_a_missing_fact_never_changes_a_decided_outcome(data):
    # one `as_of` for both: a `past` date drawn for one evaluation time may be after another
    now = data.draw(
        st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC))
    )
    partial = data.draw(patients(NCT, absent=0.5, as_of=now))
    full = data.draw(patients(NCT, absent=0.0, as_of=now))
    assert_monotone(NCT, partial, full)


_NCT_FACTS = "\n".join(f.decl.span.text for f in NCT.facts)


@settings(max_examples=100)
@given(expressions(NCT, known=False), st.data())
def test_conditions_without_is_known_are_monotone(condition, data):
    protocol = parse_protocol(f'protocol M\n{_NCT_FACTS}\ninclusion C "c": {condition}\n')
    now = data.draw(
        st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC))
    )
    partial = data.draw(patients(protocol, absent=0.5, as_of=now))
    full = data.draw(patients(protocol, absent=0.0, as_of=now))
    assert_monotone(protocol, partial, full)


# --------------------------------------------------------------------------- determinism


@given(patients(NCT))
def test_same_input_same_result_and_json_round_trips(patient):
    first = NCT.evaluate(patient)
    again = NCT.evaluate(copy.deepcopy(patient))
    (batch,) = NCT.evaluate_many([patient])
    as_dict = first.to_dict()
    assert as_dict == again.to_dict() == batch.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert json.loads(first.to_json()) == as_dict
    jsonschema.validate(as_dict, SCHEMA)


@given(patients(NCT), st.randoms(use_true_random=False))
def test_order_of_keys_and_observations_does_not_matter(patient, rnd):
    items = list(patient.items())
    rnd.shuffle(items)
    shuffled = {k: (rnd.sample(v, len(v)) if isinstance(v, list) else v) for k, v in items}
    same_verdict(NCT.evaluate(patient), NCT.evaluate(shuffled))


@given(patients(NCT))
def test_as_of_argument_equals_as_of_in_the_record(patient):
    without = {k: v for k, v in patient.items() if k != "as_of"}
    from_argument = NCT.evaluate(without, as_of=patient["as_of"])
    assert from_argument.to_dict() == NCT.evaluate(patient).to_dict()


@settings(max_examples=50)
@given(patients(NCT))
def test_reloading_the_protocol_changes_nothing(patient):
    reloaded = parse_protocol(_RULES_TEXT, str(RULES_FILE))
    assert reloaded.evaluate(patient).to_dict() == NCT.evaluate(patient).to_dict()


def test_the_strategies_reach_every_status():
    measured = ("age", "baseline_egfr", "lvef", "platelet_count")
    fixed = {k: v for k, v in eligible().items() if k not in measured}
    strategy = patients(NCT, as_of=AS_OF, absent=0.05, fixed=fixed)
    search = settings(max_examples=2000, database=None, derandomize=True)
    for status in Status:  # a directed search: raises NoSuchExample if a status is never drawn
        find(strategy, lambda patient, s=status: NCT.evaluate(patient).status is s, settings=search)
