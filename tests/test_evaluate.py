"""Evaluation semantics, through the public API only.

Every operator and aggregate with known and unknown operands, windows and their edges,
Kleene three-valued logic, unit conversions, status rules and missing facts, traces,
determinism and thread safety. Small protocols are built inline with `parse_protocol`; the
NCT04194671 example patients cover the real protocol.
"""

from __future__ import annotations

import copy
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol_rules as pr
from protocol_rules import Outcome, PatientDataError, Status

from .conftest import PATIENTS, PROTOCOL_FILE, load_patient

MET, NOT_MET, UNKNOWN = "met", "not_met", "unknown"
AS_OF = "2026-03-03T08:00:00Z"

FACTS = """
fact a: boolean
fact b: boolean
fact c: boolean
fact n: number
fact k: integer
fact x: quantity 'mg/dL' molar_mass 113.12 'g/mol'
fact w: quantity 'g'
fact life: quantity 'mo'
fact platelets: quantity '/uL'
fact cause: one of septic, prerenal, other
fact drugs: set of one of metformin, insulin, sglt2_inhibitor
fact d: date
fact e: date
fact t: datetime
fact s: series of quantity 'mg/dL' molar_mass 113.12 'g/mol'
fact events: series of one of mi, cabg, stroke
"""


@cache
def protocol(expr: str) -> pr.Protocol:
    """A one-criterion protocol `I1` whose condition is `expr` over the facts above."""
    return pr.parse_protocol(f'protocol T\n{FACTS}\ninclusion I1 "under test":\n  {expr}\n')


def evaluate(expr: str, patient: dict | None = None, as_of: object = AS_OF) -> pr.Result:
    return protocol(expr).evaluate(patient or {}, as_of=as_of)


def outcome(expr: str, patient: dict | None = None, as_of: object = AS_OF) -> str:
    return evaluate(expr, patient, as_of).criterion("I1").outcome.value


def obs(*pairs, unit: str | None = None) -> list[dict]:
    """Observations of a series: (value, at) pairs."""
    out = []
    for value, at in pairs:
        item = {"value": value, "at": at}
        if unit:
            item["unit"] = unit
        out.append(item)
    return out


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- comparisons


@pytest.mark.parametrize(
    "expr, n, want",
    [
        ("n < 3", 2, MET),
        ("n < 3", 3, NOT_MET),
        ("n <= 3", 3, MET),
        ("n <= 3", 4, NOT_MET),
        ("n > 3", 4, MET),
        ("n > 3", 3, NOT_MET),
        ("n >= 3", 3, MET),
        ("n >= 3", 2.5, NOT_MET),
        ("n = 3", 3, MET),
        ("n = 3", 3.5, NOT_MET),
        ("n != 3", 2, MET),
        ("n != 3", 3, NOT_MET),
    ],
)
def test_comparison_with_known_operands(expr, n, want):
    assert outcome(expr, {"n": n}) == want


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "=", "!="])
@pytest.mark.parametrize("patient", [{}, {"n": None}, {"k": 2}, {"n": 2}], ids=str)
def test_comparison_with_an_unknown_operand_is_unknown(op, patient):
    # n op k: at least one side is absent (or null) in every patient here
    assert outcome(f"n {op} k", patient) == UNKNOWN


def test_choice_equality_and_inequality():
    assert outcome("cause = septic", {"cause": "septic"}) == MET
    assert outcome("cause != septic", {"cause": "septic"}) == NOT_MET
    assert outcome("cause != septic", {"cause": "other"}) == MET
    assert outcome("cause = septic", {}) == UNKNOWN


@pytest.mark.parametrize(
    "value, want",
    [(0.999, NOT_MET), (1, MET), (1.5, MET), (2, MET), (2.001, NOT_MET)],
)
def test_between_is_inclusive_at_both_ends(value, want):
    assert outcome("x between 1 'mg/dL' and 2 'mg/dL'", {"x": value}) == want


def test_between_with_an_unknown_operand_or_bound_is_unknown():
    assert outcome("n between 1 and 2", {}) == UNKNOWN
    assert outcome("n between k and 10", {"n": 5}) == UNKNOWN
    assert outcome("n between 1 and k", {"n": 5}) == UNKNOWN
    # even when the other bound alone already decides it: no partial evaluation of between
    assert outcome("n between k and 10", {"n": 50}) == UNKNOWN


@pytest.mark.parametrize(
    "expr, cause, want",
    [
        ("cause in {septic, prerenal}", "septic", MET),
        ("cause in {septic, prerenal}", "other", NOT_MET),
        ("cause not in {septic, prerenal}", "septic", NOT_MET),
        ("cause not in {septic, prerenal}", "other", MET),
        ("cause in {septic, prerenal}", None, UNKNOWN),
        ("cause not in {septic, prerenal}", None, UNKNOWN),
    ],
)
def test_in_and_not_in(expr, cause, want):
    assert outcome(expr, {"cause": cause}) == want


def test_in_a_set_of_numbers_and_quantities():
    assert outcome("k in {1, 2, 3}", {"k": 2}) == MET
    assert outcome("k not in {1, 2, 3}", {"k": 4}) == MET
    # a quantity set member in another unit: 1 mg/dL is 88.4017 umol/L
    assert outcome("x in {1 'mg/dL', 2 'mg/dL'}", {"x": {"value": 2, "unit": "mg/dL"}}) == MET


@pytest.mark.parametrize(
    "operand, patient",
    [
        ("a", {}),
        ("n + 1", {}),
        ("max(s over last 2 days)", {}),  # absent series
        ("max(s over last 2 days)", {"s": []}),  # empty window
        ("n / k", {"n": 1, "k": 0}),  # division by zero
    ],
)
def test_is_known_and_is_unknown_are_never_unknown(operand, patient):
    assert outcome(f"{operand} is known", patient) == NOT_MET
    assert outcome(f"{operand} is unknown", patient) == MET


def test_is_known_of_a_known_false_value_is_true():
    assert outcome("a is known", {"a": False}) == MET
    assert outcome("a is unknown", {"a": False}) == NOT_MET


# --------------------------------------------------------------------------- sets


