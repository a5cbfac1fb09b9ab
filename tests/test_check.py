"""Static checks: the mistakes protocol authors make, each with its code, place and advice."""

from __future__ import annotations

import pytest

import protocol_rules
from protocol_rules import ProtocolError, check_text, parse_protocol
from protocol_rules.render.diagnostics import render_diagnostic

HEADER = 'protocol T\n  title "t"\n'
FACTS = """fact age: quantity 'a' range 0 to 130
fact lvef: quantity '%' range 0 to 100
fact pregnant: boolean
fact cr: series of quantity 'mg/dL' molar_mass 113.12 'g/mol'
fact bili: quantity 'mg/dL'
fact cause: one of septic, prerenal, other
fact last_change: date
"""
PRELUDE = HEADER + FACTS  # facts on lines 3-9; the criterion under test is on line 10


def errors(text: str) -> list:
    return [d for d in check_text(text, "t.rules") if d.is_error]


def only_error(text: str):
    found = errors(text)
    assert len(found) == 1, [str(d) for d in found]
    return found[0]


# (name, criterion line, code, column, words the message or help must contain)
MISTAKES = [
    ("missing colon", 'inclusion I1 "Age"\n  age > 18 years', "PR101", 3, "`:`", 11),
    ("unclosed string", 'inclusion I1 "Age: age > 3', "PR104", 14, "closing", 10),
    ("unknown fact", 'inclusion I1 "x": agee > 18 years', "PR201", 19, "did you mean `age`", 10),
    ("misspelt unit", "inclusion I1 \"x\": lvef < 40 'pct'", "PR303", 29, "UCUM", 10),
    (
        "eGFR unit as written",
        "inclusion I1 \"x\": bili < 2 'mL/min/1.73m2'",
        "PR303",
        28,
        "{1.73_m2}",
        10,
    ),
    ("double equals", 'inclusion I1 "x": age == 3 years', "PR105", 23, "write `=`", 10),
    ("reversed <=", 'inclusion I1 "x": age =< 3 years', "PR105", 23, "write `<=`", 10),
    ("dimension mismatch", "inclusion I1 \"x\": lvef < 40 '/uL'", "PR304", 26, "incompatible", 10),
    ("boolean vs number", 'inclusion I1 "x": pregnant > 3', "PR301", 19, "boolean", 10),
    ("number without unit", 'inclusion I1 "x": lvef < 40', "PR301", 26, "40 '%'", 10),
    (
        "between without and",
        'inclusion I1 "x": age between 18 years 65 years',
        "PR101",
        40,
        "`and`",
        10,
    ),
    (
        "unknown choice",
        'inclusion I1 "x": cause = sepsis',
        "PR207",
        27,
        "did you mean `septic`",
        10,
    ),
    ("series without window", "inclusion I1 \"x\": cr > 2 'mg/dL'", "PR306", 19, "over last", 10),
    (
        "aggregate of whole series",
        "inclusion I1 \"x\": max(cr) > 2 'mg/dL'",
        "PR306",
        23,
        "over last",
        10,
    ),
    (
        "window outside aggregate",
        'inclusion I1 "x": cr over last 2 days',
        "PR307",
        19,
        "aggregate",
        10,
    ),
    (
        "substance without molar mass",
        "inclusion I1 \"x\": bili > 34 'umol/L'",
        "PR305",
        26,
        "molar_mass",
        10,
    ),
    (
        "unknown function",
        "inclusion I1 \"x\": maximum(cr over last 1 day) > 1 'mg/dL'",
        "PR206",
        19,
        "did you mean `max`",
        10,
    ),
    ("condition is not boolean", 'inclusion I1 "x": age', "PR302", 19, "condition", 10),
    (
        "time_since of a number",
        'inclusion I1 "x": time_since(age) > 3 days',
        "PR301",
        30,
        "date",
        10,
    ),
    (
        "duration compared with a date",
        'inclusion I1 "x": last_change > 3 days',
        "PR301",
        19,
        "date",
        10,
    ),
    ("invalid date", 'inclusion I1 "x": last_change > @2026-02-30', "PR108", 33, "calendar", 10),
    ("reserved word as a name", "fact unknown: boolean", "PR106", 6, "reserved", 10),
    ("ordering of choices", 'inclusion I1 "x": cause < septic', "PR301", 19, "`=`", 10),
    (
        "at least more than listed",
        'inclusion I1 "x": at least 3 of (pregnant, pregnant)',
        "PR301",
        19,
        "only 2",
        10,
    ),
]


