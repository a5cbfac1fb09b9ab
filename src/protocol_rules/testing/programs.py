"""Random rules text: well-typed conditions and protocols, and programs from the grammar."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from functools import cache
from typing import NamedTuple

import lark
from hypothesis import strategies as st

from .._grammar import grammar_text
from ..ast import TIME_WORDS
from ..check import FactInfo
from ..check.types import (
    BOOL,
    CODE,
    INTEGER,
    NUMBER,
    TEXT,
    BoolT,
    ChoiceT,
    CodeT,
    NumT,
    QtyT,
    SeriesT,
    SetT,
    TextT,
    TimeT,
    Type,
)
from ..protocol import Protocol, parse_protocol
from ..units import UnitError, conversion, is_dimensionless
from .exact import compatible_units

_OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _UNARY, _ATOM = range(1, 9)
_OPS = ("<", "<=", ">", ">=", "=", "!=")
#: Texts of rules files: anything but line breaks.
_TEXT = st.text(
    st.characters(codec="utf-8", exclude_characters="\n\r", exclude_categories=("Cs", "Cc")),
    max_size=30,
)
_NICE = (0, 0.5, 1, 2, 2.5, 3, 12, 15, 18, 25, 40, 48, 60, 65, 100, 130, 1000, 25000)


class _Expr(NamedTuple):
    text: str
    prec: int
    type: Type | None = None


@cache
def reserved_words() -> frozenset[str]:
    """Words of the language that cannot be names."""
    words = set(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"', grammar_text()))
    return frozenset(words | set(TIME_WORDS))


def _paren(expr: _Expr, need: int, extra: bool = False) -> str:
    return f"({expr.text})" if expr.prec < need or extra else expr.text


def _num_text(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Vocabulary:
    """Names usable in expressions, by type; `calls` are ready-made calls of functions."""

    def __init__(
        self,
        named: Iterable[tuple[str, Type]],
        calls: Iterable[tuple[str, Type]] = (),
        value_sets: Iterable[str] = (),
    ) -> None:
        self.all: list[tuple[str, Type]] = list(named)
        self.calls: list[tuple[str, Type]] = list(calls)
        self.bools = [n for n, t in self.all if isinstance(t, BoolT)]
        self.scalars = [(n, t) for n, t in self.all if isinstance(t, NumT | QtyT)]
        self.series = [(n, t.element) for n, t in self.all if isinstance(t, SeriesT)]
        self.choices = [(n, t) for n, t in self.all if isinstance(t, ChoiceT)]
        self.sets = [(n, t.element) for n, t in self.all if isinstance(t, SetT)]
        self.times = [(n, t) for n, t in self.all if isinstance(t, TimeT)]
        self.nevers = [n for n, t in self.times if t.never]
        self.texts = [n for n, t in self.all if isinstance(t, TextT)]
        self.codes = [n for n, t in self.all if isinstance(t, CodeT)]
        self.value_sets = list(value_sets)


def _literal(type_: Type) -> st.SearchStrategy[str]:
    """A literal of a number or quantity type, possibly in another compatible unit."""
    numbers = st.sampled_from(_NICE) | st.integers(0, 500) | st.decimals(0, 100, places=2)
    if isinstance(type_, QtyT):
        options = compatible_units(type_.unit, type_.molar_mass)
        if type_.is_duration:  # whole numbers: `1.5 months` is no calendar step (PR320)
            words = st.sampled_from(("years", "months", "weeks", "days", "hours"))
            whole = st.sampled_from([n for n in _NICE if float(n).is_integer()]) | st.integers(
                0, 500
            )
            return st.tuples(whole, words).map(lambda p: f"{_num_text(float(p[0]))} {p[1]}")
        return st.tuples(numbers, st.sampled_from(options)).map(
            lambda p: f"{_num_text(float(p[0]))} '{p[1]}'"
        )
    if isinstance(type_, NumT) and type_.integer:
        return st.integers(0, 20).map(str)
    return numbers.map(lambda n: _num_text(float(n)))


def _duration() -> st.SearchStrategy[str]:
    return st.tuples(
        st.sampled_from((1, 2, 3, 4, 12, 24, 30, 48)),
        st.sampled_from(("hours", "days", "weeks", "months")),
    ).map(lambda p: f"{p[0]} {p[1]}")


def _window_length(vocab: _Vocabulary) -> st.SearchStrategy[str]:
    """A window's length: a duration literal, or an expression that is converted at run time.

    `time_since(d)` is in days and a window counts seconds, so the checker inserts a runtime
    conversion: drawn on purpose, because renderers must show converted operands too.
    """
    if not vocab.times:
        return _duration()
    since = st.sampled_from([n for n, _ in vocab.times]).map(lambda n: f"time_since({n})")
    return _duration() | since


def _terms(vocab: _Vocabulary, counts: bool = True) -> list[st.SearchStrategy[_Expr]]:
    """Numeric terms: names, aggregates of windows, scaled or shifted (and `count`s)."""
    out: list[st.SearchStrategy[_Expr]] = []
    if vocab.scalars:
        out.append(st.sampled_from(vocab.scalars).map(lambda p: _Expr(p[0], _ATOM, p[1])))
    if vocab.calls:
        out.append(st.sampled_from(vocab.calls).map(lambda p: _Expr(p[0], _ATOM, p[1])))
    numeric_series = [(n, e) for n, e in vocab.series if isinstance(e, NumT | QtyT)]
    if numeric_series:
        aggregate = st.sampled_from(("max", "min", "mean", "latest", "earliest"))
        out.append(
            st.tuples(aggregate, st.sampled_from(numeric_series), _window_length(vocab)).map(
                lambda p: _Expr(
                    f"{p[0]}({p[1][0]} over last {p[2]})",
                    _ATOM,
                    NUMBER if p[0] == "mean" and isinstance(p[1][1], NumT) else p[1][1],
                )
            )
        )
    if vocab.series and counts:
        out.append(
            st.tuples(st.sampled_from(vocab.series), _window_length(vocab)).map(
                lambda p: _Expr(f"count({p[0][0]} over last {p[1]})", _ATOM, INTEGER)
            )
        )
    if vocab.times:
        out.append(
            st.sampled_from([n for n, _ in vocab.times]).map(
                lambda n: _Expr(f"time_since({n})", _ATOM, QtyT("d"))
            )
        )
    return out


@st.composite
def _scaled(draw: st.DrawFn, term: st.SearchStrategy[_Expr]) -> _Expr:
    """A numeric term as is, times or divided by a number, shifted, or negated."""
    base = draw(term)
    form = draw(st.sampled_from(("plain", "times", "divide", "plus", "negate")))
    if form == "times":
        k = draw(st.sampled_from((2, 3, 0.5, 1.5)))
        return _Expr(f"{_num_text(k)} * {_paren(base, _UNARY)}", _PRODUCT, base.type)
    if form == "divide":
        k = draw(st.sampled_from((2, 4, 10)))
        return _Expr(f"{_paren(base, _PRODUCT)} / {k}", _PRODUCT, base.type)
    if form == "plus" and isinstance(base.type, QtyT | NumT):
        shift = draw(_literal(base.type))
        return _Expr(f"{_paren(base, _SUM)} + {shift}", _SUM, base.type)
    if form == "negate" and isinstance(base.type, QtyT | NumT):
        sign = "- " if base.text.startswith("-") else "-"
        return _Expr(f"{sign}{_paren(base, _UNARY)}", _UNARY, base.type)
    return base


def _conditions(vocab: _Vocabulary, known: bool = True) -> list[st.SearchStrategy[_Expr]]:
    """Boolean leaves: names, comparisons, sets, windows, dates, texts (and `is known`)."""
    out: list[st.SearchStrategy[_Expr]] = [st.sampled_from(("true", "false")).map(_atom)]
    if vocab.bools:
        out.append(st.sampled_from(vocab.bools).map(_atom))
    if vocab.all and known:
        out.append(
            st.tuples(st.sampled_from(vocab.all), st.sampled_from(("known", "unknown"))).map(
                lambda p: _Expr(f"{p[0][0]} is {p[1]}", _COMPARE)
            )
        )
    terms = _terms(vocab)
    if terms:
        out.append(_comparison(_scaled(st.one_of(terms))))
        out.append(_comparison(_calculated(st.one_of(terms), vocab, known)))
    if _has_quantity_terms(vocab):
        out.append(_converted(_quantity_terms(vocab), vocab))
    numeric_series = [(n, e) for n, e in vocab.series if isinstance(e, NumT | QtyT)]
    if numeric_series:
        out.append(_enough_values(numeric_series))
    if vocab.choices:
        out.append(_choice(vocab))
    if vocab.sets:
        out.append(_contains(vocab))
    if vocab.series:
        out.append(_quantified(vocab))
    if vocab.times:
        out.append(_dated(vocab))
        out.append(_calendar(vocab))
    if vocab.nevers:
        out.append(st.sampled_from(vocab.nevers).map(lambda n: _Expr(f"{n} is never", _COMPARE)))
    if vocab.series:  # twice: anchored and filtered windows have many forms to cover
        out += [_windowed(vocab), _windowed(vocab)]
    if vocab.texts:
        out.append(
            st.tuples(st.sampled_from(vocab.texts), _TEXT).map(
                lambda p: _Expr(f"{p[0]} = {_quote(p[1])}", _COMPARE)
            )
        )
    if vocab.codes:
        out.append(_code_test(vocab))
    return out


# --------------------------------------------------------------------------- terminology
# docs/language/codes.md: code literals, value sets, `in` and `contains` on codes.

#: Members of value sets: codes, and codes with descendants by prefix (ICD-10-CM).
CODE_MEMBERS = (
    "ICD10CM#N17*",
    "ICD10CM#N17.9",
    "ICD10CM#N18*",
    "ICD10CM#N18.6",
    "SNOMED#14669001",
    "SNOMED#72892002",
    "LOINC#2160-0",
    "OMOP#3016723",
    "RXNORM#241834",
)


@st.composite
def _code_items(draw: st.DrawFn, vocab: _Vocabulary) -> str:
    """What `in` and `contains any of` read: a value set by name, or a set written in place."""
    if vocab.value_sets and draw(st.booleans()):
        return draw(st.sampled_from(vocab.value_sets))
    members = draw(st.lists(st.sampled_from(CODE_MEMBERS), min_size=1, max_size=3, unique=True))
    return "{" + ", ".join(members) + "}"


@st.composite
def _code_test(draw: st.DrawFn, vocab: _Vocabulary) -> _Expr:
    name = draw(st.sampled_from(vocab.codes))
    form = draw(st.sampled_from(("=", "!=", "in", "not in")))
    if form in ("=", "!="):
        code = draw(st.sampled_from([m for m in CODE_MEMBERS if not m.endswith("*")]))
        return _Expr(f"{name} {form} {code}", _COMPARE)
    return _Expr(f"{name} {form} {draw(_code_items(vocab))}", _COMPARE)


def value_set_lines(draw: st.DrawFn, names: Sequence[str]) -> list[str]:
    """`codes NAME = {…}` declarations, one per name (the first may list the others)."""
    lines = []
    for i, name in enumerate(names):
        members = draw(st.lists(st.sampled_from(CODE_MEMBERS), min_size=1, max_size=4, unique=True))
        if i and draw(st.booleans()):
            members.append(names[0])
        lines.append(f"codes {name} = {{{', '.join(members)}}}")
    return lines


def _has_dimension(type_: Type | None) -> bool:
    """A quantity with a dimension (a `'%'` times a duration per hour is a plain number)."""
    return isinstance(type_, QtyT) and not is_dimensionless(type_.unit)


def _has_quantity_terms(vocab: _Vocabulary) -> bool:
    return bool(
        any(_has_dimension(t) for _, t in vocab.scalars)
        or any(_has_dimension(e) for _, e in vocab.series)
        or any(not t.has_time for _, t in vocab.times)
    )


def _quantity_terms(vocab: _Vocabulary) -> st.SearchStrategy[_Expr]:
    """Terms that are quantities with a dimension (no counts, no plain numbers)."""
    dimensioned = _Vocabulary(
        (name, t)
        for name, t in vocab.all
        if _has_dimension(t.element if isinstance(t, SeriesT) else t)
        or (isinstance(t, TimeT) and not t.has_time)
    )
    return _scaled(st.one_of(_terms(dimensioned, counts=False)))


@st.composite
def _converted(draw: st.DrawFn, terms: st.SearchStrategy[_Expr], vocab: _Vocabulary) -> _Expr:
    """A quantity compared with an operand the checker must convert at run time.

    `u < 5 'mL/min' * 24 hours` against a fact in `'mL/d'`, or `a > 2 * b` with `b` in a
    compatible unit: the right side is not a constant, so it gets a runtime conversion, which
    every renderer must show (the class of bug issue 10 found).
    """
    term = draw(terms)
    assert isinstance(term.type, QtyT)
    op = draw(st.sampled_from(_OPS))
    left = _paren(term, _SUM)
    target, molar_mass = term.type.unit, term.type.molar_mass
    others = [
        name
        for name, t in vocab.scalars
        if isinstance(t, QtyT)
        and t.unit in compatible_units(target, molar_mass)
        and not conversion(t.unit, target, molar_mass).is_identity
    ]
    if others and draw(st.booleans()):
        k = draw(st.sampled_from((1, 2, 0.5)))
        return _Expr(f"{left} {op} {_num_text(k)} * {draw(st.sampled_from(others))}", _COMPARE)
    units = [u for u in compatible_units(target, molar_mass) if _converts(u, target)]
    if units:  # `u < 5 'g/L' * (u / 1 'mg/dL')`: a product of units is simplified at load,
        # but a quantity times a number the patient decides is converted at run time
        unit, amount = draw(st.sampled_from(units)), draw(st.sampled_from(_NICE))
        ratio = f"({_paren(term, _ATOM)} / 1 '{target}')"
        return _Expr(f"{left} {op} {_num_text(amount)} '{unit}' * {ratio}", _COMPARE)
    unit = draw(st.sampled_from(compatible_units(target, molar_mass)))
    per_minute = f"({unit})/min" if "/" in unit or "." in unit else f"{unit}/min"
    amount, hours = draw(st.sampled_from(_NICE)), draw(st.sampled_from((1, 6, 24)))
    return _Expr(f"{left} {op} {_num_text(amount)} '{per_minute}' * {hours} hours", _COMPARE)


def _converts(unit: str, target: str) -> bool:
    """Whether a value in `unit` converts to `target` by a factor other than 1 (no substance)."""
    try:
        return not conversion(unit, target, None).is_identity
    except UnitError:  # not convertible without a molar mass
        return False


def _atom(text: str) -> _Expr:
    return _Expr(text, _ATOM, BOOL)


@st.composite
def _comparison(draw: st.DrawFn, terms: st.SearchStrategy[_Expr]) -> _Expr:
    term = draw(terms)
    assert term.type is not None
    left = _paren(term, _SUM)
    form = draw(st.sampled_from(("compare", "between", "in")))
    if form == "between":
        low, high = sorted(draw(st.lists(st.sampled_from(_NICE), min_size=2, max_size=2)))
        unit = _unit_suffix(draw, term.type)
        return _Expr(f"{left} between {_num_text(low)}{unit} and {_num_text(high)}{unit}", _COMPARE)
    if form == "in":
        items = draw(st.lists(st.sampled_from(_NICE), min_size=1, max_size=3, unique=True))
        unit = _unit_suffix(draw, term.type)
        inner = ", ".join(f"{_num_text(v)}{unit}" for v in items)
        return _Expr(f"{left} in {{{inner}}}", _COMPARE)
    op = draw(st.sampled_from(_OPS))
    return _Expr(f"{left} {op} {draw(_literal(term.type))}", _COMPARE)


def _unit_suffix(draw: st.DrawFn, type_: Type) -> str:
    if isinstance(type_, QtyT):
        return f" '{draw(st.sampled_from(compatible_units(type_.unit, type_.molar_mass)))}'"
    return ""


@st.composite
def _choice(draw: st.DrawFn, vocab: _Vocabulary) -> _Expr:
    name, choice = draw(st.sampled_from(vocab.choices))
    form = draw(st.sampled_from(("=", "!=", "in", "not in")))
    if form in ("=", "!="):
        return _Expr(f"{name} {form} {draw(st.sampled_from(choice.choices))}", _COMPARE)
    items = draw(st.lists(st.sampled_from(choice.choices), min_size=1, max_size=3, unique=True))
    return _Expr(f"{name} {form} {{{', '.join(items)}}}", _COMPARE)


@st.composite
def _contains(draw: st.DrawFn, vocab: _Vocabulary) -> _Expr:
    name, element = draw(st.sampled_from(vocab.sets))
    if isinstance(element, CodeT):
        form = draw(st.sampled_from(("contains", "contains any of", "contains all of")))
        if form == "contains":
            return _Expr(f"{name} contains {draw(st.sampled_from(CODE_MEMBERS))}", _COMPARE)
        return _Expr(f"{name} {form} {draw(_code_items(vocab))}", _COMPARE)
    choices = isinstance(element, ChoiceT)
    pool = st.sampled_from(element.choices) if choices else _TEXT.map(_quote)
    items = draw(st.lists(pool, min_size=1, max_size=3, unique=True))
    form = draw(st.sampled_from(("contains", "contains any of", "contains all of")))
    if form == "contains":
        return _Expr(f"{name} contains {items[0]}", _COMPARE)
    return _Expr(f"{name} {form} {{{', '.join(items)}}}", _COMPARE)


@st.composite
def _quantified(draw: st.DrawFn, vocab: _Vocabulary) -> _Expr:
    name, element = draw(st.sampled_from(vocab.series))
    window = f"{name} over last {draw(_window_length(vocab))}"
    quantifier = draw(st.sampled_from(("any", "all")))
    if isinstance(element, BoolT):
        form = draw(st.sampled_from(("exists", "latest", "any")))
        if form == "any":
            return _Expr(f"{quantifier}({window}) = {draw(st.sampled_from(('true', 'false')))}", 4)
        return _atom(f"{form}({window})")
    if isinstance(element, ChoiceT):
        items = draw(st.lists(st.sampled_from(element.choices), min_size=1, max_size=2))
        word = draw(st.sampled_from(("in", "not in")))
        return _Expr(f"{quantifier}({window}) {word} {{{', '.join(items)}}}", _COMPARE)
    if isinstance(element, CodeT):
        if draw(st.booleans()):
            return _atom(f"exists({window})")
        word = draw(st.sampled_from(("in", "not in")))
        return _Expr(f"{quantifier}({window}) {word} {draw(_code_items(vocab))}", _COMPARE)
    if draw(st.booleans()):
        return _atom(f"exists({window})")
    op = draw(st.sampled_from(_OPS))
    return _Expr(f"{quantifier}({window}) {op} {draw(_literal(element))}", _COMPARE)


@st.composite
def _dated(draw: st.DrawFn, vocab: _Vocabulary) -> _Expr:
    name, type_ = draw(st.sampled_from(vocab.times))
    day = draw(st.dates(date(2015, 1, 1), date(2030, 12, 31)))
    literal = f"@{day.isoformat()}" + ("T08:00" if type_.has_time else "")
    op = draw(st.sampled_from(_OPS[:4]))
    if draw(st.booleans()):
        return _Expr(f"{name} + {draw(_duration())} {op} {literal}", _COMPARE)
    return _Expr(f"{name} {op} {literal}", _COMPARE)


@st.composite
def _calendar(draw: st.DrawFn, vocab: _Vocabulary) -> _Expr:
    """Calendar time: `time_since(x) OP D`, `x OP as_of ± D`, `time_since(x) between …`."""
    name, _ = draw(st.sampled_from(vocab.times))
    duration = draw(_duration())
    op = draw(st.sampled_from(_OPS))
    form = draw(st.sampled_from(("since", "as_of", "shifted", "between")))
    if form == "as_of":
        sign = draw(st.sampled_from(("+", "-")))
        return _Expr(f"{name} {op} as_of {sign} {duration}", _COMPARE)
    if form == "shifted":
        return _Expr(f"{name} + {duration} {op} as_of", _COMPARE)
    if form == "between":
        low, high = sorted(
            draw(st.lists(st.sampled_from((1, 3, 6, 12, 18)), min_size=2, max_size=2))
        )
        return _Expr(f"time_since({name}) between {low} months and {high} months", _COMPARE)
    return _Expr(f"time_since({name}) {op} {duration}", _COMPARE)


@st.composite
def _window_of(draw: st.DrawFn, vocab: _Vocabulary, name: str) -> str:
    """A window of series `name`: recent, anchored before an instant, or between two; its
    length a duration word, a UCUM duration or a computed duration (`time_since(x)`)."""
    forms = ["last", "last"]
    if vocab.times:
        forms += ["before", "from"]
    form = draw(st.sampled_from(forms))
    instants = [n for n, _ in vocab.times] + ["as_of"]
    shifted = st.tuples(st.sampled_from(instants), st.sampled_from("+-"), _duration())
    instant = st.sampled_from(instants) | shifted.map(" ".join)
    if form == "from":
        start, end = draw(instant), draw(instant)
        return f"{name} from {start} to {end}"
    lengths = [_duration(), st.sampled_from((1, 6, 48)).map(lambda h: f"{h} 'h'")]
    if vocab.times:
        lengths.append(
            st.sampled_from([n for n, _ in vocab.times]).map(lambda n: f"time_since({n})")
        )
    length = draw(st.one_of(lengths))
    if form == "before":
        bound = draw(instant)
        anchor = f"({bound})" if " " in bound else bound
        return f"{name} over last {length} before {anchor}"
    return f"{name} over last {length}"


@st.composite
def _observation_test(draw: st.DrawFn, vocab: _Vocabulary, element: Type) -> str:
    """A `where` condition on `value`: against a literal, or against a fact that may be
    unknown (then the filter is unknown for some patients), or with a boolean fact."""
    if isinstance(element, NumT | QtyT):
        op = draw(st.sampled_from(_OPS))
        same = [n for n, t in vocab.scalars if t == element]
        if same and draw(st.booleans()):
            test = f"value {op} {draw(st.sampled_from(same))}"
        else:
            test = f"value {op} {draw(_literal(element))}"
    elif isinstance(element, ChoiceT):
        items = draw(st.lists(st.sampled_from(element.choices), min_size=1, max_size=2))
        test = f"value in {{{', '.join(items)}}}"
    elif isinstance(element, CodeT):
        test = f"value in {draw(_code_items(vocab))}"
    else:
        test = f"value = {draw(st.sampled_from(('true', 'false')))}"
    if vocab.bools and draw(st.integers(0, 3)) == 0:
        word = draw(st.sampled_from(("and", "or")))
        test = f"{test} {word} {draw(st.sampled_from(vocab.bools))}"
    return test


@st.composite
def _windowed(draw: st.DrawFn, vocab: _Vocabulary) -> _Expr:
    """Anchored and filtered windows read by every aggregate, `consecutive`, the quantifiers
    and `first_time` / `last_time`."""
    name, element = draw(st.sampled_from(vocab.series))
    window = draw(_window_of(vocab, name))
    condition = draw(_observation_test(vocab, element))
    filtered = window
    if draw(st.booleans()):
        filtered = f"{window} where {condition}"
        if draw(st.integers(0, 3)) == 0:  # filters nest
            filtered = f"({filtered}) where {draw(_observation_test(vocab, element))}"
    n = draw(st.integers(0, 3))
    numeric = isinstance(element, NumT | QtyT)
    forms = ["count", "exists", "consecutive", "time"]
    forms += ["any", "aggregate", "aggregate", "aggregate"] if numeric else []
    form = draw(st.sampled_from(forms))
    if form == "count":
        return _Expr(f"count({filtered}) >= {n}", _COMPARE)
    if form == "consecutive":
        inner = filtered if filtered == window else f"({filtered})"
        return _Expr(f"consecutive({inner} where {condition}) >= {n}", _COMPARE)
    if form == "any":
        quantifier = draw(st.sampled_from(("any", "all")))
        return _Expr(f"{quantifier}({filtered}) > {draw(_literal(element))}", _COMPARE)
    if form == "aggregate":
        function = draw(st.sampled_from(("max", "min", "mean", "sum", "latest", "earliest")))
        op = draw(st.sampled_from(_OPS))
        literal = draw(_literal(NUMBER if function == "mean" and element == NUMBER else element))
        return _Expr(f"{function}({filtered}) {op} {literal}", _COMPARE)
    if form == "time":
        which = draw(st.sampled_from(("first_time", "last_time")))
        return _Expr(f"{which}({filtered}) >= as_of - {draw(_duration())}", _COMPARE)
    return _atom(f"exists({filtered})")


#: Whether to add a redundant pair of parentheses (one time in six).
_EXTRA_PARENS = st.integers(0, 5).map(lambda i: i == 0)


@st.composite
def _negation(draw: st.DrawFn, inner: st.SearchStrategy[_Expr]) -> _Expr:
    operand = draw(inner)
    return _Expr(f"not {_paren(operand, _NOT, draw(_EXTRA_PARENS))}", _NOT, BOOL)


@st.composite
def _chain(draw: st.DrawFn, inner: st.SearchStrategy[_Expr]) -> _Expr:
    op = draw(st.sampled_from(("and", "or")))
    need, prec = (_NOT, _AND) if op == "and" else (_AND, _OR)
    operands = draw(st.lists(inner, min_size=2, max_size=3))
    texts = [_paren(o, need, draw(_EXTRA_PARENS)) for o in operands]
    return _Expr(f" {op} ".join(texts), prec, BOOL)


@st.composite
def _counted(draw: st.DrawFn, inner: st.SearchStrategy[_Expr]) -> _Expr:
    operands = draw(st.lists(inner, min_size=1, max_size=4))
    n = draw(st.integers(0, len(operands)))
    word = draw(st.sampled_from(("at least", "at most")))
    return _atom(f"{word} {n} of ({', '.join(o.text for o in operands)})")


def _boolean(vocab: _Vocabulary, depth: int, known: bool = True) -> st.SearchStrategy[_Expr]:
    leaves = st.one_of(_conditions(vocab, known))
    if depth <= 0:
        return leaves
    inner = st.deferred(lambda: _boolean(vocab, depth - 1, known))
    return st.one_of(leaves, _negation(inner), _chain(inner), _counted(inner), _if_condition(inner))


# --------------------------------------------------------------------------- calculation
# docs/language/calculation.md: `if`, `unknown`, `first_known`, `^`, the math functions.


@st.composite
def _calculated(
    draw: st.DrawFn, term: st.SearchStrategy[_Expr], vocab: _Vocabulary, known: bool
) -> _Expr:
    """A numeric term through a calculation: abs, round, min/max, if, first_known, a power."""
    base = draw(term)
    type_ = base.type
    assert type_ is not None
    forms = ["abs", "round", "extremum", "if", "if unknown", "power"]
    if known:
        forms.append("first_known")  # not monotone: a known first operand changes the value
    form = draw(st.sampled_from(forms))
    if form == "abs":
        return _Expr(f"abs({base.text})", _ATOM, type_)
    if form == "round":
        return _Expr(f"round({base.text}, {draw(st.integers(-1, 3))})", _ATOM, type_)
    if form == "extremum":
        word = draw(st.sampled_from(("min", "max")))
        return _Expr(f"{word}({base.text}, {draw(_literal(type_))})", _ATOM, type_)
    if form == "first_known":
        return _Expr(f"first_known({base.text}, {draw(_literal(type_))})", _ATOM, type_)
    if form in ("if", "if unknown"):
        flag = draw(st.sampled_from([*vocab.bools, "true", "false"]))
        otherwise = "unknown" if form == "if unknown" else draw(_literal(type_))
        return _Expr(f"if {flag} then {base.text} else {otherwise}", 0, type_)
    exponent = draw(st.sampled_from(("2", "3", "-1", "0.5")))
    if isinstance(type_, QtyT):
        unit = "a" if type_.is_duration and type_.unit == "d" else type_.unit
        plain = f"({_paren(base, _PRODUCT)} / 1 '{unit}')"
        return _Expr(f"{plain} ^ {exponent}", _PRODUCT + 1, NUMBER)
    return _Expr(f"{_paren(base, _ATOM + 1)} ^ {exponent}", _PRODUCT + 1, NUMBER)


@st.composite
def _enough_values(draw: st.DrawFn, series: list[tuple[str, Type]]) -> _Expr:
    """ "At least N values, all below X, else unknown": `if count(W) >= N then … else unknown`."""
    name, element = draw(st.sampled_from(series))
    window = f"{name} over last {draw(_duration())}"
    n = draw(st.integers(1, 6))
    quantifier = draw(st.sampled_from(("all", "any")))
    op = draw(st.sampled_from(_OPS[:4]))
    test = f"{quantifier}({window}) {op} {draw(_literal(element))}"
    return _Expr(f"if count({window}) >= {n} then {test} else unknown", 0, BOOL)


@st.composite
def _if_condition(draw: st.DrawFn, inner: st.SearchStrategy[_Expr]) -> _Expr:
    condition, then, otherwise = draw(inner), draw(inner), draw(inner)
    texts = [_paren(e, _OR) for e in (condition, then)]
    return _Expr(f"if {texts[0]} then {texts[1]} else {otherwise.text}", 0, BOOL)


def _functions(
    draw: st.DrawFn, named: list[tuple[str, Type]], declared: dict[str, str], taken: set[str]
) -> tuple[list[str], list[tuple[str, Type]]]:
    """A function of each of a few numeric facts' types, its define and a call of it."""
    lines: list[str] = []
    calls: list[tuple[str, Type]] = []
    numeric = [(n, t) for n, t in named if isinstance(t, NumT | QtyT) and n in declared]
    for i, (fact, type_) in enumerate(numeric[: draw(st.integers(0, 2))]):
        name = f"scaled_{i}"
        if name in taken:
            continue
        param = "integer" if type_ == INTEGER else declared[fact].split(" range")[0]
        param = param.split(" molar_mass")[0]
        body = draw(st.sampled_from(("x * k", "abs(x) * k", "x + x * (k - 1)")))
        lines.append(f"define {name}(x: {param}, k: number) =\n  {body}")
        result = NUMBER if isinstance(type_, NumT) else QtyT(type_.unit)
        calls.append((f"{name}({fact}, {draw(st.sampled_from(('2', '0.5', '1.5')))})", result))
    return lines, calls