@pytest.mark.parametrize(
    "expr, drugs, want",
    [
        ("drugs contains insulin", ["insulin", "metformin"], MET),
        ("drugs contains insulin", ["metformin"], NOT_MET),
        ("drugs contains insulin", [], NOT_MET),
        ("drugs contains insulin", None, UNKNOWN),
        ("drugs contains any of {insulin, sglt2_inhibitor}", ["sglt2_inhibitor"], MET),
        ("drugs contains any of {insulin, sglt2_inhibitor}", ["metformin"], NOT_MET),
        ("drugs contains any of {insulin, sglt2_inhibitor}", [], NOT_MET),
        ("drugs contains any of {insulin, sglt2_inhibitor}", None, UNKNOWN),
        ("drugs contains all of {insulin, sglt2_inhibitor}", ["sglt2_inhibitor", "insulin"], MET),
        ("drugs contains all of {insulin, sglt2_inhibitor}", ["insulin", "metformin"], NOT_MET),
        ("drugs contains all of {insulin, sglt2_inhibitor}", [], NOT_MET),
        ("drugs contains all of {insulin, sglt2_inhibitor}", None, UNKNOWN),
    ],
)
def test_contains_on_a_set_of_choices(expr, drugs, want):
    assert outcome(expr, {"drugs": drugs}) == want


def test_a_set_given_with_duplicates_is_a_set():
    assert outcome("drugs contains all of {insulin}", {"drugs": ["insulin", "insulin"]}) == MET


# --------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(
    "expr, want",
    [
        ("n + k = 7", MET),  # 5 + 2
        ("n - k = 3", MET),
        ("n * k = 10", MET),
        ("n / k = 2.5", MET),  # true division, even of integers' values
        ("-n = -5", MET),
        ("-n + k = -3", MET),
        ("n + k * 2 = 9", MET),  # * binds tighter than +
        ("(n + k) * 2 = 14", MET),
        ("n - k - 1 = 2", MET),  # left-associative
    ],
)
def test_arithmetic_on_numbers(expr, want):
    assert outcome(expr, {"n": 5, "k": 2}) == want


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_arithmetic_with_an_unknown_operand_is_unknown(op):
    assert outcome(f"n {op} k > 0", {"n": 5}) == UNKNOWN
    assert outcome(f"n {op} k > 0", {"k": 5}) == UNKNOWN


def test_division_by_zero_is_unknown_not_an_error():
    result = evaluate("n / k > 1", {"n": 5, "k": 0})
    assert result.criterion("I1").outcome is Outcome.UNKNOWN
    assert "division by zero" in (result.criterion("I1").trace.why or "")


def test_quantity_times_number_keeps_the_unit():
    assert outcome("x * 2 = 4 'mg/dL'", {"x": 2}) == MET
    assert outcome("2 * x = 4 'mg/dL'", {"x": 2}) == MET
    assert outcome("x / 2 = 1 'mg/dL'", {"x": 2}) == MET
    # and it compares after conversion: 4 mg/dL is 353.6 umol/L
    assert outcome("2 * x > 350 'umol/L'", {"x": 2}) == MET


def test_ratio_of_like_quantities_is_a_plain_number():
    # 2 g / 500 mg = 4, a plain number: it compares with a unitless literal
    assert outcome("w / 500 'mg' = 4", {"w": 2}) == MET
    assert outcome("x / 2 'mg/dL' > 1.5", {"x": 3.2}) == MET
    trace = evaluate("w / 500 'mg' = 4", {"w": 2}).criterion("I1").trace
    ratio = trace.children[0]
    assert ratio.value == 4
    assert ratio.unit in (None, "1")


def test_a_quantity_cannot_be_compared_with_a_plain_number():
    with pytest.raises(pr.ProtocolError) as info:
        protocol("x > 2")
    assert info.value.errors[0].code == "PR301"


def test_unary_minus_on_a_quantity():
    assert outcome("-x < 0 'mg/dL'", {"x": 1}) == MET
    assert outcome("-x < 0 'mg/dL'", {}) == UNKNOWN


# --------------------------------------------------------------------------- dates and time


def test_date_plus_and_minus_a_duration_is_a_date():
    assert outcome("d + 3 days = e", {"d": "2026-01-01", "e": "2026-01-04"}) == MET
    assert outcome("d - 3 days = @2025-12-29", {"d": "2026-01-01"}) == MET
    assert outcome("t + 12 hours = @2026-01-01T12:00", {"t": "2026-01-01T00:00:00Z"}) == MET
    assert outcome("d + 3 days = e", {"e": "2026-01-04"}) == UNKNOWN


def test_a_month_word_is_a_calendar_month_and_a_quoted_mo_a_mean_julian_month():
    # docs/language/time.md: duration words step the calendar, UCUM units in quotes do not
    assert outcome("d + 1 month = @2026-02-01", {"d": "2026-01-01"}) == MET
    assert outcome("d + 1 year = @2027-01-01", {"d": "2026-01-01"}) == MET
    # 2026-01-01 + 30.4375 days = 2026-01-31T10:30Z
    assert outcome("d + 1 'mo' = @2026-01-31T10:30", {"d": "2026-01-01"}) == MET
    assert outcome("d + 1 'a' = @2027-01-01T06:00", {"d": "2026-01-01"}) == MET


def test_date_minus_date_is_a_duration():
    assert outcome("e - d = 3 days", {"d": "2026-01-01", "e": "2026-01-04"}) == MET
    assert outcome("e - d > 2 days", {"d": "2026-01-01", "e": "2026-01-04"}) == MET
    assert outcome("e - d = 72 hours", {"d": "2026-01-01", "e": "2026-01-04"}) == MET
    assert outcome("e - d > 2 days", {"d": "2026-01-01"}) == UNKNOWN


def test_dates_compare_at_day_precision_with_datetimes():
    assert outcome("d < @2026-01-02", {"d": "2026-01-01"}) == MET
    # a date and a datetime meet at the datetime's UTC date
    assert outcome("t > d", {"t": "2026-01-01T00:00:01Z", "d": "2026-01-01"}) == NOT_MET
    assert outcome("t >= d", {"t": "2026-01-01T23:59:59Z", "d": "2026-01-01"}) == MET
    assert outcome("t > d", {"t": "2026-01-02T00:00:00Z", "d": "2026-01-01"}) == MET
    assert outcome("t = d", {"t": "2026-01-01T08:00:00+08:00", "d": "2026-01-01"}) == MET


START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "fact, value",
    [("d", "2026-01-01"), ("t", "2026-01-01T00:00:00Z"), ("t", "2026-01-01T08:00:00+08:00")],
)
@pytest.mark.parametrize(
    "as_of, want",
    [
        ("2026-04-30T23:59:59Z", MET),
        ("2026-05-01T00:00:00Z", MET),
        ("2026-05-01T00:00:01Z", "date"),
        ("2026-05-01T23:59:59Z", "date"),
        ("2026-05-02T00:00:00Z", NOT_MET),
    ],
)
def test_time_since_four_months_is_four_calendar_months(fact, value, as_of, want):
    """2026-01-01 + 4 months = 2026-05-01: on that day a date is 4 months ago, not more."""
    if want == "date":  # a date has day precision: all of 1 May is 4 months after it
        want = MET if fact == "d" else NOT_MET
    assert outcome(f"time_since({fact}) <= 4 months", {fact: value}, as_of=as_of) == want


