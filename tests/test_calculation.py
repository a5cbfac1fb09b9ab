"""Calculation: `if`, `unknown`, `first_known`, `^`, the math functions and ratios of like
quantities — their values, their units, their unknowns, their traces and their mistakes."""

from __future__ import annotations

import pytest

from protocol_rules import Outcome, check_text, parse_protocol
from protocol_rules.numeric import power, round_half_away

HEADER = """protocol CALC
fact age: quantity 'a'
fact weight: quantity 'kg'
fact height: quantity 'cm'
fact x: number
fact n: integer
fact flag: boolean
fact urea: quantity 'mmol/L' molar_mass 60.06 'g/mol'
fact bun: quantity 'mg/dL' molar_mass 28.0134 'g/mol'
fact urine_output: series of quantity 'mL/kg/h'
fact sex: one of female, male
"""


def protocol(body: str, extra: str = ""):
    return parse_protocol(f'{HEADER}{extra}\ninclusion I1 "x":\n  {body}\n', "calc.rules")


def trace(body: str, patient: dict, extra: str = "", as_of: str | None = None):
    return protocol(body, extra).evaluate(patient, as_of=as_of).criterion("I1").trace


def value(expr: str, patient: dict | None = None, extra: str = ""):
    """The value of a numeric expression, read through `expr is known` (always decided)."""
    root = trace(f"({expr}) is known", patient or {}, extra)
    return root.children[0].value, root.children[0].unit, root.children[0]


def outcome(body: str, patient: dict, extra: str = "", as_of: str | None = None) -> Outcome:
    return protocol(body, extra).evaluate(patient, as_of=as_of).criterion("I1").outcome


def codes(body: str, extra: str = "") -> list[str]:
    text = f'{HEADER}{extra}\ninclusion I1 "x":\n  {body}\n'
    # PR209 and PR313 (no range) are warnings about the header's facts, not the calculation
    return [d.code for d in check_text(text, "calc.rules") if d.code not in ("PR209", "PR313")]


# --------------------------------------------------------------------------- if and unknown


URINE = "if count(urine_output over last 6 hours) >= 6 then all(urine_output over last 6 hours) < 0.5 'mL/kg/h' else unknown"  # noqa: E501


def hourly(values: list[float]) -> list[dict]:
    return [{"value": v, "at": f"2026-03-01T{h + 1:02d}:00:00Z"} for h, v in enumerate(values)]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.3] * 5, Outcome.UNKNOWN),  # only 5 values: unknown until a sixth arrives
        ([0.3] * 6, Outcome.MET),
        ([0.3] * 5 + [0.6], Outcome.NOT_MET),
        ([0.6] * 4, Outcome.UNKNOWN),  # a high value, but too few to decide (as written)
        ([], Outcome.UNKNOWN),
    ],
)
def test_at_least_6_hourly_values_all_below_half_else_unknown(values, expected):
    as_of = "2026-03-01T06:30:00Z"
    assert outcome(URINE, {"urine_output": hourly(values)}, as_of=as_of) is expected


def test_if_is_unknown_when_its_condition_is_and_evaluates_one_branch():
    root = trace("(if flag then weight else 70 'kg') > 60 'kg'", {"weight": 80})
    branch = root.children[0]
    assert branch.kind == "if" and not branch.known
    assert branch.why == "`flag` is absent from the patient record"
    assert not branch.children[1].evaluated  # `weight` was not read (literals always are)
    root = trace("(if flag then weight else 70 'kg') > 60 'kg'", {"flag": False, "weight": 50})
    assert root.value is True
    assert [c.evaluated for c in root.children[0].children] == [True, False, True]


def test_if_branches_are_converted_to_one_unit():
    got, unit, _ = value("if flag then weight else 154.3 '[lb_av]'", {"flag": False})
    assert unit == "kg" and got == pytest.approx(69.98930, abs=1e-5)  # 154.3 x 0.45359237


def test_the_unknown_branch_says_why():
    root = trace("(if flag then unknown else x) > 1", {"flag": True, "x": 3})
    assert root.why == "the rules say `unknown` here"


def test_unknown_takes_the_type_of_its_context():
    assert codes("flag and unknown") == []
    assert codes("first_known(unknown, weight) > 1 'kg'") == []
    assert codes("unknown") == []


@pytest.mark.parametrize(
    ("body", "extra"),
    [
        ("unknown + 1 > 2", ""),
        ("d", "define d = unknown"),
        ("first_known(unknown, unknown) > 1", ""),
        ("(if flag then unknown else unknown) > 1", ""),
    ],
)
def test_unknown_without_a_type_is_refused(body, extra):
    assert "PR332" in codes(body, extra)


def test_a_comparison_with_unknown_warns():
    diagnostics = check_text(HEADER + 'inclusion I1 "x": x = unknown\n', "c.rules")
    warning = next(d for d in diagnostics if d.code == "PR335")
    assert not warning.is_error and "x is unknown" in warning.help