def expressions(
    facts: Protocol | Mapping[str, str] | Iterable[FactInfo],
    *,
    depth: int = 3,
    known: bool = True,
) -> st.SearchStrategy[str]:
    """Rules text of random well-typed conditions over `facts`.

    `facts` is a protocol, its `FactInfo`s, or a mapping of fact name to declared type as
    written in a rules file (``{"age": "quantity 'a'", "pregnant": "boolean"}``). `depth`
    bounds the nesting of `not`, `and`, `or` and `at least … of`. With ``known=False`` the
    conditions never test `is known` / `is unknown`, so they are monotone: learning a missing
    fact never changes a decided condition.
    """
    infos = _fact_infos(facts)
    vocab = _Vocabulary((f.name, f.type) for f in infos)
    return _boolean(vocab, depth, known).map(lambda e: e.text)


def _fact_infos(facts: Protocol | Mapping[str, str] | Iterable[FactInfo]) -> list[FactInfo]:
    if isinstance(facts, Protocol):
        return list(facts.facts)
    if isinstance(facts, Mapping):
        return list(_declared(tuple(facts.items())))
    return list(facts)


@cache
def _declared(facts: tuple[tuple[str, str], ...]) -> tuple[FactInfo, ...]:
    """The facts of (name, declared type) pairs, checked once (drawn protocols reuse them)."""
    lines = [f"fact {name}: {type_}" for name, type_ in facts]
    text = "\n".join(["protocol facts", *lines, 'inclusion I1 "x": true'])
    return parse_protocol(text, "<facts>").facts