def test_time_since_is_a_duration_in_days_and_unknown_without_the_date():
    result = evaluate("time_since(d) > 1 day", {"d": "2026-01-01"}, as_of="2026-02-01")
    since = result.criterion("I1").trace.children[0]
    assert since.value == 31
    assert since.unit == "d"
    assert outcome("time_since(d) > 1 day", {}, as_of="2026-02-01") == UNKNOWN
    assert outcome("time_since(d) = 0 days", {"d": "2026-01-01"}, as_of="2026-01-01") == MET


def test_time_since_of_a_date_after_as_of_is_negative():
    assert outcome("time_since(d) < 0 days", {"d": "2026-03-10"}, as_of="2026-03-01") == MET


# --------------------------------------------------------------------------- counting


@pytest.mark.parametrize(
    "expr, patient, want",
    [
        # the spec's cases
        ("at least 2 of (a, b, c)", {"a": True, "c": False}, UNKNOWN),
        ("at least 2 of (a, b, c)", {"a": True, "b": True}, MET),
        ("at least 2 of (a, b, c)", {"a": False, "b": False}, NOT_MET),
        ("at least 2 of (a, b, c)", {"a": True, "b": False, "c": False}, NOT_MET),
        ("at least 1 of (a, b, c)", {}, UNKNOWN),
        ("at least 1 of (a, b, c)", {"c": True}, MET),
        ("at most 1 of (a, b, c)", {"a": True, "c": False}, UNKNOWN),
        ("at most 1 of (a, b, c)", {"a": True, "b": True}, NOT_MET),
        ("at most 1 of (a, b, c)", {"a": False, "b": False}, MET),
        ("at most 1 of (a, b, c)", {"a": True, "b": False, "c": False}, MET),
        ("at most 0 of (a, b)", {"a": False}, UNKNOWN),
        ("at least 2 of (n > 1, k > 1, a)", {"n": 2, "k": 2}, MET),
    ],
    ids=str,
)
def test_at_least_and_at_most(expr, patient, want):
    assert outcome(expr, patient) == want


def test_at_least_more_than_listed_is_a_static_error():
    with pytest.raises(pr.ProtocolError):
        protocol("at least 3 of (a, b)")


# --------------------------------------------------------------------------- Kleene logic

T, F, U = True, False, None
KLEENE_AND = {
    (T, T): MET, (T, F): NOT_MET, (T, U): UNKNOWN,
    (F, T): NOT_MET, (F, F): NOT_MET, (F, U): NOT_MET,
    (U, T): UNKNOWN, (U, F): NOT_MET, (U, U): UNKNOWN,
}  # fmt: skip
KLEENE_OR = {
    (T, T): MET, (T, F): MET, (T, U): MET,
    (F, T): MET, (F, F): NOT_MET, (F, U): UNKNOWN,
    (U, T): MET, (U, F): UNKNOWN, (U, U): UNKNOWN,
}  # fmt: skip


def _booleans(a, b) -> dict:
    return {name: v for name, v in (("a", a), ("b", b)) if v is not None}


@pytest.mark.parametrize("a, b", list(KLEENE_AND), ids=str)
def test_kleene_and(a, b):
    assert outcome("a and b", _booleans(a, b)) == KLEENE_AND[a, b]


@pytest.mark.parametrize("a, b", list(KLEENE_OR), ids=str)
def test_kleene_or(a, b):
    assert outcome("a or b", _booleans(a, b)) == KLEENE_OR[a, b]


@pytest.mark.parametrize("a, want", [(T, NOT_MET), (F, MET), (U, UNKNOWN)], ids=str)
def test_kleene_not(a, want):
    assert outcome("not a", _booleans(a, None)) == want


def test_null_is_unknown_like_absent():
    assert outcome("a or b", {"a": None, "b": False}) == UNKNOWN
    assert outcome("a and b", {"a": None, "b": False}) == NOT_MET


def test_not_binds_looser_than_comparisons():
    # `not a is unknown` is `not (a is unknown)`
    assert outcome("not a is unknown", {}) == NOT_MET
    assert outcome("not n > 3", {"n": 5}) == NOT_MET


def test_a_decided_and_leaves_the_other_operand_not_evaluated_but_a_known_value():
    trace = evaluate("a and b", {"a": False}).criterion("I1").trace
    left, right = trace.children
    assert (left.value, left.evaluated) == (False, True)
    assert right.evaluated is False
    assert trace.value is False and trace.known


# --------------------------------------------------------------------------- windows

# as_of is 2026-03-03T08:00Z; the 48-hour window starts at 2026-03-01T08:00Z
SERIES = obs(
    (9, "2026-03-01T07:59:59Z"),  # one second before the window: out
    (1, "2026-03-01T08:00:00Z"),  # exactly at as_of - 48 h: in
    (4, "2026-03-02T12:00:00Z"),
    (3, "2026-03-03T08:00:00Z"),  # exactly at as_of: in
    (50, "2026-03-03T08:00:01Z"),  # after as_of: out
)


@pytest.mark.parametrize(
    "aggregate, value",
    [
        ("max", 4),
        ("min", 1),
        ("mean", 8 / 3),
        ("sum", 8),
        ("latest", 3),
        ("earliest", 1),
        ("count", 3),
        ("exists", True),
    ],
)
def test_aggregates_over_a_window_inclusive_at_both_edges(aggregate, value):
    trace = evaluate(f"{aggregate}(s over last 48 hours) is known", {"s": SERIES})
    node = trace.criterion("I1").trace.children[0]
    assert node.value == pytest.approx(value)


def test_aggregate_of_a_quantity_series_has_the_fact_unit():
    node = evaluate("max(s over last 48 hours) is known", {"s": SERIES}).criterion("I1")
    assert node.trace.children[0].unit == "mg/dL"


def test_window_edge_observations_in_and_out():
    one_out = obs((1, "2026-03-01T07:59:59Z"))
    at_edge = obs((1, "2026-03-01T08:00:00Z"))
    after = obs((1, "2026-03-03T08:00:01Z"))
    assert outcome("exists(s over last 48 hours)", {"s": one_out}) == NOT_MET
    assert outcome("exists(s over last 48 hours)", {"s": at_edge}) == MET
    assert outcome("exists(s over last 48 hours)", {"s": after}) == NOT_MET


