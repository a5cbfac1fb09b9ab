"""Functions: defines with typed parameters, checked at every call and traced in explanations."""

from __future__ import annotations

import pytest

from protocol_rules import Outcome, check_text, parse_protocol

HEADER = """protocol FN
fact weight: quantity 'kg'
fact height: quantity 'cm'
fact age: quantity 'a'
fact creatinine: quantity 'umol/L' molar_mass 113.12 'g/mol'
fact plain_creatinine: quantity 'umol/L'
fact sex: one of female, male
fact x: number
fact bmi: quantity 'kg/m2'  "a fact may share its name with a function"

define bmi(weight: quantity 'kg', height: quantity 'm') = weight / height ^ 2
"""


def protocol(body: str, extra: str = ""):
    return parse_protocol(f'{HEADER}{extra}\ninclusion I1 "x":\n  {body}\n', "fn.rules")


def codes(body: str, extra: str = "") -> list[str]:
    text = f'{HEADER}{extra}\ninclusion I1 "x":\n  {body}\n'
    return [d.code for d in check_text(text, "fn.rules") if d.code not in ("PR209", "PR210")]


def call_of(body: str, patient: dict, extra: str = ""):
    root = protocol(body, extra).evaluate(patient).criterion("I1").trace
    return next(t for t in root.walk() if t.kind == "call")


def test_a_call_converts_its_arguments_to_the_declared_units():
    call = call_of("bmi(weight, height) > 25 'kg/m2'", {"weight": 81, "height": 180})
    assert call.unit == "kg/m2" and call.value == pytest.approx(25.0)
    assert [c.unit for c in call.children[:2]] == ["kg", "m"]
    assert call.children[1].value == 1.8  # 180 cm as the parameter's metres
    pounds = {"weight": {"value": 178.574, "unit": "[lb_av]"}, "height": 180}
    assert call_of("bmi(weight, height) > 25 'kg/m2'", pounds).value == pytest.approx(25.0, 1e-5)


def test_the_trace_shows_the_call_its_arguments_and_its_body_on_demand():
    result = protocol("bmi(weight, height) >= 25 'kg/m2'").evaluate({"weight": 90, "height": 190})
    call = next(t for t in result.criterion("I1").trace.walk() if t.kind == "call")
    *arguments, body = call.children
    assert [a.expr for a in arguments] == ["weight", "height"]
    assert body.kind == "body" and body.expr == "bmi(…) = weight / height ^ 2"
    parameters = [t for t in body.walk() if t.kind == "parameter"]
    assert {(p.expr, p.value) for p in parameters} == {("weight", 90), ("height", 1.9)}
    text = result.explain()
    assert "bmi(weight, height)  → 24.9307 kg/m2" in text
    assert "weight / height ^ 2" not in text  # the body is in the data, not the summary
    data = result.to_dict()["criteria"][0]["trace"]
    assert "body" in str(data)


def test_functions_call_functions_with_their_own_parameters():
    extra = """
define square(v: number) = v ^ 2
define twice_square_of_next(v: number) = 2 * square(v + 1)
"""
    call = call_of("twice_square_of_next(x) = 18", {"x": 2}, extra)
    assert call.value == 18


def test_each_call_has_its_own_values():
    extra = "define half(v: number) = v / 2\n"
    root = protocol("half(x) < half(10)", extra).evaluate({"x": 4}).criterion("I1").trace
    calls = [t for t in root.walk() if t.kind == "call"]
    assert [c.value for c in calls] == [2, 5]


def test_an_unknown_argument_flows_into_the_body():
    extra = "define or_zero(v: number) = if v is known then v else 0\n"
    assert protocol("or_zero(x) = 0", extra).evaluate({}).criterion("I1").outcome is Outcome.MET
    result = protocol("bmi(weight, height) > 25 'kg/m2'").evaluate({"weight": 80})
    assert result.status.value == "indeterminate"
    assert [m.name for m in result.missing_facts] == ["height"]


def test_declared_return_type_converts_the_body():
    extra = "define in_grams(v: quantity 'kg'): quantity 'g' = v\n"
    call = call_of("in_grams(weight) > 1000 'g'", {"weight": 2}, extra)
    assert (call.value, call.unit) == (2000, "g")