_WORDS = (
    "age", "weight", "egfr", "creatinine", "platelets", "lvef", "dose", "pregnant", "consent",
    "cause", "drugs", "onset", "visit", "score", "stage", "sodium", "heart_rate", "notes",
    "diagnosis", "transplant", "infection", "smoker", "bmi", "history", "events",
)  # fmt: skip
_FACT_TYPES: tuple[tuple[str, Type], ...] = (
    ("boolean", BOOL),
    ("integer range 0 to 10", INTEGER),
    ("number", NUMBER),
    ("quantity 'mg/dL' molar_mass 113.12 'g/mol'", QtyT("mg/dL", 113.12)),
    ("quantity '/uL'", QtyT("/uL")),
    ("quantity '%' range 0 to 100", QtyT("%")),
    ("quantity 'a' range 0 to 130", QtyT("a")),
    ("quantity 'mo'", QtyT("mo")),
    ("quantity 'mL/min/{1.73_m2}'", QtyT("mL/min/{1.73_m2}")),
    ("date", TimeT(False)),
    ("datetime", TimeT(True)),
    ("date or never", TimeT(False, never=True)),
    ("date past", TimeT(False)),
    ("datetime or never past", TimeT(True, never=True)),
    ("text", TEXT),
    ("series of quantity 'mg/dL' molar_mass 113.12 'g/mol'", SeriesT(QtyT("mg/dL", 113.12))),
    ("series of quantity 'mL/kg/h'", SeriesT(QtyT("mL/kg/h"))),
    ("series of number", SeriesT(NUMBER)),
    ("series of boolean", SeriesT(BOOL)),
    ("set of text", SetT(TEXT)),
    ("code", CODE),
    ("set of code", SetT(CODE)),
    ("series of code", SeriesT(CODE)),
)