def test_latest_and_earliest_follow_time_not_input_order():
    shuffled = [SERIES[2], SERIES[3], SERIES[1]]  # 4 @ 03-02, 3 @ 03-03, 1 @ 03-01
    assert outcome("latest(s over last 48 hours) = 3 'mg/dL'", {"s": shuffled}) == MET
    assert outcome("earliest(s over last 48 hours) = 1 'mg/dL'", {"s": shuffled}) == MET


def test_series_values_in_other_units_are_converted_before_aggregating():
    series = [
        {"value": 88.4, "unit": "umol/L", "at": "2026-03-02T00:00:00Z"},  # ~1 mg/dL
        {"value": 3, "unit": "mg/dL", "at": "2026-03-02T06:00:00Z"},
    ]
    assert outcome("mean(s over last 48 hours) > 1.99 'mg/dL'", {"s": series}) == MET
    assert outcome("mean(s over last 48 hours) < 2.01 'mg/dL'", {"s": series}) == MET
    assert outcome("earliest(s over last 48 hours) < 1 'mg/dL'", {"s": series}) == MET


EMPTY_WINDOW = {"s": obs((9, "2026-02-01T00:00:00Z"))}  # known series, nothing in the window


@pytest.mark.parametrize(
    "expr, want",
    [
        ("max(s over last 48 hours) > 0 'mg/dL'", UNKNOWN),
        ("min(s over last 48 hours) > 0 'mg/dL'", UNKNOWN),
        ("mean(s over last 48 hours) > 0 'mg/dL'", UNKNOWN),
        ("sum(s over last 48 hours) > 0 'mg/dL'", UNKNOWN),
        ("latest(s over last 48 hours) > 0 'mg/dL'", UNKNOWN),
        ("earliest(s over last 48 hours) > 0 'mg/dL'", UNKNOWN),
        ("count(s over last 48 hours) = 0", MET),
        ("exists(s over last 48 hours)", NOT_MET),
        ("any(s over last 48 hours) > 0 'mg/dL'", NOT_MET),
        ("all(s over last 48 hours) > 0 'mg/dL'", MET),
        ("any(events over last 48 hours) in {mi}", NOT_MET),
        ("all(events over last 48 hours) in {mi}", MET),
    ],
)
@pytest.mark.parametrize("series", [[], EMPTY_WINDOW["s"]], ids=["empty list", "none in window"])
def test_empty_window(expr, want, series):
    events = [{"value": "mi", "at": o["at"]} for o in series]
    assert outcome(expr, {"s": series, "events": events}) == want


@pytest.mark.parametrize(
    "expr",
    [
        "max(s over last 48 hours) > 0 'mg/dL'",
        "min(s over last 48 hours) > 0 'mg/dL'",
        "mean(s over last 48 hours) > 0 'mg/dL'",
        "sum(s over last 48 hours) > 0 'mg/dL'",
        "latest(s over last 48 hours) > 0 'mg/dL'",
        "earliest(s over last 48 hours) > 0 'mg/dL'",
        "count(s over last 48 hours) = 0",
        "exists(s over last 48 hours)",
        "any(s over last 48 hours) > 0 'mg/dL'",
        "all(s over last 48 hours) > 0 'mg/dL'",
    ],
)
@pytest.mark.parametrize("patient", [{}, {"s": None}], ids=["absent", "null"])
def test_unknown_series_makes_every_aggregate_unknown(expr, patient):
    assert outcome(expr, patient) == UNKNOWN


@pytest.mark.parametrize(
    "expr, want",
    [
        ("any(s over last 48 hours) > 3.5 'mg/dL'", MET),  # the 4 passes
        ("any(s over last 48 hours) > 4 'mg/dL'", NOT_MET),  # 9 and 50 are outside the window
        ("all(s over last 48 hours) < 5 'mg/dL'", MET),
        ("all(s over last 48 hours) < 4 'mg/dL'", NOT_MET),
        ("all(s over last 48 hours) between 1 'mg/dL' and 4 'mg/dL'", MET),
    ],
)
def test_quantified_comparisons(expr, want):
    assert outcome(expr, {"s": SERIES}) == want


def test_quantified_comparison_with_an_unknown_bound():
    # every observation's test is unknown: any and all are unknown
    assert outcome("any(s over last 48 hours) > x", {"s": SERIES}) == UNKNOWN
    assert outcome("all(s over last 48 hours) > x", {"s": SERIES}) == UNKNOWN


EVENTS = obs(
    ("cabg", "2026-01-10T00:00:00Z"),
    ("stroke", "2026-02-20T00:00:00Z"),
    ("mi", "2025-10-01T00:00:00Z"),  # outside three months
)


@pytest.mark.parametrize(
    "expr, want",
    [
        ("any(events over last 3 months) in {mi, stroke}", MET),
        ("any(events over last 3 months) in {mi}", NOT_MET),
        ("all(events over last 3 months) in {cabg, stroke}", MET),
        ("all(events over last 3 months) in {mi, stroke}", NOT_MET),
        ("any(events over last 3 months) not in {cabg}", MET),
        ("all(events over last 3 months) not in {mi}", MET),
        ("exists(events over last 3 months)", MET),
        ("count(events over last 3 months) = 2", MET),
        ("count(events over last 12 months) = 3", MET),
        ("latest(events over last 3 months) = stroke", MET),
    ],
)
def test_series_of_choices(expr, want):
    assert outcome(expr, {"events": EVENTS}) == want


def test_window_length_can_be_any_duration_unit():
    at_edge = {"s": obs((1, "2026-02-23T08:00:00Z"))}  # exactly 8 days before as_of
    assert outcome("exists(s over last 8 days)", at_edge) == MET
    assert outcome("exists(s over last 192 hours)", at_edge) == MET
    assert outcome("exists(s over last 1 week)", at_edge) == NOT_MET


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    "given, want",
    [
        ({"value": 176.8, "unit": "umol/L"}, NOT_MET),  # 1.99996 mg/dL
        ({"value": 177, "unit": "umol/L"}, MET),  # 2.00222 mg/dL
        (2.01, MET),
        ({"value": 0.0201, "unit": "g/L"}, MET),
        ({"value": 20, "unit": "mg/L"}, NOT_MET),
    ],
    ids=str,
)
def test_creatinine_mg_dl_and_umol_l_convert_through_the_molar_mass(given, want):
    assert outcome("x > 2 'mg/dL'", {"x": given}) == want