@pytest.mark.parametrize(
    "body",
    ["(if flag then 1 else 2 'kg') > 1", "(if flag then weight else age) > 1 'kg'"],
)
def test_if_branches_of_different_types_are_refused(body):
    assert "PR331" in codes(body)


# --------------------------------------------------------------------------- first_known


def test_urea_if_measured_else_bun_converted():
    body = "first_known(urea, bun) > 7 'mmol/L'"
    # BUN 20 mg/dL of urea nitrogen (28.0134 g per mole of urea) is 7.139 mmol/L of urea.
    root = trace(body, {"bun": 20})
    assert root.value is True and root.children[0].value == pytest.approx(7.1394, abs=1e-4)
    assert root.children[0].children[1].unit == "mmol/L"
    # a measured urea wins, whatever the BUN
    assert outcome(body, {"urea": 6.5, "bun": 40}) is Outcome.NOT_MET
    # and urea sent in mg/dL is converted with urea's own molar mass (60.06 g/mol)
    assert outcome(body, {"urea": {"value": 45, "unit": "mg/dL"}}) is Outcome.MET
    assert outcome(body, {}) is Outcome.UNKNOWN


def test_first_known_stops_at_the_first_known_operand():
    root = trace("first_known(x, n, 2) > 1", {"x": 0.5, "n": 4})
    call = root.children[0]
    assert call.kind == "first_known" and call.value == 0.5
    assert [c.evaluated for c in call.children[:2]] == [True, False]


def test_first_known_of_unknowns_is_unknown():
    root = trace("first_known(x, n) > 1", {})
    assert not root.known and root.children[0].why == "`x` is absent from the patient record"


# --------------------------------------------------------------------------- powers


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("-2 ^ 2", -4),
        ("(-2) ^ 2", 4),
        ("2 ^ 3 ^ 2", 512),  # right associative
        ("2 ^ -1", 0.5),
        ("4 ^ 0.5", 2),
        ("2 * 3 ^ 2", 18),
        ("-x ^ 2", -9),
    ],
)
def test_power_precedence_and_values(expr, expected):
    assert value(expr, {"x": 3})[0] == pytest.approx(expected)


def test_a_quantity_to_an_integer_power_powers_its_unit():
    got, unit, _ = value("height ^ 2", {"height": 180})
    assert (got, unit) == (32400, "cm2")
    got, unit, _ = value("weight / (height ^ 2)", {"weight": 81, "height": 180})
    # the quotient's unit is simplified to the metre form clinicians read (BMI in kg/m2)
    assert unit == "kg/m2" and got == pytest.approx(81 / 1.8**2)
    assert codes("weight / (height / 100 'cm' * 1 'm') ^ 2 > 25 'kg/m2'") == []


@pytest.mark.parametrize(
    "body",
    ["weight ^ x > 1 'kg'", "weight ^ 0.5 > 1 'kg'", "2 ^ weight > 1", "flag ^ 2 > 1"],
)
def test_bad_powers_are_refused(body):
    assert "PR330" in codes(body)


@pytest.mark.parametrize(
    ("expr", "patient", "why"),
    [
        ("x ^ 0.5", {"x": -4}, "-4 to the power 0.5 is not a real number"),
        ("x ^ -1", {"x": 0}, "0 to a negative power is undefined"),
        ("x ^ 400", {"x": 10.0}, "10 ^ 400 is too large (beyond 1e300)"),
    ],
)
def test_power_domain_errors_are_unknown_with_a_reason(expr, patient, why):
    _, _, node = value(expr, patient)
    assert not node.known and node.why == why


# --------------------------------------------------------------------------- math functions


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("ln(x)", 1.0986122886681),
        ("log10(x * 1000)", 3.4771212547197),
        ("exp(x)", 20.0855369231877),
        ("sqrt(x)", 1.7320508075689),
        ("abs(-x)", 3),
        ("round(x / 8, 2)", 0.38),  # 0.375 rounds half away from zero
        ("round(-x / 2)", -2),
        ("round(1234.5, -2)", 1200),
        ("max(x, 2, 5.5)", 5.5),
        ("min(x, 2, 5.5)", 2),
    ],
)
def test_math_functions(expr, expected):
    assert value(expr, {"x": 3})[0] == pytest.approx(expected, rel=1e-12)


def test_units_through_math_functions():
    assert value("abs(-weight)", {"weight": 70})[1] == "kg"
    assert value("round(weight, 1)", {"weight": 70.26})[:2] == (70.3, "kg")
    # a squared length is read in square metres, so its root is in metres
    assert value("sqrt(height * height)", {"height": 170})[:2] == (pytest.approx(1.7), "m")
    got, unit, _ = value("max(weight, 150 '[lb_av]')", {"weight": 70})
    assert unit == "kg" and got == 70
    assert value("min(age, 18 years)", {"age": 20})[:2] == (18, "a")
    assert value("ln(50 '%')", {})[0] == pytest.approx(-0.6931471805599)