def test_a_function_body_may_use_constant_defines():
    extra = "define k = 2\ndefine times_k(v: number) = v * k\n"
    assert call_of("times_k(x) = 6", {"x": 3}, extra).value == 6


def test_a_function_is_used_inside_defines_and_evaluated_once_per_patient():
    extra = "define my_bmi = bmi(weight, height)\n"
    p = protocol("my_bmi > 25 'kg/m2' or my_bmi < 18.5 'kg/m2'", extra)
    assert p.evaluate({"weight": 50, "height": 180}).criterion("I1").outcome is Outcome.MET


@pytest.mark.parametrize(
    ("body", "extra", "code"),
    [
        ("bmi(weight) > 1 'kg/m2'", "", "PR309"),
        ("bmi(weight, height, x) > 1 'kg/m2'", "", "PR309"),
        ("bmi(age, height) > 1 'kg/m2'", "", "PR333"),
        ("bmi(70, height) > 1 'kg/m2'", "", "PR333"),
        ("f(sex)", "define f(a: boolean) = a", "PR333"),
        ("f(x)", "define f(a: integer) = a > 1", "PR333"),
        ("f(plain_creatinine) > 1", "define f(c: quantity 'mg/dL') = c / 1 'mg/dL'", "PR305"),
        ("f(1) > 1", "define f(a: number) = f(a) + 1", "PR230"),
        ("f(1) > 1", "define f(a: number) = g(a)\ndefine g(b: number) = f(b) * 2", "PR230"),
        ("f(1) > 1", "define f(a: number) = a + age / 1 'a'", "PR236"),
        (
            "f(1) > 1",
            "define old = age > 65 years\ndefine f(a: number) = if old then a else 0",
            "PR236",
        ),
        ("f > 1", "define f(a: number) = a", "PR237"),
        ("g(1) > 1", "define g = 1", "PR237"),
        ("f(1, 2) > 1", "define f(a: number, a: number) = a", "PR238"),
        ("f(1) > 1 'kg'", "define f(a: number): quantity 'kg' = a", "PR336"),
        ("max(1) > 1", "define max(a: number) = a", "PR232"),
        ("f(1) > 1", "define f(a: number) = a\ndefine f(b: number) = b", "PR203"),
        ("undefined_function(1) > 1", "", "PR206"),
    ],
)
def test_call_and_definition_mistakes(body, extra, code):
    assert code in codes(body, extra)


def test_a_wrong_unit_names_the_parameter_and_the_function():
    text = f"{HEADER}\ninclusion I1 \"x\": bmi(age, height) > 1 'kg/m2'\n"
    (d,) = [d for d in check_text(text, "fn.rules") if d.is_error]
    assert d.message == "argument `weight` of `bmi` must be a quantity in `kg`, but `age` is in `a`"
    assert d.span.text == "age"


def test_unknown_function_suggests_a_user_function():
    text = f"{HEADER}\ninclusion I1 \"x\": bmj(weight, height) > 1 'kg/m2'\n"
    (d,) = [d for d in check_text(text, "fn.rules") if d.is_error]
    assert d.code == "PR206" and d.help == "did you mean `bmi`?"


def test_an_unused_function_is_a_warning():
    text = HEADER + "define unused(a: number) = a\ninclusion I1 \"x\": bmi > 25 'kg/m2'\n"
    warnings = [d for d in check_text(text, "fn.rules") if d.code == "PR210"]
    assert [w.message for w in warnings] == [
        "function `bmi` is never called",
        "function `unused` is never called",
    ]


def test_functions_and_facts_have_separate_names():
    # `bmi` is a fact and `bmi(…)` a function: each is read where it is written
    p = protocol("bmi > 30 'kg/m2' or bmi(weight, height) > 30 'kg/m2'")
    assert p.evaluate({"bmi": 31}).criterion("I1").outcome is Outcome.MET
    assert p.evaluate({"bmi": 20, "weight": 100, "height": 170}).criterion("I1").outcome is (
        Outcome.MET
    )


def test_the_checked_protocol_lists_its_functions():
    p = protocol("bmi(weight, height) > 25 'kg/m2'")
    (f,) = p.checked.functions
    assert f.name == f.key == "bmi" and [n for n, _ in f.params] == ["weight", "height"]
    assert str(f.type) == "quantity in `kg/m2`"