@pytest.mark.parametrize(
    "expr, x, want",
    [
        ("x > 200 'umol/L'", 2.3, MET),  # 203.3 umol/L
        ("x > 200 'umol/L'", 2.2, NOT_MET),  # 194.5 umol/L
        ("x > 200 'umol/L'", {"value": 200, "unit": "umol/L"}, NOT_MET),  # exact boundary
        ("x >= 200 'umol/L'", {"value": 200, "unit": "umol/L"}, MET),
        ("x = 200 'umol/L'", {"value": 200, "unit": "umol/L"}, MET),
    ],
    ids=str,
)
def test_literal_in_another_unit_than_the_fact(expr, x, want):
    assert outcome(expr, {"x": x}) == want


@pytest.mark.parametrize(
    "given, want",
    [
        ({"value": 25, "unit": "10*9/L"}, NOT_MET),  # exactly 25,000 /uL
        ({"value": 24.999, "unit": "10*9/L"}, MET),
        ({"value": 25.001, "unit": "10*9/L"}, NOT_MET),
        ({"value": 25000000, "unit": "/mL"}, NOT_MET),
        (24999, MET),
        (25000, NOT_MET),
    ],
    ids=str,
)
def test_platelets_per_microlitre_and_10e9_per_litre(given, want):
    assert outcome("platelets < 25000 '/uL'", {"platelets": given}) == want


@given(thousandths=st.integers(min_value=0, max_value=1_000_000))
def test_exact_boundaries_survive_unit_conversion(thousandths):
    giga_per_litre = thousandths / 1000
    patient = {"platelets": {"value": giga_per_litre, "unit": "10*9/L"}}
    expected = NOT_MET if giga_per_litre >= 25 else MET
    assert outcome("platelets < 25000 '/uL'", patient) == expected
    assert outcome(f"platelets = {thousandths} '/uL'", {"platelets": thousandths}) == MET


@pytest.mark.parametrize(
    "given, want",
    [
        (3, NOT_MET),  # exactly 3 months
        (2.99, MET),
        ({"value": 91.3125, "unit": "d"}, NOT_MET),  # 3 * 30.4375 days
        ({"value": 91.3, "unit": "d"}, MET),
        ({"value": 13, "unit": "wk"}, MET),  # 91 days
        ({"value": 0.25, "unit": "a"}, NOT_MET),  # a quarter of 365.25 days = 3 months
        ({"value": 2, "unit": "a"}, NOT_MET),
    ],
    ids=str,
)
def test_life_expectancy_in_days_weeks_years_against_months(given, want):
    assert outcome("life < 3 months", {"life": given}) == want


def test_duration_literal_in_days_against_a_months_fact():
    assert outcome("life < 90 days", {"life": 2.95}) == MET  # 89.79 days
    assert outcome("life < 90 days", {"life": 2.96}) == NOT_MET  # 90.09 days


def test_real_protocol_platelets_given_in_10e9_per_litre(nct):
    patient = load_patient("eligible.json")
    patient["platelet_count"] = {"value": 25, "unit": "10*9/L"}
    result = nct.evaluate(patient)
    assert result.criterion("E18").outcome is Outcome.NOT_MET
    assert result.status is Status.ELIGIBLE
    patient["platelet_count"] = {"value": 24.9, "unit": "10*9/L"}
    assert nct.evaluate(patient).criterion("E18").outcome is Outcome.MET


def test_real_protocol_life_expectancy_in_days(nct):
    patient = load_patient("eligible.json")
    patient["life_expectancy"] = {"value": 91.3125, "unit": "d"}
    assert nct.evaluate(patient).criterion("E6").outcome is Outcome.NOT_MET
    patient["life_expectancy"] = {"value": 90, "unit": "d"}
    assert nct.evaluate(patient).criterion("E6").outcome is Outcome.MET


# --------------------------------------------------------------------------- status rules

STATUS_RULES = """protocol S
fact a: boolean "First condition"
fact b: boolean "Second condition"
fact c: boolean
fact n: number
fact s: series of number
define both = a and c
inclusion I1 "a": a or c
inclusion I2 "n": n > 1 or both
exclusion E1 "b": b and n > 3
exclusion E2 "s": max(s over last 1 day) > 10
"""


@pytest.fixture(scope="module")
def rules() -> pr.Protocol:
    return pr.parse_protocol(STATUS_RULES)


def run(rules, **facts):
    patient = {"a": True, "b": False, "n": 2, "s": obs((1, AS_OF))}
    patient.update(facts)
    patient = {k: v for k, v in patient.items() if v is not ...}  # `...` removes a fact
    return rules.evaluate(patient, as_of=AS_OF)


def test_eligible_when_every_inclusion_met_and_every_exclusion_not_met(rules):
    result = run(rules)
    assert result.status is Status.ELIGIBLE
    assert result.eligible
    assert result.deciding == ()
    assert result.missing_facts == ()


def test_ineligible_by_an_inclusion_not_met_even_with_unknowns(rules):
    result = run(rules, a=False, c=False, b=..., n=...)
    assert result.status is Status.INELIGIBLE
    assert result.outcomes["E1"] is Outcome.UNKNOWN
    assert [c.id for c in result.deciding] == ["I1"]
    assert result.missing_facts == ()  # only an indeterminate result lists missing facts


def test_ineligible_by_an_exclusion_met_lists_every_excluding_criterion(rules):
    result = run(rules, a=False, c=False, b=True, n=5)
    assert result.status is Status.INELIGIBLE
    assert [c.id for c in result.deciding] == ["I1", "E1"]
    assert [c.id for c in result.criteria if c.excludes] == ["I1", "E1"]


def test_indeterminate_lists_open_criteria_and_missing_facts(rules):
    result = run(rules, b=..., n=5)  # E1 = b and n > 3 hangs on b
    assert result.status is Status.INDETERMINATE
    assert [c.id for c in result.deciding] == ["E1"]
    (missing,) = result.missing_facts
    assert missing.name == "b"
    assert missing.criteria == ("E1",)
    assert missing.reason == "absent"
    assert missing.description == "Second condition"


def test_missing_facts_are_only_those_under_unknown_parts(rules):
    # I1 = a or c is met with a true: c is not missing. E1 = b and n > 3 with n = 5:
    # b is missing, n is not.
    result = run(rules, b=..., n=5, c=...)
    assert result.status is Status.INDETERMINATE
    assert [m.name for m in result.missing_facts] == ["b"]