def _names(prefix: str = "") -> st.SearchStrategy[str]:
    fresh = st.from_regex(r"[a-z][a-z0-9_]{0,9}", fullmatch=True)
    return (st.sampled_from(_WORDS) | fresh).map(lambda n: prefix + n)


@st.composite
def protocols(
    draw: st.DrawFn,
    facts: Mapping[str, str] | None = None,
    *,
    max_facts: int = 8,
    max_criteria: int = 5,
    known: bool = True,
    messy: bool = False,
) -> str:
    """Rules text of a random protocol that parses and checks without errors.

    Its facts are `facts` (name -> declared type, as in `expressions`) or random ones of every
    type; then boolean defines, and criteria with texts and notes that use facts and defines.
    ``known=False`` leaves out `is known` / `is unknown` (see `expressions`). With `messy`,
    tokens are laid out with random spaces, newlines and comments, which a formatter or a
    parser must not care about.
    """
    reserved = reserved_words()
    taken = set(facts or ())
    names = draw(
        st.lists(
            _names().filter(lambda n: n not in reserved and n not in taken),
            min_size=1,
            max_size=max_facts + 2,
            unique=True,
        )
    )
    split = max(1, len(names) - 2)
    lines = [_header(draw)]
    if facts is None:
        named = [_random_fact(draw, name, lines) for name in names[:split]]
        declared = {
            line.split()[1].rstrip(":"): line.split(": ", 1)[1].split(' "')[0] for line in lines[1:]
        }
    else:
        named = [(f.name, f.type) for f in _fact_infos(facts)]
        lines += [f"fact {name}: {declared}" for name, declared in facts.items()]
        declared = dict(facts)
    functions, calls = _functions(draw, named, declared, set(names))
    lines += functions
    sets: list[str] = []
    if any(isinstance(t.element if isinstance(t, SeriesT | SetT) else t, CodeT) for _, t in named):
        sets = [f"codes_{i}" for i in range(draw(st.integers(0, 2)))]
        lines += value_set_lines(draw, sets)
    for name in names[split:] if facts is None else names[:2]:
        body = draw(_boolean(_Vocabulary(named, calls, sets), 2, known))
        lines.append(f"define {name} =\n  {body.text}")
        named.append((name, BOOL))
    vocab = _Vocabulary(named, calls, sets)
    for i in range(draw(st.integers(1, max_criteria))):
        kind, ident = ("inclusion", f"I{i + 1}") if i % 2 == 0 else ("exclusion", f"E{i + 1}")
        note = f"\n  note {_quote(draw(_TEXT))}" if draw(st.booleans()) else ""
        drawn = draw(_boolean(vocab, 3, known))
        body = drawn.text
        if i == 0 and _has_quantity_terms(vocab):  # always at least one runtime conversion
            converted = draw(_converted(_quantity_terms(vocab), vocab)).text
            body = f"{converted} or {_paren(drawn, _AND)}"
        lines.append(f"{kind} {ident} {_quote(draw(_TEXT))}{note}:\n  {body}")
    text = "\n\n".join(lines) + "\n"
    return _scramble(draw, text) if messy else text


