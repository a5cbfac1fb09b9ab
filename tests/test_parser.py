"""Parser: every construct of the language becomes the right AST node, with exact spans."""

from __future__ import annotations

import pytest

from protocol_rules import ast
from protocol_rules.parser import parse
from protocol_rules.source import Source

from .conftest import PROTOCOL_FILE

HEADER = 'protocol T\n  title "t"\n'


def parse_ok(text: str) -> ast.ProtocolFile:
    tree, diagnostics = parse(Source("t.rules", text))
    assert diagnostics == [], [str(d) for d in diagnostics]
    assert tree is not None
    return tree


def expr(text: str) -> ast.Expr:
    tree = parse_ok(f'{HEADER}inclusion I1 "x": {text}')
    (criterion,) = tree.items
    assert isinstance(criterion, ast.Criterion)
    return criterion.expr


def test_header_with_metadata_and_string_id():
    tree = parse_ok('protocol "MSC-001"\n  title "A trial"\n  sponsor "Someone"\n')
    assert tree.header == ast.Header(
        "MSC-001", (ast.Meta("title", "A trial"), ast.Meta("sponsor", "Someone"))
    )


@pytest.mark.parametrize(
    ("decl", "expected"),
    [
        ("boolean", ast.BooleanType()),
        ("integer", ast.IntegerType()),
        ("number", ast.NumberType()),
        ("quantity 'mg/dL'", ast.QuantityType("mg/dL")),
        ("date", ast.DateType()),
        ("datetime", ast.DateTimeType()),
        ("text", ast.TextType()),
        ("one of a, b, c", ast.ChoiceType(("a", "b", "c"))),
        ("series of quantity 'mg/dL'", ast.SeriesType(ast.QuantityType("mg/dL"))),
        ("series of one of mi, stroke", ast.SeriesType(ast.ChoiceType(("mi", "stroke")))),
        ("set of one of insulin, metformin", ast.SetType(ast.ChoiceType(("insulin", "metformin")))),
        ("set of text", ast.SetType(ast.TextType())),
    ],
)
def test_fact_types(decl, expected):
    (fact,) = parse_ok(f"{HEADER}fact x: {decl}").items
    assert fact == ast.Fact("x", expected, None, None, None)


def test_fact_options_and_description():
    text = (
        f"{HEADER}fact cr: quantity 'mg/dL' range 0 to 30 molar_mass 113.12 'g/mol' "
        '"Serum creatinine"\nfact t: number range -10 to 10.5'
    )
    cr, t = parse_ok(text).items
    assert cr.range == ast.Range(0, 30)
    assert cr.molar_mass == ast.MolarMass(113.12, "g/mol")
    assert cr.description == "Serum creatinine"
    assert t.range == ast.Range(-10, 10.5)


def test_define_and_criterion_with_note():
    text = f'{HEADER}define adult = age >= 18 years\nexclusion E1 "Minor" note "strict": not adult'
    define, criterion = parse_ok(text).items
    assert define == ast.Define(
        "adult",
        ast.Comparison(ast.CompareOp.GE, ast.Name("age"), ast.DurationLit(18, "years")),
    )
    assert criterion.kind is ast.CriterionKind.EXCLUSION
    assert (criterion.id, criterion.text, criterion.note) == ("E1", "Minor", "strict")
    assert criterion.expr == ast.Not(ast.Name("adult"))


def test_precedence_or_and_not_comparison_arithmetic():
    got = expr("not a or b and c < 1 + 2 * 3")
    one, two, three = ast.NumberLit(1, True), ast.NumberLit(2, True), ast.NumberLit(3, True)
    arithmetic = ast.Arithmetic(ast.ArithOp.ADD, one, ast.Arithmetic(ast.ArithOp.MUL, two, three))
    assert got == ast.Logic(
        ast.LogicOp.OR,
        (
            ast.Not(ast.Name("a")),
            ast.Logic(
                ast.LogicOp.AND,
                (ast.Name("b"), ast.Comparison(ast.CompareOp.LT, ast.Name("c"), arithmetic)),
            ),
        ),
    )


def test_arithmetic_is_left_associative_and_unary_minus_binds_tightest():
    got = expr("x = 10 - 2 - -3")
    inner = ast.Arithmetic(ast.ArithOp.SUB, ast.NumberLit(10, True), ast.NumberLit(2, True))
    assert got.right == ast.Arithmetic(ast.ArithOp.SUB, inner, ast.Negate(ast.NumberLit(3, True)))


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "=", "!="])
def test_every_comparison_operator(op):
    assert expr(f"x {op} 1").op is ast.CompareOp(op)