def test_a_missing_fact_lists_every_criterion_it_feeds_also_through_defines(rules):
    result = run(rules, a=..., n=..., b=True)
    # I1 = a or c, I2 = n > 1 or (a and c), E1 = b and n > 3: a feeds I1 and I2
    # (through `both`), c feeds I1 and I2, n feeds I2 and E1
    assert result.status is Status.INDETERMINATE
    feeds = {m.name: m.criteria for m in result.missing_facts}
    assert feeds == {"a": ("I1", "I2"), "c": ("I1", "I2"), "n": ("I2", "E1")}
    # in declaration order
    assert [m.name for m in result.missing_facts] == ["a", "c", "n"]


def test_an_empty_window_is_reported_as_missing_with_its_reason(rules):
    result = run(rules, s=obs((50, "2026-02-01T00:00:00Z")))
    assert result.status is Status.INDETERMINATE
    (missing,) = result.missing_facts
    assert (missing.name, missing.criteria) == ("s", ("E2",))
    assert missing.reason == "no observation in the window"


def test_absent_series_is_reported_as_absent(rules):
    result = run(rules, s=...)
    (missing,) = result.missing_facts
    assert (missing.name, missing.reason) == ("s", "absent")


@pytest.mark.parametrize(
    "expr, patient, want",
    [
        ("any(s over last 48 hours) > x", {"s": SERIES}, [("x", "absent")]),
        ("at least 2 of (a, b, c)", {"a": True}, [("b", "absent"), ("c", "absent")]),
        ("a is known or b", {}, [("b", "absent")]),  # `a is known` is known: false
        (
            "max(s over last 48 hours) > x",
            {"s": []},
            [("x", "absent"), ("s", "no observation in the window")],
        ),
        ("count(s over last 48 hours) > 1 or a", {}, [("a", "absent"), ("s", "absent")]),
    ],
    ids=str,
)
def test_missing_facts_of_unknown_parts(expr, patient, want):
    result = evaluate(expr, patient)
    assert result.status is Status.INDETERMINATE
    assert sorted((m.name, m.reason) for m in result.missing_facts) == sorted(want)
    assert all(m.criteria == ("I1",) for m in result.missing_facts)


def test_real_protocol_empty_urine_window_is_missing_with_reason(nct):
    patient = load_patient("indeterminate-urine.json")
    patient["urine_output"] = obs((0.3, "2026-02-01T00:00:00Z"))
    result = nct.evaluate(patient)
    assert result.status is Status.INDETERMINATE
    (missing,) = result.missing_facts
    assert missing.name == "urine_output"
    assert missing.criteria == ("I1",)
    assert missing.reason == "no observation in the window"


def test_real_protocol_e17_needs_no_last_change_date_when_not_immunosuppressed(nct):
    patient = load_patient("eligible.json")
    patient.pop("immunosuppression_last_change", None)
    patient["on_systemic_immunosuppression"] = False
    patient["prednisone_equivalent_dose"] = []
    assert nct.evaluate(patient).criterion("E17").outcome is Outcome.NOT_MET
    patient["on_systemic_immunosuppression"] = True
    result = nct.evaluate(patient)
    assert result.criterion("E17").outcome is Outcome.UNKNOWN
    assert [m.name for m in result.missing_facts] == ["immunosuppression_last_change"]


# --------------------------------------------------------------------------- evaluate_many


def test_evaluate_many_yields_an_error_in_place_of_a_bad_record(nct):
    good = load_patient("eligible.json")
    bad = dict(good, age="fifty")
    results = list(nct.evaluate_many([good, bad, "not a record", good]))
    assert len(results) == 4
    assert isinstance(results[0], pr.Result) and results[0].status is Status.ELIGIBLE
    assert isinstance(results[1], PatientDataError)
    assert results[1].errors[0].path == "$.age"
    assert isinstance(results[2], PatientDataError)
    assert results[2].errors[0].code == "PR401"
    assert isinstance(results[3], pr.Result) and results[3].status is Status.ELIGIBLE


def test_evaluate_many_is_lazy_and_passes_as_of(rules):
    def patients():
        yield {"a": True, "b": False, "n": 2, "s": obs((20, "2026-03-03T00:00:00Z"))}
        raise AssertionError("evaluate_many must not read ahead")

    batch = rules.evaluate_many(patients(), as_of=AS_OF)
    first = next(batch)
    assert first.status is Status.INELIGIBLE
    assert first.as_of == datetime(2026, 3, 3, 8, tzinfo=UTC)


# --------------------------------------------------------------------------- determinism, threads

EXAMPLES = sorted(p.name for p in PATIENTS.glob("*.json") if p.name != "expected.json")


def _snapshot(protocol: pr.Protocol, patient: dict) -> str:
    result = protocol.evaluate(patient)
    return result.to_json() + result.explain()


def test_evaluation_is_deterministic(nct):
    for name in EXAMPLES:
        patient = load_patient(name)
        assert _snapshot(nct, patient) == _snapshot(nct, copy.deepcopy(patient))


def test_evaluation_does_not_modify_the_patient(nct):
    for name in EXAMPLES:
        patient = load_patient(name)
        before = copy.deepcopy(patient)
        nct.evaluate(patient).to_dict()
        assert patient == before