def _random_fact(draw: st.DrawFn, name: str, lines: list[str]) -> tuple[str, Type]:
    """Declare a fact of a random type (appending its line) and return its name and type."""
    if draw(st.integers(0, 5)) == 0:
        choices = [f"{name}_{c}" for c in ("a", "b", "c")[: draw(st.integers(1, 3))]]
        wrapper = draw(st.sampled_from(("", "series of ", "set of ")))
        declared = f"{wrapper}one of {', '.join(choices)}"
        choice = ChoiceT(tuple(choices), name)
        type_: Type = {"": choice, "series of ": SeriesT(choice), "set of ": SetT(choice)}[wrapper]
    else:
        declared, type_ = draw(st.sampled_from(_FACT_TYPES))
    description = f" {_quote(draw(_TEXT))}" if draw(st.booleans()) else ""
    lines.append(f"fact {name}: {declared}{description}")
    return name, type_


def _header(draw: st.DrawFn) -> str:
    ident = draw(st.sampled_from(("NCT01234567", '"MSC-001"', "demo_trial", '"protocol"')))
    keys = draw(st.lists(st.sampled_from(("title", "sponsor", "phase", "source")), unique=True))
    metas = [f"  {key} {_quote(draw(_TEXT))}" for key in keys]
    return "\n".join([f"protocol {ident}", *metas])