def test_rounding_is_half_away_from_zero_on_the_written_digits():
    assert round_half_away(2.675, 2) == 2.68  # Python's round gives 2.67
    assert round_half_away(-0.5) == -1.0
    assert round_half_away(0.5) == 1.0
    assert round_half_away(1.005, 2) == 1.01


@pytest.mark.parametrize(
    ("expr", "patient", "why"),
    [
        ("ln(x)", {"x": 0}, "`ln` is undefined for 0 (only for numbers above 0)"),
        ("log10(x)", {"x": -2}, "`log10` is undefined for -2 (only for numbers above 0)"),
        ("sqrt(x)", {"x": -1}, "`sqrt` is undefined for the negative number -1"),
        ("exp(x)", {"x": 1000}, "`exp(1000)` is too large (beyond 1e300)"),
    ],
)
def test_domain_errors_are_unknown_never_an_exception(expr, patient, why):
    _, _, node = value(expr, patient)
    assert not node.known and node.why == why


def test_a_domain_error_keeps_the_criterion_open_and_explains_itself():
    result = protocol("ln(x) > 0").evaluate({"x": -1})
    assert result.status.value == "indeterminate"
    assert "`ln` is undefined for -1" in result.explain()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("ln(weight) > 1", "PR334"),
        ("sqrt(weight) > 1 'kg'", "PR334"),
        ("round(x, x) > 1", "PR334"),
        ("round(x, 0.5) > 1", "PR334"),
        ("max(x, weight) > 1", "PR334"),
        ("abs(flag)", "PR334"),
        ("ln(x, 2) > 1", "PR309"),
        ("ln(0) > 1", "PR337"),
        ("sqrt(-4) > 1", "PR337"),
        ("10 ^ 400 > 1", "PR337"),
    ],
)
def test_math_mistakes(body, code):
    assert code in codes(body)


def test_constants_are_computed_at_load():
    p = protocol("x > 2 ^ 3 + sqrt(16) + round(2.675, 2)")
    assert p.criteria[0].body.right.value == 14.68


# --------------------------------------------------------------------------- ratios


def test_a_ratio_of_like_quantities_is_a_plain_number():
    got, unit, _ = value("age / 1 years", {"age": 45})
    assert (got, unit) == (45, None)
    got, unit, _ = value("height / 1 'm'", {"height": 180})
    assert (got, unit) == (1.8, None)
    assert codes("age / 1 years > 18") == []


def test_too_few_values_ask_for_more_observations():
    result = protocol(URINE).evaluate(
        {"urine_output": hourly([0.3] * 5)}, as_of="2026-03-01T06:30:00Z"
    )
    assert [(m.name, m.reason) for m in result.missing_facts] == [
        ("urine_output", "more observations needed")
    ]
    assert "urine_output (more observations needed; feeds I1)" in result.explain()


def test_an_overflowing_product_is_unknown_not_infinite():
    _, _, node = value("x * x * x", {"x": 1e200})
    assert not node.known and node.why == "too large (beyond 1e300)"
    _, _, node = value("x / (x - 1e200)", {"x": 1e200})
    assert not node.known and node.why == "division by zero"


# --------------------------------------------------------------------------- laws

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

LAWS = parse_protocol(
    """protocol LAWS
fact a: number
fact b: number
fact p: boolean
inclusion POWER "x": (a ^ 2 is known) and a ^ 2 = a * a
inclusion IF "x": (if p then a else b) = first_known(if p then a else unknown, b)
inclusion MAX "x": max(a, b) >= a and max(a, b) >= b and min(a, b) <= max(a, b)
inclusion ABS "x": abs(a) >= 0 and abs(-a) = abs(a)
inclusion ROUND "x": abs(round(a, 2) - a) <= 0.005000001
""",
    "laws.rules",
)
finite = st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-1000, 1000)


@given(finite, finite, st.booleans() | st.none())
def test_calculation_laws(a, b, p):
    patient = {"a": a, "b": b} | ({} if p is None else {"p": p})
    outcomes = protocol_outcomes = LAWS.evaluate(patient).outcomes
    assert protocol_outcomes["MAX"] is Outcome.MET
    assert outcomes["ABS"] is Outcome.MET
    assert outcomes["ROUND"] is Outcome.MET
    # `if` is unknown without its condition, `first_known` falls back to b: equal when p known
    assert outcomes["IF"] is (Outcome.UNKNOWN if p is None else Outcome.MET)
    if float(a).is_integer():
        assert outcomes["POWER"] is Outcome.MET


@given(st.decimals(-10000, 10000, places=3, allow_nan=False), st.integers(0, 2))
def test_rounding_matches_decimal_half_up(x, digits):
    from decimal import ROUND_HALF_UP, Decimal

    expected = float(x.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))
    assert round_half_away(float(x), digits) == expected


@given(st.floats(-1e150, 1e150, allow_nan=False), st.floats(-5, 5, allow_nan=False))
def test_power_is_a_number_or_none_never_inf_or_nan(x, y):
    result = power(x, y)
    assert result is None or (isinstance(result, int | float) and abs(result) <= 1e300)