@pytest.fixture
def busy_switching():
    """Make the interpreter switch threads very often, so that races show up."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_concurrent_evaluation_matches_a_sequential_run(nct, busy_switching):
    patients = [load_patient(name) for name in EXAMPLES]
    sequential = [_snapshot(nct, p) for p in patients]
    work = patients * 6
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda p: _snapshot(nct, p), work))
    assert concurrent == sequential * 6


def test_one_result_rendered_from_many_threads(nct, busy_switching):
    # a Result builds its criteria and traces lazily: racing first reads must agree
    result = nct.evaluate(load_patient("eligible-umol.json"))
    with ThreadPoolExecutor(max_workers=8) as pool:
        renders = list(pool.map(lambda _: result.to_json(), range(16)))
    assert len(set(renders)) == 1


def test_concurrent_evaluation_of_a_fresh_protocol(busy_switching):
    # the first evaluations of a protocol loaded in this test, racing from many threads
    fresh = pr.load_protocol(PROTOCOL_FILE)
    patients = [load_patient(name) for name in EXAMPLES] * 4
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda p: fresh.evaluate(p).status, patients))
    again = [fresh.evaluate(p).status for p in patients]
    assert statuses == again


def test_results_built_earlier_are_unaffected_by_later_evaluations(nct):
    first = nct.evaluate(load_patient("ineligible-platelets.json"))
    for name in EXAMPLES:
        nct.evaluate(load_patient(name)).to_dict()
    assert first.to_json() + first.explain() == _snapshot(
        nct, load_patient("ineligible-platelets.json")
    )


# --------------------------------------------------------------------------- traces


def _find(trace: pr.Trace, expr: str) -> pr.Trace:
    for node in trace.walk():
        if node.expr == expr:
            return node
    raise AssertionError(f"no trace node `{expr}` in {[n.expr for n in trace.walk()]}")


def test_a_fact_read_shows_the_value_as_given_and_as_converted(nct):
    result = nct.evaluate(load_patient("eligible-umol.json"))
    node = _find(result.criterion("I1").trace, "baseline_creatinine")
    assert node.kind == "fact"
    assert node.fact == "baseline_creatinine"
    assert node.given == {"value": 62, "unit": "umol/L"}
    assert node.unit == "mg/dL"
    assert node.value == pytest.approx(62 * 113.12 / 10000)
    platelets = _find(result.criterion("E18").trace, "platelet_count")
    assert platelets.given == {"value": 156, "unit": "10*9/L"}
    assert (platelets.value, platelets.unit) == (156000, "/uL")


def test_a_bare_number_fact_read_has_given_equal_to_value(nct):
    result = nct.evaluate(load_patient("ineligible-platelets.json"))
    node = _find(result.criterion("E18").trace, "platelet_count")
    assert (node.given, node.value, node.unit, node.known) == (24000, 24000, "/uL", True)


def test_a_window_trace_lists_observations_with_in_window_flags(nct):
    result = nct.evaluate(load_patient("eligible-umol.json"))
    window = _find(result.criterion("I1").trace, "serum_creatinine over last 48 hours")
    assert window.kind == "window"
    assert [o.in_window for o in window.observations] == [False, True, True, True]
    assert [o.at for o in window.observations] == [
        "2026-03-02T00:00:00Z",
        "2026-03-03T02:00:00Z",
        "2026-03-04T00:00:00Z",
        "2026-03-04T23:00:00Z",
    ]
    assert all(o.unit == "mg/dL" for o in window.observations)
    assert window.observations[-1].value == pytest.approx(141 * 113.12 / 10000)


def test_a_window_trace_flags_observations_after_as_of_as_outside():
    result = evaluate("max(s over last 48 hours) > 0 'mg/dL'", {"s": SERIES})
    window = _find(result.criterion("I1").trace, "s over last 48 hours")
    assert [o.in_window for o in window.observations] == [False, True, True, True, False]


def test_a_quantified_trace_records_each_observation_result(nct):
    patient = load_patient("eligible.json")
    patient["prednisone_equivalent_dose"] = [
        {"value": 10, "unit": "mg/d", "at": "2026-02-25T08:00:00Z"},
        {"value": 0.02, "unit": "g/d", "at": "2026-03-01T08:00:00Z"},
    ]
    result = nct.evaluate(patient)
    node = _find(
        result.criterion("E17").trace,
        "any(prednisone_equivalent_dose over last 30 days) > 15 'mg/d'",
    )
    assert node.kind == "quantified"
    assert node.value is True
    assert [(o.value, o.unit, o.result) for o in node.observations] == [
        (10, "mg/d", False),
        (20, "mg/d", True),
    ]
    assert result.criterion("E17").outcome is Outcome.MET


def test_an_unknown_fact_says_it_is_absent(nct):
    result = nct.evaluate(load_patient("indeterminate.json"))
    trace = result.criterion("E11").trace
    assert not trace.known and trace.value is None
    lvef = _find(trace, "lvef")
    assert not lvef.known
    assert lvef.why and "lvef" in lvef.why and "absent" in lvef.why
    assert trace.why == lvef.why  # the reason travels up


def test_an_unknown_aggregate_over_an_empty_window_says_so():
    result = evaluate("max(s over last 48 hours) > 0 'mg/dL'", EMPTY_WINDOW)
    trace = result.criterion("I1").trace
    aggregate = _find(trace, "max(s over last 48 hours)")
    assert not aggregate.known
    assert "no observation" in aggregate.why
    assert "s over last 48 hours" in aggregate.why
    assert "no observation" in trace.why


def test_an_unknown_aggregate_over_an_absent_series_says_it_is_absent():
    result = evaluate("max(s over last 48 hours) > 0 'mg/dL'", {})
    aggregate = _find(result.criterion("I1").trace, "max(s over last 48 hours)")
    assert "absent" in aggregate.why


def test_trace_expr_texts_are_the_source_text(nct):
    e18 = nct.evaluate(load_patient("ineligible-platelets.json")).criterion("E18").trace
    assert e18.expr == "platelet_count < 25000 '/uL' or severe_hematologic_abnormality"
    assert [c.expr for c in e18.children] == [
        "platelet_count < 25000 '/uL'",
        "severe_hematologic_abnormality",
    ]
    assert [c.expr for c in e18.children[0].children] == ["platelet_count", "25000 '/uL'"]
    source = PROTOCOL_FILE.read_text(encoding="utf-8").splitlines()
    assert "platelet_count < 25000 '/uL'" in source[e18.line - 1][e18.column - 1 :]


def test_trace_expr_of_a_multi_line_expression_is_its_source_text_on_one_line(nct):
    e17 = nct.evaluate(load_patient("eligible.json")).criterion("E17").trace
    lines = PROTOCOL_FILE.read_text(encoding="utf-8").splitlines()
    written = "\n".join([lines[e17.line - 1][e17.column - 1 :], lines[e17.line]])
    assert written.startswith("(on_systemic_immunosuppression and")
    assert written.endswith("any(prednisone_equivalent_dose over last 30 days) > 15 'mg/d'")
    assert "\n" not in e17.expr
    assert e17.expr.split() == written.split()


def test_trace_expr_is_written_text_not_a_pretty_print():
    # the source's tokens as written (no spaces added, parentheses kept), whitespace runs
    # collapsed to one space
    result = evaluate("(n>2)  and  k  <=  3", {"n": 3, "k": 3})
    trace = result.criterion("I1").trace
    assert trace.expr == "(n>2) and k <= 3"
    assert [c.expr for c in trace.children] == ["n>2", "k <= 3"]


def test_criterion_results_carry_the_protocol_text_and_note(nct):
    result = nct.evaluate(load_patient("eligible.json"))
    i2 = result.criterion("I2")
    assert (i2.id, i2.kind, i2.text, i2.note) == (
        "I2",
        "inclusion",
        "Age between 18 and 65 years",
        "Inclusive at both ends.",
    )
    with pytest.raises(KeyError):
        result.criterion("E99")


# --------------------------------------------------------------------------- windows in defines

DEFINED_WINDOW = """protocol T
fact age: quantity 'a' range 0 to 130
fact weight: quantity 'kg' range 0 to 500
fact insulin_dose: series of quantity '[IU]/d' range 0 to 1000
define doses = insulin_dose
define recent_insulin = doses over last 8 weeks
define insulin_per_kg = mean(recent_insulin) / weight
inclusion I4 "mean insulin dose of ≥ 0.2 IU/kg/day AND ≥ 15 IU/body/day":
  insulin_per_kg >= 0.2 '[IU]/kg/d' and mean(recent_insulin) >= 15 '[IU]/d'