_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|@[0-9T:.+\-Z]+'
    r"|[A-Za-z][A-Za-z0-9_]*#[A-Za-z0-9][A-Za-z0-9.\-]*\*?|[A-Za-z_][A-Za-z0-9_]*"
    r"|[0-9][0-9_]*(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|<=|>=|!=|\S"
)
_TIGHT = set("(){},:")
_SEPARATORS = (" ", " ", " ", "  ", "\n", "\n  ", "\t", " # a note\n", "\n# ' \" # x\n\n")


def _scramble(draw: st.DrawFn, text: str) -> str:
    """The same tokens with random whitespace and comments between them."""
    tokens = _TOKEN.findall(text)
    out = [tokens[0]]
    for before, token in itertools.pairwise(tokens):
        choices = _SEPARATORS
        if before in _TIGHT or token in _TIGHT:
            choices = ("", *_SEPARATORS)
        out.append(draw(st.sampled_from(choices)))
        out.append(token)
    return "".join(out) + "\n"


_UNITS_WRITTEN = ("mg/dL", "/uL", "%", "a", "mo", "10*9/L", "g/mol", "mL/min/{1.73_m2}", "mg/d")
_DATES = ("@2026-03-01", "@2026-03-01T08:00", "@2026-03-01T08:00:00Z", "@2024-02-29")
_FUNCTIONS = (
    "max", "min", "mean", "sum", "latest", "earliest", "count", "exists", "time_since",
    "first_time", "last_time", "consecutive",
    "first_known", "ln", "log10", "exp", "sqrt", "abs", "round", "ckd_epi_2021", "bmi",
)  # fmt: skip


