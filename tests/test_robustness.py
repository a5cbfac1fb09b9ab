"""No input makes the engine crash: anything but a `RulesError` from `parse_protocol`,
`evaluate` or `format_text` is a bug, and so is a `RecursionError` on deeply nested input.

Inputs: programs drawn from the grammar (`testing.grammar_programs`), random edits of
protocols/nct04194671.rules, random JSON patients, generated protocols with their generated
patients, and pathological nesting.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol_rules import (
    PatientDataError,
    ProtocolError,
    Result,
    RulesError,
    check_text,
    load_protocol,
    parse_protocol,
)
from protocol_rules.diagnostics import CODES
from protocol_rules.format import format_text
from protocol_rules.testing import grammar_programs, patients, protocols

ROOT = Path(__file__).resolve().parents[1]
NCT_TEXT = (ROOT / "protocols" / "nct04194671.rules").read_text(encoding="utf-8")
NCT = load_protocol(ROOT / "protocols" / "nct04194671.rules")
SCHEMA = json.loads(
    (ROOT / "src" / "protocol_rules" / "schemas" / "result.schema.json").read_text("utf-8")
)
AS_OF = "2026-03-02T08:00:00Z"


def load_or_refuse(text: str) -> Any:
    """The protocol, or None when it is refused with proper diagnostics."""
    try:
        return parse_protocol(text, "fuzz.rules")
    except ProtocolError as exc:
        assert exc.errors, "refused without an error"
        assert all(d.code in CODES for d in exc.diagnostics)
        str(exc)
        return None


def evaluate_or_refuse(protocol: Any, patient: Any) -> Result | None:
    """The result, fully rendered, or None when the patient is refused with diagnostics."""
    try:
        result = protocol.evaluate(patient, as_of=AS_OF)
    except PatientDataError as exc:
        assert exc.diagnostics and all(d.code in CODES for d in exc.diagnostics)
        return None
    result.explain()
    result.to_markdown()
    jsonschema.validate(result.to_dict(), SCHEMA)
    return result


def format_or_refuse(text: str) -> str | None:
    try:
        return format_text(text, "fuzz.rules")
    except ProtocolError as exc:
        assert exc.errors
        return None


# --------------------------------------------------------------------------- programs


@given(grammar_programs())
def test_programs_from_the_grammar_load_or_are_refused(text):
    protocol = load_or_refuse(text)
    format_or_refuse(text)
    if protocol is not None:
        evaluate_or_refuse(protocol, {})


def _in_a_file(expression: str) -> str:
    facts = "fact age: quantity 'a'\nfact x: number\nfact p: boolean\nfact drugs: set of text\n"
    return f'protocol T\n{facts}inclusion I1 "x":\n  {expression}\n'


@settings(
    max_examples=100, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow]
)
@given(grammar_programs(start="expr"))
def test_expressions_from_the_grammar_load_or_are_refused(expression):
    text = _in_a_file(expression)
    protocol = load_or_refuse(text)
    format_or_refuse(text)
    if protocol is not None:
        evaluate_or_refuse(protocol, {"age": 40, "x": 1.5, "p": True, "drugs": ["a"]})
        evaluate_or_refuse(protocol, {})


_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|\w+|\S')
NCT_TOKENS = [m.span() for m in _TOKEN.finditer(NCT_TEXT)]
_INSERTS = (
    "(",
    ")",
    "{",
    "}",
    ",",
    ":",
    "=",
    "<",
    "not",
    "and",
    "or",
    "between",
    "over",
    "last",
    "fact",
    "define",
    "inclusion",
    "exclusion",
    "note",
    '"',
    "'",
    "@",
    "#",
    "-",
    "1e999",
    "0",
    "age",
    "'mg/dL'",
    "\n",
)


@st.composite
def edited_nct(draw: st.DrawFn) -> str:
    """protocols/nct04194671.rules with a few characters or tokens deleted, added or doubled."""
    text = NCT_TEXT
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["char", "token"]))
        action = draw(st.sampled_from(["delete", "insert", "duplicate"]))
        if kind == "char":
            i = draw(st.integers(0, len(text) - 1))
            start, end = i, i + 1
        else:
            start, end = draw(st.sampled_from(NCT_TOKENS))
            end = min(end, len(text))
            start = min(start, end)
        if action == "delete":
            text = text[:start] + text[end:]
        elif action == "duplicate":
            text = text[:end] + text[start:end] + text[end:]
        else:
            text = text[:start] + draw(st.sampled_from(_INSERTS)) + " " + text[start:]
    return text


@settings(max_examples=150)
@given(edited_nct())
def test_edits_of_a_valid_file_load_or_are_refused(text):
    protocol = load_or_refuse(text)
    format_or_refuse(text)
    if protocol is not None:
        evaluate_or_refuse(protocol, {"age": 40, "as_of": AS_OF})


@settings(max_examples=100)
@given(protocols(), st.data())
def test_generated_protocols_load_and_evaluate_their_patients(text, data):
    protocol = parse_protocol(text)
    assert not [d for d in protocol.warnings if d.is_error]
    for _ in range(3):
        assert evaluate_or_refuse(protocol, data.draw(patients(protocol, as_of=AS_OF))) is not None


@settings(max_examples=60)
@given(protocols())
def test_generated_protocols_draw_runtime_unit_conversions_on_purpose(text):
    """Operands the checker converts at run time (`a > 2 * b`, `u < 5 'mL/min' * 24 hours`,
    `over last time_since(d)`) once broke every renderer: every generated protocol that has a
    quantity to compare draws one."""
    from protocol_rules.check import ir
    from protocol_rules.check.types import QtyT, SeriesT, TimeT

    protocol = parse_protocol(text)
    quantities = [
        f
        for f in protocol.facts
        if (isinstance(f.type, TimeT) and not f.type.has_time)
        or (
            isinstance(f.type.element if isinstance(f.type, SeriesT) else f.type, QtyT)
            and f.unit != "%"
        )
    ]
    if quantities:
        assert any(isinstance(node, ir.Convert) for node in protocol._program.nodes)


# --------------------------------------------------------------------------- patients

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(
        [
            "2026-03-01",
            "2026-03-01T08:00:00Z",
            "2026-02-30",
            "mg/dL",
            "umol/L",
            "10*9/L",
            "mo",
            "septic",
            "",
        ]
    ),
)
json_values = st.recursive(
    _leaf,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["value", "unit", "at"]) | st.text(max_size=4), children, max_size=4
        )
    ),
    max_leaves=12,
)
FACT_NAMES = [f.name for f in NCT.facts]


@given(
    st.dictionaries(
        st.sampled_from([*FACT_NAMES, "as_of", "agee"]) | st.text(max_size=6),
        json_values,
        max_size=8,
    )
    | json_values
)
def test_random_json_patients_are_evaluated_or_refused(patient):
    evaluate_or_refuse(NCT, patient)
    for outcome in NCT.evaluate_many([patient], as_of=AS_OF):
        assert isinstance(outcome, Result | RulesError)


@given(patients(NCT), st.sampled_from(FACT_NAMES), json_values)
def test_one_bad_fact_in_a_valid_patient_is_refused_by_name(patient, fact, value):
    patient = patient | {fact: value}
    try:
        NCT.evaluate(patient)
    except PatientDataError as exc:
        assert exc.fact == fact
        assert all(d.path and d.path.startswith(f"$.{fact}") for d in exc.diagnostics)


# --------------------------------------------------------------------------- nesting


def _criterion(expression: str) -> str:
    return f'protocol T\nfact x: number\nfact b: boolean\ninclusion I1 "deep": {expression}\n'


@pytest.mark.parametrize(
    "expression",
    [
        "(" * 10_000 + "b" + ")" * 10_000,
        "not " * 5_000 + "b",
        "-" * 5_000 + "x > 1",
        "at least 1 of (" * 2_000 + "b" + ")" * 2_000,
        "max(" * 3_000 + "x" + ")" * 3_000 + " > 1",
    ],
    ids=["parentheses", "not", "minus", "at-least", "calls"],
)
def test_deep_nesting_is_refused_with_pr107(expression):
    text = _criterion(expression)
    for load in (parse_protocol, format_text):
        with pytest.raises(ProtocolError) as caught:
            load(text)
        assert [d.code for d in caught.value.diagnostics] == ["PR107"]
        assert "nested too deeply" in caught.value.diagnostics[0].message


def test_the_deepest_accepted_nesting_runs_everywhere():
    depth = next(
        n for n in range(200, 0, -1) if load_or_refuse(_criterion("not " * n + "b")) is not None
    )
    assert depth >= 100
    text = _criterion("not " * depth + "b")
    protocol = parse_protocol(text)
    evaluate_or_refuse(protocol, {"b": True})
    evaluate_or_refuse(protocol, {})
    formatted = format_text(text)
    assert format_text(formatted) == formatted


@pytest.mark.parametrize("operator", ["+", "*"])
def test_a_long_arithmetic_chain_is_refused_not_a_crash(operator):
    text = _criterion(f" {operator} ".join(["x"] * 5_000) + " > 1")
    for load in (parse_protocol, format_text):
        with pytest.raises(ProtocolError) as caught:
            load(text)
        assert [d.code for d in caught.value.diagnostics] == ["PR107"]


def _define_chain(links: int, nots: int = 0, reverse: bool = False, cycle: bool = False) -> str:
    """`define d0 = not … b`, `define d1 = not … d0`, …: nesting that adds up through defines."""
    body = [f"define d{i} = " + "not " * nots + (f"d{i - 1}" if i else "b") for i in range(links)]
    if cycle:
        body[0] = f"define d0 = d{links - 1}"
    if reverse:
        body.reverse()
    criterion = f'inclusion I1 "deep": d{links - 1}'
    return "\n".join(["protocol T", "fact b: boolean", *body, criterion]) + "\n"


@pytest.mark.parametrize(
    "text, code",
    [
        (_define_chain(5, nots=100), "PR213"),
        (_define_chain(10, nots=100), "PR213"),
        (_define_chain(1_000), "PR213"),
        (_define_chain(1_000, reverse=True), "PR213"),
        (_define_chain(3_000), "PR213"),
        (_define_chain(1_000, cycle=True), "PR204"),
        (_define_chain(1_000, cycle=True, reverse=True), "PR204"),
    ],
    ids=["5x100-not", "10x100-not", "1000-chain", "1000-reversed", "3000-chain", "cycle", "rcycle"],
)
def test_nesting_through_chains_of_defines_is_refused_not_a_crash(text, code):
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(text)
    assert [d.code for d in caught.value.diagnostics] == [code]
    assert [d.code for d in check_text(text)] == [code]
    format_text(text)  # the formatter works one item at a time: nothing to refuse


def _nested(frames: int, fn):  # type: ignore[no-untyped-def]
    """Call `fn` with `frames` frames already on the stack, as deep inside an application."""
    return fn() if frames == 0 else _nested(frames - 1, fn)


def test_the_deepest_chain_of_defines_accepted_runs_everywhere_deep_in_a_stack():
    nots = next(n for n in range(120, 0, -1) if load_or_refuse(_define_chain(2, n)) is not None)
    assert nots >= 90
    protocol = parse_protocol(_define_chain(2, nots))
    for patient in ({"b": True}, {}):
        result = _nested(400, lambda patient=patient: protocol.evaluate(patient))
        _nested(400, lambda result=result: _render_everything(result))


def _render_everything(result: Result) -> None:
    result.explain()
    result.explain(color=True)
    result.to_markdown()
    json.loads(result.to_json())
    json.dumps(result.to_dict())


def test_a_define_used_twice_is_explained_once_per_criterion():
    """Each link uses the previous define twice: a tree would have 2**40 nodes."""
    links = [f"define d{i} = d{i - 1} or not d{i - 1}" for i in range(1, 40)]
    text = "\n".join(["protocol T", "fact b: boolean", "define d0 = b", *links])
    protocol = parse_protocol(text + '\ninclusion I1 "x": d39 and d38\n')
    result = protocol.evaluate({})
    nodes = sum(1 for _ in result.criteria[0].trace.walk())
    assert nodes < 40 * 6
    reads = [n for c in result.criteria for n in c.trace.walk() if n.kind == "fact"]
    assert len(reads) == 1  # `b`, below the one expansion of `d0`
    _render_everything(result)


# --------------------------------------------------------------------------- known crashes


@pytest.mark.parametrize(
    "expression",
    ["x > " + "9" * 400, "at least " + "9" * 400 + " of (b)"],
    ids=["compare", "count"],
)
def test_a_huge_number_literal_is_refused(expression):
    with pytest.raises(ProtocolError):
        parse_protocol(_criterion(expression))


def test_a_huge_json_integer_is_refused():
    with pytest.raises(PatientDataError):
        NCT.evaluate({"non_renal_organ_failures": 10**400, "as_of": AS_OF})


@pytest.mark.parametrize(
    "patient",
    [
        {"as_of": "9999-12-31T23:59:59-05:00"},
        {"as_of": "0001-01-01T00:00:00+01:00"},
        {
            "as_of": AS_OF,
            "prednisone_equivalent_dose": [{"value": 20, "at": "9999-12-31T23:00:00-05:00"}],
        },
    ],
    ids=["as_of-after-9999", "as_of-before-1", "observation-after-9999"],
)
def test_an_instant_outside_the_calendar_is_refused(patient):
    with pytest.raises(PatientDataError):
        NCT.evaluate(patient).to_dict()


@pytest.mark.parametrize("expression", ["-agee > 1", "-nosuch(x) > 1"], ids=["name", "call"])
def test_negating_a_name_with_an_error_is_reported(expression):
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(_criterion(expression))
    assert {d.code for d in caught.value.diagnostics} & {"PR201", "PR206"}


def test_adding_incompatible_quantities_is_reported():
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(_criterion("65 'mg/dL' + 1 'a' > 1 'mg/dL'"))
    assert "PR304" in {d.code for d in caught.value.diagnostics}


def test_a_product_of_quantities_that_cancels_out_is_a_number():
    protocol = parse_protocol(_criterion("65 / 65 years * 65 months > 1"))
    assert protocol.evaluate({}).outcomes["I1"].value == "met"  # 65 months / 1 year