exclusion E1 "any dose above 100 IU/d": any(recent_insulin) > 100 '[IU]/d'
"""


@pytest.mark.parametrize("doses", [[], obs((20, "2025-01-01T00:00:00Z"))], ids=["empty", "old"])
def test_an_empty_window_held_in_a_define_names_the_series_as_missing(doses):
    """docs/language/defines.md's own example, with no dose in the window (was AssertionError)."""
    result = pr.parse_protocol(DEFINED_WINDOW).evaluate(
        {"insulin_dose": doses, "weight": 70}, as_of=AS_OF
    )
    assert result.status is Status.INDETERMINATE
    (missing,) = result.missing_facts
    assert (missing.name, missing.reason) == ("insulin_dose", "no observation in the window")
    assert "no observation in `recent_insulin`" in result.explain()


# --------------------------------------------------------------------------- the calendar's ends


@pytest.mark.parametrize(
    "expr, patient",
    [
        ("d - 1 days < @2026-01-01", {"d": "0001-01-01"}),
        ("d + 1e300 days > @2026-01-01", {"d": "2026-01-01"}),
        ("t + 1e15 'h' > @2026-01-01T00:00", {"t": "2026-01-01T00:00:00Z"}),
        ("t - 1e15 'h' < @2026-01-01T00:00", {"t": "2026-01-01T00:00:00Z"}),
    ],
    ids=["before-year-1", "1e300-days", "1e15-hours", "minus-1e15-hours"],
)
def test_date_arithmetic_outside_the_calendar_is_unknown_and_says_why(expr, patient):
    result = evaluate(expr, patient)
    assert result.criterion("I1").outcome is Outcome.UNKNOWN
    shift = result.criterion("I1").trace.children[0]
    assert (shift.kind, shift.known) == ("date arithmetic", False)
    assert shift.why == "the date falls outside the years 1 to 9999"
    assert "outside the years 1 to 9999" in result.explain()
    result.to_json()
    result.to_markdown()


def test_date_arithmetic_at_the_calendar_edges_is_still_a_date():
    assert outcome("d - 1 days = @0001-01-01", {"d": "0001-01-02"}) == MET
    assert outcome("d + 1 days = @9999-12-31", {"d": "9999-12-30"}) == MET


def test_formatting_an_instant_never_fails():
    from protocol_rules.facts import format_instant

    assert format_instant(-1e300) == "before 0001-01-01"
    assert format_instant(1e300) == "after 9999-12-31"
    assert format_instant(0.0, has_time=False) == "1970-01-01"


# --------------------------------------------------------------------------- overflow


@pytest.mark.parametrize(
    "expr, patient, why",
    [
        ("n * 1e300 * 1e300 > 1", {"n": 2}, "too large (beyond 1e300)"),
        ("n / 1e-300 / 1e-300 > 1", {"n": 2}, "too large (beyond 1e300)"),
        ("n / (k - k) > 1", {"n": 2, "k": 1}, "division by zero"),
        (
            "sum(s over last 2 days) > 1 'mg/dL'",
            {"s": obs((1e308, "2026-03-03T00:00:00Z"), (1e308, "2026-03-03T01:00:00Z"))},
            "the sum is too large to compute",
        ),
        (
            "mean(s over last 2 days) > 1 'mg/dL'",
            {"s": obs((1e308, "2026-03-03T00:00:00Z"), (1e308, "2026-03-03T01:00:00Z"))},
            "the sum is too large to compute",
        ),
    ],
    ids=["product", "quotient", "zero", "sum", "mean"],
)
def test_arithmetic_that_overflows_is_unknown_never_infinity(expr, patient, why):
    result = evaluate(expr, patient)
    assert result.criterion("I1").outcome is Outcome.UNKNOWN
    computed = result.criterion("I1").trace.children[0]
    assert (computed.known, computed.value, computed.why) == (False, None, why)
    text = result.to_json()
    assert "Infinity" not in text and "NaN" not in text


def test_a_runtime_conversion_that_overflows_is_unknown():
    protocol = pr.parse_protocol(
        "protocol T\nfact a: quantity 'ug'\nfact b: quantity 'kg'\ninclusion I1 \"x\": a < 2 * b\n"
    )
    result = protocol.evaluate({"a": 1, "b": 1e299})
    assert result.criterion("I1").outcome is Outcome.UNKNOWN
    converted = result.criterion("I1").trace.children[1]
    assert converted.why == "the value is too large to convert to `ug`"
    assert "Infinity" not in result.to_json()


def test_huge_and_tiny_numbers_print_compactly():
    result = evaluate("n > 1 and n * 1e-300 > 0", {"n": 1e250})
    text = result.explain()
    assert "n = 1e250" in text and "1e-50" in text
    assert max(len(line) for line in text.splitlines()) < 200


# --------------------------------------------------------------------------- results kept


def test_a_kept_result_holds_few_objects_for_the_garbage_collector(nct):
    """Reading `.outcomes` built and kept 24 CriterionResults (and as many partials) per
    result: with 10,000+ results kept, the collector took 40-50% of the time."""
    import gc

    patients = [load_patient(name) for name in EXAMPLES] * 20
    for patient in patients[:5]:
        nct.evaluate(patient).outcomes  # noqa: B018 - warm the caches
    gc.collect()
    before = len(gc.get_objects())
    kept = []
    for patient in patients:
        result = nct.evaluate(patient)
        assert result.outcomes == {c.id: c.outcome for c in result.criteria}
        kept.append(result)
    gc.collect()
    per_result = (len(gc.get_objects()) - before) / len(kept)
    assert per_result < 15, per_result


def test_outcomes_match_the_criteria_for_every_status(nct):
    for name in EXAMPLES:
        result = nct.evaluate(load_patient(name))
        assert list(result.outcomes) == [c.id for c in result.criteria]
        assert list(result.outcomes.values()) == [c.outcome for c in result.criteria]