@pytest.mark.parametrize(
    ("text", "code", "column", "words", "line"),
    [m[1:] for m in MISTAKES],
    ids=[m[0] for m in MISTAKES],
)
def test_each_mistake_is_reported_at_its_place_with_advice(text, code, column, words, line):
    d = only_error(PRELUDE + text)
    assert d.code == code
    assert (d.span.line, d.span.column) == (line, column), str(d)
    assert words in f"{d.message} {d.help} {d.label}"


def test_define_cycle():
    text = PRELUDE + 'define a = b and pregnant\ndefine b = not a\ninclusion I1 "x": a'
    d = only_error(text)
    assert d.code == "PR204" and "`a` -> `b` -> `a`" in d.message


def test_duplicates():
    text = PRELUDE + ('fact age: boolean\ninclusion I1 "x": pregnant\ninclusion I1 "y": pregnant')
    assert sorted(d.code for d in errors(text)) == ["PR202", "PR203"]


def test_malformed_range_and_options_that_do_not_apply():
    text = HEADER + "fact a: number range 10 to 1\nfact b: boolean molar_mass 1 'g/mol'\n"
    text += 'inclusion I1 "x": a > 1 and b'
    assert sorted(d.code for d in errors(text)) == ["PR308", "PR310"]


def test_missing_header():
    d = only_error('fact x: boolean\ninclusion I1 "x": x')
    assert d.code == "PR109" and d.span.line == 1


def test_all_static_errors_are_reported_at_once():
    text = PRELUDE + (
        'inclusion I1 "a": agee > 1 years\n'
        "inclusion I2 \"b\": lvef < 40 '/uL'\n"
        'inclusion I3 "c": cause = sepsis\n'
    )
    assert [d.code for d in errors(text)] == ["PR201", "PR304", "PR207"]
    assert [d.span.line for d in errors(text)] == [10, 11, 12]


def test_syntax_errors_resynchronise_at_the_next_item():
    text = PRELUDE + (
        'inclusion I1 "a" age > 1 years\n'
        'inclusion I2 "b": age > 1 years\n'
        'inclusion I3 "c": age == 2 years\n'
    )
    assert [(d.code, d.span.line) for d in errors(text)] == [("PR101", 10), ("PR105", 12)]


def test_unused_facts_and_defines_are_warnings_not_errors():
    text = HEADER + 'fact a: boolean\nfact b: boolean\ndefine c = a\ninclusion I1 "x": a'
    diagnostics = check_text(text)
    assert [(d.code, d.severity.value) for d in diagnostics] == [
        ("PR209", "warning"),
        ("PR210", "warning"),
    ]
    protocol = parse_protocol(text)  # loads despite warnings
    assert [d.code for d in protocol.warnings] == ["PR209", "PR210"]


def test_loading_a_bad_file_raises_protocol_error_with_diagnostics():
    with pytest.raises(ProtocolError) as info:
        parse_protocol(PRELUDE + 'inclusion I1 "x": agee > 1 years', "demo.rules")
    assert isinstance(info.value, protocol_rules.RulesError)
    assert [d.code for d in info.value.diagnostics if d.is_error] == ["PR201"]
    assert "demo.rules:10:19" in str(info.value)


def test_literals_are_converted_to_the_unit_they_are_compared_in():
    text = HEADER + "fact p: quantity '/uL'\ninclusion I1 \"x\": p < 25 '10*9/L'"
    protocol = parse_protocol(text)
    comparison = protocol.criteria[0].body
    assert comparison.right.value == 25000  # folded at load time, exactly
    assert protocol.evaluate({"p": 25000}).outcomes["I1"].value == "not_met"