def grammar_programs(
    *, start: str = "start", names: Sequence[str] = (), numbers: Sequence[str] = ()
) -> st.SearchStrategy[str]:
    """Texts the grammar accepts, drawn from its rules with a bounded depth.

    `start` is a rule of the grammar: ``start`` for whole files, ``expr`` for expressions.

    Every token is followed by whitespace, a newline or a comment (`from_lark` would glue
    `fact` and `age` into `factage`), names avoid the reserved words, and numbers, units,
    texts and dates are drawn from small pools of plausible and odd spellings. Most texts
    parse; few check, since names are not declared consistently: for the parser, the
    formatter and the error paths of the checker. `names` and `numbers` extend the pools.
    """
    lark = _full_grammar()
    gap = st.sampled_from((" ", " ", " ", "\n", "\n  ", "\t", " # note\n"))
    reserved = reserved_words()
    name_pool = ("age", "x", "p", "egfr", "drugs", "cause", "I1", "E2", "NCT1", *_FUNCTIONS)
    words = st.sampled_from((*name_pool, *names)) | st.from_regex(
        r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True
    ).filter(lambda n: n not in reserved)
    texts = st.text(
        st.characters(codec="utf-8", exclude_characters="\n\r", exclude_categories=("Cs",)),
        max_size=12,
    ).map(_quote)
    pools: dict[str, st.SearchStrategy[str]] = {
        "NAME": words,
        "NUMBER": st.sampled_from(("0", "1", "2", "3", "18", "0.5", "25000", "1e3", "1_000"))
        | st.sampled_from(tuple(numbers) or ("65",)),
        "UNIT": st.sampled_from(_UNITS_WRITTEN).map(lambda u: f"'{u}'")
        | st.sampled_from(("''", "'mg/dl'", "'foo'", "'{'", "'1'")),
        "STRING": texts,
        "DATE": st.sampled_from((*_DATES, "@2026-02-30", "@2026-03-01T25:00")),
        "TIME_WORD": st.sampled_from(tuple(TIME_WORDS)),
        "CODE": st.sampled_from((*CODE_MEMBERS, "loinc#2160-0", "XX#1", "ICD10CM#n17", "OMOP#0")),
    }
    terminals, rules, _ = lark.grammar.compile([start], ())
    used = {t.name for t in terminals}
    used |= {s.name for rule in rules for s in rule.expansion if s.is_term}
    explicit: dict[str, st.SearchStrategy[str]] = {}
    for terminal in lark.terminals:
        if terminal.name in lark.ignore_tokens or terminal.name not in used:
            continue
        if terminal.name in pools:
            token = pools[terminal.name]
        elif terminal.pattern.type == "str":
            token = st.just(terminal.pattern.value)
        else:  # pragma: no cover - every regular terminal has a pool above
            raise AssertionError(f"no strategy for terminal {terminal.name}")
        explicit[terminal.name] = st.tuples(token, gap).map("".join)
    return _bounded_programs(start, rules, explicit)