def test_literals():
    assert expr("x = 25_000").right == ast.NumberLit(25000, True)
    assert expr("x = 0.5").right == ast.NumberLit(0.5, False)
    assert expr("x = 60 'mL/min/{1.73_m2}'").right == ast.QuantityLit(60, "mL/min/{1.73_m2}")
    assert expr("x = 3 months").right == ast.DurationLit(3, "months")
    assert expr("x = @2026-03-01").right == ast.DateLit("2026-03-01", False)
    assert expr("x = @2026-03-01T08:00").right == ast.DateLit("2026-03-01T08:00", True)
    assert expr('x = "a \\"b\\""').right == ast.TextLit('a "b"')
    assert expr("x = true").right == ast.BoolLit(True)


def test_between_in_not_in_is_known():
    assert expr("age between 18 years and 65 years") == ast.Between(
        ast.Name("age"), ast.DurationLit(18, "years"), ast.DurationLit(65, "years")
    )
    assert expr("c in {a, b}") == ast.InSet(ast.Name("c"), (ast.Name("a"), ast.Name("b")), False)
    assert expr("c not in {a}") == ast.InSet(ast.Name("c"), (ast.Name("a"),), True)
    assert expr("c is known") == ast.IsKnown(ast.Name("c"), False)
    assert expr("c is unknown") == ast.IsKnown(ast.Name("c"), True)


def test_contains_forms():
    mode = ast.ContainsMode
    assert expr("d contains x") == ast.Contains(ast.Name("d"), mode.ONE, (ast.Name("x"),))
    assert expr("d contains any of {x, y}").mode is mode.ANY
    assert expr("d contains all of {x, y}").items == (ast.Name("x"), ast.Name("y"))


def test_window_aggregate_and_time_since():
    got = expr("max(cr over last 48 hours) > 2 * base and time_since(d) <= 4 months")
    comparison, since = got.operands
    window = ast.Window(ast.Name("cr"), ast.DurationLit(48, "hours"))
    assert comparison.left == ast.Call("max", (window,))
    assert since.left == ast.Call("time_since", (ast.Name("d"),))


def test_quantified_comparisons():
    got = expr("any(dose over last 30 days) > 15 'mg/d'")
    assert isinstance(got, ast.Quantified) and got.quantifier is ast.Quantifier.ANY
    assert got.condition == ast.Comparison(
        ast.CompareOp.GT, ast.Each(), ast.QuantityLit(15, "mg/d")
    )
    assert expr("all(u over last 12 hours) < 0.5 'mL/kg/h'").quantifier is ast.Quantifier.ALL
    assert isinstance(expr("any(ev over last 3 months) in {mi, stroke}").condition, ast.InSet)
    assert isinstance(expr("all(x over last 1 day) between 1 and 2").condition, ast.Between)


def test_at_least_and_at_most():
    got = expr("at least 2 of (a, b, c)")
    assert got == ast.Count(ast.CountOp.AT_LEAST, 2, (ast.Name("a"), ast.Name("b"), ast.Name("c")))
    assert expr("at most 1 of (a, b)").op is ast.CountOp.AT_MOST


def test_comments_and_free_layout():
    text = f'# leading\n{HEADER}# about x\nfact x: boolean # trailing\ninclusion I1 "x":\n  x'
    assert len(parse_ok(text).items) == 2


def _expression_nodes(node):
    yield node
    for child in ast.children(node):
        yield from _expression_nodes(child)


def _has_each(node) -> bool:
    return any(isinstance(n, ast.Each) for n in _expression_nodes(node))


def test_spans_slice_the_source_back_to_each_node():
    """Re-parsing the text under any node's span gives that node again (spans are exact)."""
    tree = parse_ok(PROTOCOL_FILE.read_text(encoding="utf-8"))
    checked = 0
    for item in tree.items:
        if isinstance(item, ast.Fact):
            assert item.span.text.startswith(f"fact {item.name}")
            assert item.name_span.text == item.name
            continue
        for node in _expression_nodes(item.expr):
            if _has_each(node) and not isinstance(node, ast.Quantified):
                continue
            text = node.span.text
            if isinstance(node, ast.Window):
                text = f"max({text})"
                assert expr(text).args[0] == node
            else:
                assert expr(text) == node, text
            checked += 1
    assert checked > 60


def test_span_lines_and_columns():
    tree = parse_ok(f'{HEADER}inclusion I1 "x":\n  age > 3')
    comparison = tree.items[0].expr
    assert (comparison.span.line, comparison.span.column) == (4, 3)
    assert (comparison.span.end_line, comparison.span.end_column) == (4, 10)