def test_molar_mass_converts_substance_literals():
    text = HEADER + "fact cr: quantity 'mg/dL' molar_mass 113.12 'g/mol'\n"
    text += "inclusion I1 \"x\": cr > 200 'umol/L'"
    comparison = parse_protocol(text).criteria[0].body
    assert comparison.right.value == pytest.approx(2.2624)


def test_rendered_diagnostic_matches_the_house_style():
    text = (
        HEADER
        + "fact age: quantity 'a'\n\n\n\ninclusion I1 \"x\":\n  agee between 18 years and 65 years"
    )
    (d,) = errors(text)
    assert render_diagnostic(d) == (
        "error[PR201]: unknown name `agee`\n"
        " --> t.rules:8:3\n"
        "  |\n"
        "8 |   agee between 18 years and 65 years\n"
        "  |   ^^^^ not a fact, define or choice this protocol declares\n"
        "  |\n"
        "  = help: did you mean `age`?"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment",
        "\x00\x01\x02",
        "protocol",
        "protocol T fact",
        "}{)(",
        "'",
        '"',
        "protocol T\ninclusion",
        "protocol T\nfact x: quantity ''\ninclusion I1 \"x\": x > 1 ''",
    ],
)
def test_garbage_gives_diagnostics_not_exceptions(text):
    diagnostics = check_text(text)
    assert all(d.code.startswith("PR") for d in diagnostics)


def test_deep_nesting_is_refused_clearly():
    text = PRELUDE + 'inclusion I1 "x": ' + "(" * 5000 + "pregnant" + ")" * 5000
    (d,) = errors(text)
    assert d.code == "PR107"
    text = PRELUDE + 'inclusion I1 "x": ' + "not " * 3000 + "pregnant"
    assert [d.code for d in errors(text)] == ["PR107"]


def test_the_nct04194671_protocol_is_clean(nct):
    from .conftest import PROTOCOL_FILE

    assert check_text(PROTOCOL_FILE.read_text(encoding="utf-8")) == []
    assert len([c for c in nct.criteria if c.kind.value == "inclusion"]) == 4
    assert [c.id for c in nct.criteria][-1] == "E20"


@pytest.mark.parametrize(
    "expr",
    ["x > 1e300 * 1e300", "x > 1e200 / 1e-200", "q > 1e300 'Mg'", "q > 2 * 1e300 'Mg'"],
)
def test_a_constant_that_overflows_is_refused(expr):
    text = f"protocol T\nfact x: number\nfact q: quantity 'ug'\ninclusion I1 \"x\": {expr}\n"
    d = only_error(text)
    assert d.code == "PR314"
    assert "overflows" in d.message


def test_a_quantity_fact_without_a_range_is_a_warning():
    text = (
        "protocol T\nfact platelets: quantity '/uL'\nfact doses: series of quantity 'mg/d'\n"
        "fact age: quantity 'a' range 0 to 130\nfact score: number\n"
        "inclusion I1 \"x\": platelets > 1 '/uL' and exists(doses over last 2 days)"
        " and age > 1 'a' and score > 1\n"
    )
    found = [d for d in check_text(text, "t.rules") if d.code == "PR313"]
    assert [(d.severity.value, d.span.line, d.span.text) for d in found] == [
        ("warning", 2, "platelets"),
        ("warning", 3, "doses"),
    ]
    assert "range 0 to" in found[0].help
    pr_protocol = pytest.importorskip("protocol_rules").parse_protocol(text)
    assert {d.code for d in pr_protocol.warnings} == {"PR313"}


def test_every_quantity_of_the_shipped_protocol_has_a_range(nct):
    from protocol_rules.check.types import QtyT, SeriesT

    for fact in nct.facts:
        element = fact.type.element if isinstance(fact.type, SeriesT) else fact.type
        if isinstance(element, QtyT):
            assert fact.low is not None and fact.low <= 0 < fact.high, fact.name