@cache
def _full_grammar() -> lark.Lark:
    """The grammar with its rules (a parser loaded from the cache keeps its tables only)."""
    from .._grammar import _OPTIONS

    return lark.Lark(grammar_text(), **_OPTIONS)


#: How many rule expansions a drawn text may spend beyond the shortest one. `from_lark` has no
#: bound: with the second edition's grammar most of its draws ran past Hypothesis's buffer and
#: were thrown away, and a hundred expressions took minutes.
_FUEL = 60


def _bounded_programs(
    start: str, rules: Sequence[lark.grammar.Rule], tokens: Mapping[str, st.SearchStrategy[str]]
) -> st.SearchStrategy[str]:
    """Texts derived from `start` by `rules`, each terminal drawn from `tokens`.

    Each rule is expanded by one of its alternatives, shortest first (so that Hypothesis
    shrinks towards short texts). Every expansion spends fuel, drawn per text; once it is
    spent, only the alternatives that finish soonest are drawn, so every text is finite and
    most are short, while nesting as deep as the fuel allows stays possible.
    """
    alternatives: dict[str, list[tuple[lark.grammar.Symbol, ...]]] = {}
    for rule in rules:
        alternatives.setdefault(rule.origin.name, []).append(tuple(rule.expansion))
    height: dict[str, int] = {}  # the fewest levels a rule needs to reach terminals only
    changed = True
    while changed:
        changed = False
        for name, alts in alternatives.items():
            best = min(_alt_height(alt, height) for alt in alts)
            if best < height.get(name, _NEVER):
                height[name], changed = best, True
    choices = {
        name: sorted(alts, key=lambda alt: (len(alt), _alt_height(alt, height)))
        for name, alts in alternatives.items()
    }
    shortest = {
        name: [alt for alt in alts if _alt_height(alt, height) == height[name]]
        for name, alts in choices.items()
    }

    @st.composite
    def programs(draw: st.DrawFn) -> str:
        out: list[str] = []
        fuel = draw(st.integers(0, _FUEL))

        def expand(symbol: lark.grammar.Symbol) -> None:
            nonlocal fuel
            if symbol.is_term:
                out.append(draw(tokens[symbol.name]))
                return
            fuel -= 1
            alts = choices[symbol.name] if fuel > 0 else shortest[symbol.name]
            for part in draw(st.sampled_from(alts)):
                expand(part)

        expand(lark.grammar.NonTerminal(start))
        return "".join(out)

    return programs()


_NEVER = 1 << 30


def _alt_height(alt: tuple[lark.grammar.Symbol, ...], height: Mapping[str, int]) -> int:
    return 1 + max((0 if s.is_term else height.get(s.name, _NEVER) for s in alt), default=0)
