"""Stage 2 of the pipeline: rules text -> `ast.ProtocolFile`, and Lark errors -> diagnostics.

Nothing after this module sees a Lark tree or a Lark exception. Syntax errors are reported in
words an author understands; after an error the parser resynchronises at the next item
(`fact`, `define`, `inclusion`, `exclusion`) so that every real mistake of a file is reported
at once, not a cascade.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

import attrs
import lark
from lark import Token, Transformer, Tree, v_args

from . import ast
from ._grammar import parser as _lark_parser
from .diagnostics import Diagnostic, error, sort_key
from .source import Source, Span

#: Deepest nesting of the syntax tree accepted; deeper input is refused with PR107.
MAX_DEPTH = 120
#: Syntax errors reported for one file before giving up.
MAX_SYNTAX_ERRORS = 20

_ITEM_START = re.compile(
    r"^[ \t]*(protocol|fact|define|inclusion|exclusion|use|codes)\b", re.MULTILINE
)


def parse(source: Source) -> tuple[ast.ProtocolFile | None, list[Diagnostic]]:
    """Parse a source into a syntax tree, and the syntax errors found in it.

    Most syntax errors leave no tree (None). A few mistakes are recovered from — a misspelt
    duration word (`18 yeers`) — so that the checker still runs and reports the file's other
    errors: then the tree is returned *with* error diagnostics, and a caller must not use it
    for anything but checking (`has_errors`).
    """
    text = source.text
    fatal: list[Diagnostic] = []
    recovered: list[Diagnostic] = []
    tree: Tree | None = None
    while len(fatal) + len(recovered) < MAX_SYNTAX_ERRORS:
        try:
            tree = _lark_parser().parse(text)
            break
        except lark.UnexpectedInput as exc:
            from .syntax_errors import describe, misspelt_duration

            fixed = misspelt_duration(exc, Source(source.name, text))
            if fixed is not None:
                recovered.append(fixed[0])
                text = fixed[1]
                continue
            fatal.append(describe(exc, Source(source.name, text)))
            blanked = _skip_item(text, _error_offset(exc, text))
            if blanked == text:
                break
            text = blanked
    diagnostics = [_on(source, d) for d in fatal + recovered]
    if fatal or tree is None:
        return None, sorted(diagnostics, key=sort_key)
    deep = _too_deep(tree, source)
    if deep:
        return None, [deep]
    builder = _Builder(source)
    result = builder.transform(tree)
    if builder.diagnostics:
        return None, sorted(diagnostics + builder.diagnostics, key=sort_key)
    return result, diagnostics


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)


def _on(source: Source, d: Diagnostic) -> Diagnostic:
    """`d` with its span on `source` (errors are found on a patched copy of the text)."""
    if d.span is None or d.span.source is source:
        return d
    return attrs.evolve(d, span=source.span(d.span.start, d.span.end))


# --------------------------------------------------------------------------- recovery


def _error_offset(exc: lark.UnexpectedInput, text: str) -> int:
    if isinstance(exc, lark.UnexpectedToken) and exc.token.type == "$END":
        return len(text)
    pos = getattr(exc, "pos_in_stream", None)
    if isinstance(exc, lark.UnexpectedToken):
        pos = exc.token.start_pos
    return pos if pos is not None else len(text)


def _skip_item(text: str, offset: int) -> str:
    """Blank out the item holding `offset` (keeping newlines, so positions stay)."""
    starts = [m.start(1) for m in _ITEM_START.finditer(text)]
    begin = max((s for s in starts if s < offset), default=0)
    end = min((s for s in starts if s >= offset and s > begin), default=len(text))
    if end <= begin:
        return text
    hole = re.sub(r"[^\n]", " ", text[begin:end])
    return text[:begin] + hole + text[end:]


def _too_deep(tree: Tree, source: Source) -> Diagnostic | None:
    """Refuse pathologically nested input here, before anything recurses over it."""
    stack: list[tuple[Tree, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            meta = node.meta
            span = source.span(meta.start_pos, meta.end_pos) if not meta.empty else None
            return error(
                "PR107",
                f"expression nested too deeply (more than {MAX_DEPTH} levels)",
                span,
                help="split the expression into `define`s",
            )
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return None


# --------------------------------------------------------------------------- tree building


def _number(token: Token) -> float:
    return float(str(token).replace("_", ""))


def _is_integer_literal(token: Token) -> bool:
    return not any(c in str(token) for c in ".eE")


def _unquote(token: Token) -> str:
    body = str(token)[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


@v_args(meta=True)
class _Builder(Transformer):
    """Lark tree -> AST. Callbacks only build nodes; malformed literals become diagnostics."""

    def __init__(self, source: Source) -> None:
        super().__init__()
        self.source = source
        self.diagnostics: list[Diagnostic] = []
        self._outer: dict[int, Span] = {}  # id of a parenthesised node -> span with parentheses

    def _span(self, meta: object) -> Span:
        return self.source.span(meta.start_pos, meta.end_pos)  # type: ignore[attr-defined]

    def _num(self, token: Token) -> float:
        value = _number(token)
        if not math.isfinite(value) or abs(value) > 1e300:
            self.diagnostics.append(
                error(
                    "PR108",
                    f"`{token}` is too large a number",
                    self._tok(token),
                    help="write a number below 1e300",
                )
            )
            return 0.0
        return value

    def _tok(self, token: Token) -> Span:
        return self.source.span(token.start_pos, token.end_pos)

    # ---- file structure

    def start(self, meta, children):
        header = children[0] if children and isinstance(children[0], ast.Header) else None
        items = tuple(children[1:] if header else children)
        return ast.ProtocolFile(header, items, span=self.source.whole)

    def header(self, meta, children):
        ident, *metas = children
        return ast.Header(ident, tuple(metas), span=self._span(meta))

    def protocol_id(self, meta, children):
        (token,) = children
        return _unquote(token) if token.type == "STRING" else str(token)

    def meta(self, meta, children):
        key, value = children
        return ast.Meta(str(key), _unquote(value), span=self._span(meta))

    def fact(self, meta, children):
        name, type_, *rest = children
        description = None
        if rest and isinstance(rest[-1], Token):
            description = _unquote(rest.pop())
        range_ = next((r for r in rest if isinstance(r, ast.Range)), None)
        molar = next((r for r in rest if isinstance(r, ast.MolarMass)), None)
        past = next((r for r in rest if isinstance(r, ast.Past)), None)
        return ast.Fact(
            str(name),
            type_,
            range_,
            molar,
            description,
            past,
            span=self._span(meta),
            name_span=self._tok(name),
        )

    def range_option(self, meta, children):
        (low, _), (high, _) = children
        return ast.Range(low, high, span=self._span(meta))

    def molar_mass_option(self, meta, children):
        value, unit = children
        return ast.MolarMass(
            self._num(value), _unquote(unit), span=self._span(meta), unit_span=self._tok(unit)
        )

    def signed_number(self, meta, children):
        value = self._num(children[-1])
        return (-value if len(children) == 2 else value), self._span(meta)

    def boolean_type(self, meta, children):
        return ast.BooleanType(span=self._span(meta))

    def integer_type(self, meta, children):
        return ast.IntegerType(span=self._span(meta))

    def number_type(self, meta, children):
        return ast.NumberType(span=self._span(meta))

    def quantity_type(self, meta, children):
        (unit,) = children
        return ast.QuantityType(_unquote(unit), span=self._span(meta), unit_span=self._tok(unit))

    def date_type(self, meta, children):
        return ast.DateType(bool(children), span=self._span(meta))

    def datetime_type(self, meta, children):
        return ast.DateTimeType(bool(children), span=self._span(meta))

    def or_never(self, meta, children):
        return True

    def past_option(self, meta, children):
        return ast.Past(span=self._span(meta))

    def text_type(self, meta, children):
        return ast.TextType(span=self._span(meta))

    def choice_type(self, meta, children):
        return ast.ChoiceType(
            tuple(str(c) for c in children),
            span=self._span(meta),
            choice_spans=tuple(self._tok(c) for c in children),
        )

    def series_type(self, meta, children):
        return ast.SeriesType(children[0], span=self._span(meta))

    def set_type(self, meta, children):
        return ast.SetType(children[0], span=self._span(meta))

    def define(self, meta, children):
        name, params, declared, note, _eq, expr = children
        return ast.Define(
            str(name),
            expr,
            params,
            declared,
            note,
            span=self._span(meta),
            name_span=self._tok(name),
        )

    # ---- functions and libraries (docs/language/functions.md, libraries.md)

    def parameters(self, meta, children):
        return tuple(children)

    def parameter(self, meta, children):
        name, type_ = children
        return ast.Parameter(str(name), type_, span=self._span(meta), name_span=self._tok(name))

    def declared_type(self, meta, children):
        return children[0]

    def use(self, meta, children):
        (token,) = children
        is_file = token.type == "STRING"
        name = _unquote(token) if is_file else str(token)
        return ast.Use(name, is_file, span=self._span(meta))

    def criterion(self, meta, children):
        kind, ident, text, *rest = children
        note = rest[0] if len(rest) == 2 else None
        return ast.Criterion(
            ast.CriterionKind(str(kind)),
            str(ident),
            _unquote(text),
            note,
            rest[-1],
            span=self._span(meta),
            id_span=self._tok(ident),
        )

    def note(self, meta, children):
        return _unquote(children[0])

    # ---- logic and comparisons

    def or_expr(self, meta, children):
        return ast.Logic(ast.LogicOp.OR, tuple(children), span=self._span(meta))

    def and_expr(self, meta, children):
        return ast.Logic(ast.LogicOp.AND, tuple(children), span=self._span(meta))

    def not_(self, meta, children):
        return ast.Not(children[1], span=self._span(meta))

    def compare_op(self, meta, children):
        return ast.CompareOp(str(children[0]))

    def compare(self, meta, children):
        left, op, right = children
        return ast.Comparison(op, left, right, span=self._span(meta))

    def between(self, meta, children):
        operand, low, high = children
        return ast.Between(operand, low, high, span=self._span(meta))

    def in_set(self, meta, children):
        operand, items = children
        return ast.InSet(operand, items, False, span=self._span(meta))

    def not_in_set(self, meta, children):
        operand, _not, items = children
        return ast.InSet(operand, items, True, span=self._span(meta))

    def is_known(self, meta, children):
        return ast.IsKnown(children[0], False, span=self._span(meta))

    def is_unknown(self, meta, children):
        return ast.IsKnown(children[0], True, span=self._span(meta))

    def contains(self, meta, children):
        collection, item = children
        return ast.Contains(collection, ast.ContainsMode.ONE, (item,), span=self._span(meta))

    def contains_any(self, meta, children):
        collection, _any, items = children
        return ast.Contains(collection, ast.ContainsMode.ANY, items, span=self._span(meta))

    def contains_all(self, meta, children):
        collection, _all, items = children
        return ast.Contains(collection, ast.ContainsMode.ALL, items, span=self._span(meta))

    def window(self, meta, children):
        series, duration = children
        return ast.Window(series, duration, span=self._span(meta))

    # ---- time, second edition (docs/language/time.md)

    def window_before(self, meta, children):
        series, duration, before = children
        return ast.Window(series, duration, before, span=self._span(meta))

    def window_from_to(self, meta, children):
        series, start, end = children
        return ast.WindowFromTo(series, start, end, span=self._span(meta))

    def where(self, meta, children):
        window, condition = children
        return ast.Where(window, condition, span=self._span(meta))

    def is_never(self, meta, children):
        return ast.IsNever(children[0], span=self._span(meta))

    def as_of(self, meta, children):
        return ast.AsOf(span=self._span(meta))

    def observation_value(self, meta, children):
        return ast.ObservationValue(span=self._span(meta))

    def quantifier(self, meta, children):
        word, window = children
        return ast.Quantifier(str(word)), window, self._span(meta)

    def _quantified(self, meta, quantifier, condition_of):
        word, window, span = quantifier
        condition = condition_of(ast.Each(span=span))
        return ast.Quantified(word, window, condition, span=self._span(meta))

    def quantified_compare(self, meta, children):
        quantifier, op, right = children
        cond_span = self.source.span(quantifier[2].start, self._outer_span(right).end)
        return self._quantified(
            meta, quantifier, lambda each: ast.Comparison(op, each, right, span=cond_span)
        )

    def quantified_between(self, meta, children):
        quantifier, low, high = children
        cond_span = self.source.span(quantifier[2].start, self._outer_span(high).end)
        return self._quantified(
            meta, quantifier, lambda each: ast.Between(each, low, high, span=cond_span)
        )

    def quantified_in(self, meta, children):
        quantifier, items = children
        return self._quantified(
            meta, quantifier, lambda each: ast.InSet(each, items, False, span=self._span(meta))
        )

    def quantified_not_in(self, meta, children):
        quantifier, _not, items = children
        return self._quantified(
            meta, quantifier, lambda each: ast.InSet(each, items, True, span=self._span(meta))
        )

    # ---- arithmetic

    def _fold(self, children):
        if len(children) > 2 * MAX_DEPTH:
            self.diagnostics.append(
                error(
                    "PR107",
                    f"expression too long (more than {MAX_DEPTH} operands in one chain)",
                    children[0].span.to(children[-1].span),
                    help="split the expression into `define`s",
                )
            )
            return children[0]
        result = children[0]
        for i in range(1, len(children), 2):
            right = children[i + 1]
            span = self._outer_span(result).to(self._outer_span(right))
            result = ast.Arithmetic(ast.ArithOp(str(children[i])), result, right, span=span)
        return result

    def sum(self, meta, children):
        return self._fold(children)

    def product(self, meta, children):
        return self._fold(children)

    def negate(self, meta, children):
        return ast.Negate(children[1], span=self._span(meta))

    # ---- calculation (docs/language/calculation.md)

    def if_expr(self, meta, children):
        condition, then, otherwise = children
        return ast.If(condition, then, otherwise, span=self._span(meta))

    def unknown(self, meta, children):
        return ast.UnknownLit(span=self._span(meta))

    def power(self, meta, children):
        base, _caret, exponent = children
        return ast.Power(base, exponent, span=self._span(meta))

    # ---- atoms

    def number(self, meta, children):
        (token,) = children
        return ast.NumberLit(self._num(token), _is_integer_literal(token), span=self._span(meta))

    def quantity(self, meta, children):
        value, unit = children
        return ast.QuantityLit(
            self._num(value), _unquote(unit), span=self._span(meta), unit_span=self._tok(unit)
        )

    def duration(self, meta, children):
        value, word = children
        return ast.DurationLit(self._num(value), str(word), span=self._span(meta))

    def date(self, meta, children):
        (token,) = children
        text = str(token)[1:]
        try:
            datetime.fromisoformat(text)
        except ValueError:
            self.diagnostics.append(
                error(
                    "PR108",
                    f"`{token}` is not a valid date",
                    self._tok(token),
                    help="write a real calendar date as `@YYYY-MM-DD`, e.g. `@2026-03-01`",
                )
            )
        return ast.DateLit(text, "T" in text, span=self._span(meta))

    def text(self, meta, children):
        return ast.TextLit(_unquote(children[0]), span=self._span(meta))

    def true(self, meta, children):
        return ast.BoolLit(True, span=self._span(meta))

    def false(self, meta, children):
        return ast.BoolLit(False, span=self._span(meta))

    def name(self, meta, children):
        return ast.Name(str(children[0]), span=self._span(meta))

    def call(self, meta, children):
        name, *args = children
        return ast.Call(
            str(name),
            tuple(a for a in args if a is not None),
            span=self._span(meta),
            name_span=self._tok(name),
        )

    def _count(self, meta, children, op):
        n, *conditions = children
        if not _is_integer_literal(n):
            self.diagnostics.append(
                error(
                    "PR108",
                    f"`{n}` is not a whole number",
                    self._tok(n),
                    help="count conditions with a whole number: `at least 2 of (…)`",
                )
            )
        return ast.Count(op, int(self._num(n)), tuple(conditions), span=self._span(meta))

    def at_least(self, meta, children):
        return self._count(meta, children, ast.CountOp.AT_LEAST)

    def at_most(self, meta, children):
        return self._count(meta, children, ast.CountOp.AT_MOST)

    def group(self, meta, children):
        # The node keeps its own span; an operator around it spans its parentheses too.
        self._outer[id(children[0])] = self._span(meta)
        return children[0]

    def _outer_span(self, node: ast.Expr) -> Span:
        """The span of `node` with the parentheses written around it, if any."""
        return self._outer.get(id(node), node.span)

    # ---- sets

    def set_literal(self, meta, children):
        return tuple(c for c in children if c is not None)

    def number_item(self, meta, children):
        ((value, _),) = children
        text = self.source.text[meta.start_pos : meta.end_pos]
        return ast.NumberLit(value, not any(c in text for c in ".eE"), span=self._span(meta))

    def quantity_item(self, meta, children):
        (value, _), unit = children
        return ast.QuantityLit(
            value, _unquote(unit), span=self._span(meta), unit_span=self._tok(unit)
        )

    def duration_item(self, meta, children):
        return self.duration(meta, children)

    def text_item(self, meta, children):
        return self.text(meta, children)

    def name_item(self, meta, children):
        return self.name(meta, children)

    # ---- terminology (docs/language/codes.md)

    def _code(self, token: Token, display: str | None = None, span: Span | None = None):
        system, code, star = _code_parts(str(token))
        return ast.CodeLit(system, code, star, display, span=span or self._tok(token))

    def code(self, meta, children):
        return self._code(children[0])

    def code_item(self, meta, children):
        return self._code(children[0])

    def code_type(self, meta, children):
        return ast.CodeType(span=self._span(meta))

    def codes(self, meta, children):
        name, _eq, *members = children
        return ast.Codes(
            str(name),
            tuple(m for m in members if m is not None),
            span=self._span(meta),
            name_span=self._tok(name),
        )

    def code_member(self, meta, children):
        token, display = children
        return self._code(token, _unquote(display) if display else None, self._span(meta))

    def value_set_member(self, meta, children):
        return ast.Name(str(children[0]), span=self._span(meta))

    def _value_set(self, token: Token):
        return (ast.ValueSetRef(str(token), span=self._tok(token)),)

    def in_value_set(self, meta, children):
        operand, name = children
        return ast.InSet(operand, self._value_set(name), False, span=self._span(meta))

    def not_in_value_set(self, meta, children):
        operand, _not, name = children
        return ast.InSet(operand, self._value_set(name), True, span=self._span(meta))

    def contains_any_value_set(self, meta, children):
        collection, _any, name = children
        items = self._value_set(name)
        return ast.Contains(collection, ast.ContainsMode.ANY, items, span=self._span(meta))

    def contains_all_value_set(self, meta, children):
        collection, _all, name = children
        items = self._value_set(name)
        return ast.Contains(collection, ast.ContainsMode.ALL, items, span=self._span(meta))

    def quantified_in_value_set(self, meta, children):
        quantifier, name = children
        items = self._value_set(name)
        return self._quantified(
            meta, quantifier, lambda each: ast.InSet(each, items, False, span=self._span(meta))
        )

    def quantified_not_in_value_set(self, meta, children):
        quantifier, _not, name = children
        items = self._value_set(name)
        return self._quantified(
            meta, quantifier, lambda each: ast.InSet(each, items, True, span=self._span(meta))
        )


def _code_parts(text: str) -> tuple[str, str, bool]:
    """(system, code, descendants) of a CODE token: `ICD10CM#N17*`."""
    system, _, code = text.partition("#")
    star = code.endswith("*")
    return system, code[:-1] if star else code, star
