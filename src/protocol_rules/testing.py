"""Hypothesis strategies for testing protocols and the engine, outside the evaluation pipeline.

For protocol authors and for the engine's own property tests:

- `patients(protocol)` draws valid patient records for a protocol, biased toward the values
  that decide it: every threshold the protocol compares a fact with (read from the checked
  protocol, through unit conversions, multipliers such as ``2 * baseline_creatinine`` and
  defines), every window edge, every date at which a `time_since` condition flips;
- `boundaries(protocol)` lists those thresholds;
- `expressions(facts)` and `protocols()` draw random well-typed rules text.

Needs Hypothesis (``pip install hypothesis``); the engine itself does not.

    from hypothesis import given
    from protocol_rules import load_protocol
    from protocol_rules.testing import patients

    protocol = load_protocol("protocols/nct04194671.rules")

    @given(patients(protocol))
    def test_never_crashes(patient):
        protocol.evaluate(patient)
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from functools import cache
from typing import Any, NamedTuple

from attrs import frozen
from hypothesis import strategies as st

from . import units as _units
from ._grammar import grammar_text
from .ast import TIME_WORDS
from .check import FactInfo, ir
from .check.types import (
    BOOL,
    INTEGER,
    NUMBER,
    TEXT,
    BoolT,
    ChoiceT,
    NumT,
    QtyT,
    SeriesT,
    SetT,
    TextT,
    TimeT,
    Type,
)
from .protocol import Protocol, parse_protocol

__all__ = [
    "Boundaries",
    "Linear",
    "boundaries",
    "compatible_units",
    "exact_in",
    "expressions",
    "grammar_programs",
    "patients",
    "protocols",
]

DAY = 86400.0
#: Significant digits of the values `patients` draws, as measured values have: fewer than the
#: 12 the engine keeps through a unit conversion (`units.clean`).
SIGNIFICANT_DIGITS = 10

#: UCUM units tried as alternatives to a fact's declared unit.
CANDIDATE_UNITS = (
    *("mg/dL", "mg/L", "g/L", "g/dL", "ug/mL", "umol/L", "mmol/L"),
    *("/uL", "/mm3", "/L", "10*3/uL", "10*9/L"),
    *("a", "mo", "wk", "d", "h", "min", "s"),
    *("%", "mL/kg/h", "L/kg/h", "mg/d", "g/d", "mg/h"),
    *("mL/min/{1.73_m2}", "L/h/{1.73_m2}", "mL/s/{1.73_m2}"),
    *("kg", "g", "cm", "m", "mm[Hg]", "U/L", "/min", "kg/m2"),
)
_ANNOTATION = re.compile(r"\{[^}]*\}")


# --------------------------------------------------------------------------- units


@cache
def compatible_units(unit: str, molar_mass: float | None = None) -> tuple[str, ...]:
    """The declared unit and the `CANDIDATE_UNITS` a value in `unit` converts into.

    A unit with a UCUM annotation (``{1.73_m2}``) only matches units with the same annotation,
    so ``mL/min`` is not offered for an eGFR.
    """
    found = [unit]
    for candidate in CANDIDATE_UNITS:
        if candidate == unit or _ANNOTATION.findall(candidate) != _ANNOTATION.findall(unit):
            continue
        try:
            _units.conversion(unit, candidate, molar_mass)
            _units.conversion(candidate, unit, molar_mass)
        except _units.UnitError:
            continue
        found.append(candidate)
    return tuple(found)


def exact_in(value: float, unit: str, target: str, molar_mass: float | None = None) -> float | None:
    """`value` (in `unit`) expressed exactly in `target`, or None when no decimal can be.

    Exact in the decimal sense in which JSON carries numbers: the value's decimal times the
    exact ratio of the two units is a decimal that a float holds as written. ``3 'mo'`` is
    ``91.3125 'd'`` and ``60 'mL/min/{1.73_m2}'`` is ``3.6 'L/h/{1.73_m2}'``, but three months
    are no decimal number of weeks. A correct engine reads an exact re-expression back as
    exactly the same value; that is what the unit-invariance law checks.
    """
    if unit == target:
        return value
    factor = _exact_factor(unit, target, molar_mass)
    if factor is None or not math.isfinite(value):
        return None
    exact = Fraction(repr(float(value))) * factor
    if not _terminates(exact):
        return None
    there = float(exact)
    return there if Fraction(repr(there)) == exact else None


@cache
def _exact_factor(unit: str, target: str, molar_mass: float | None) -> Fraction | None:
    """The ratio of two units as a fraction with a small denominator (``50/3``), if any.

    Read from the float factors of both directions, so that a factor the units library
    rounded (16.666… for L/h -> mL/min) is recognised from its exact inverse (0.06).
    """
    forward = _units.conversion(unit, target, molar_mass)
    backward = _units.conversion(target, unit, molar_mass)
    if forward.offset or backward.offset or not forward.factor or not backward.factor:
        return None
    candidates = []
    for factor, inverse in ((forward.factor, False), (backward.factor, True)):
        ratio = Fraction(factor).limit_denominator(10**7)
        if ratio:
            candidates.append(1 / ratio if inverse else ratio)

    def close(a: float, b: float) -> bool:
        return abs(a - b) <= 1e-11 * abs(b)

    good = [
        q
        for q in candidates
        if close(float(q), forward.factor) and close(float(1 / q), backward.factor)
    ]
    return min(good, key=lambda q: q.denominator, default=None)


def _terminates(number: Fraction) -> bool:
    """Whether a fraction has a finite decimal expansion."""
    denominator = number.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    return denominator == 1


# --------------------------------------------------------------------------- boundaries


@frozen
class Linear:
    """``scale * x + offset``, where x is a fact's value in its declared unit.

    `kind` is ``value`` for numbers and quantities; ``instant`` when x is a date in seconds
    since the epoch; ``since`` when x is the days from a date to `as_of` (`time_since`).
    """

    fact: str
    scale: float = 1.0
    offset: float = 0.0
    kind: str = "value"

    def then(self, scale: float, offset: float = 0.0) -> Linear:
        return Linear(self.fact, scale * self.scale, scale * self.offset + offset, self.kind)

    def solve(self, target: float) -> float | None:
        """The fact value at which this expression equals `target`."""
        if self.scale == 0:
            return None
        x = (target - self.offset) / self.scale
        return x if math.isfinite(x) else None


@frozen
class Boundaries:
    """The values at which a protocol's outcomes can flip, read from its checked bodies.

    `values` are thresholds per fact in its declared unit (for a series: of its observations);
    `windows` the window lengths per series in seconds; `ages` the `time_since` thresholds per
    date fact in days; `instants` the dates a date fact is compared with (epoch seconds);
    `relations` pairs of facts compared with each other (``max(…) > 2 * baseline``); `texts`
    the texts a text fact is compared with.
    """

    values: Mapping[str, tuple[float, ...]]
    windows: Mapping[str, tuple[float, ...]]
    ages: Mapping[str, tuple[float, ...]]
    instants: Mapping[str, tuple[float, ...]]
    relations: tuple[tuple[Linear, Linear], ...]
    texts: Mapping[str, tuple[str, ...]]


def boundaries(protocol: Protocol) -> Boundaries:
    """Every threshold, window and relation the protocol's criteria and defines compare."""
    harvester = _Harvester({d.name: d.body for d in protocol.defines})
    for define in protocol.defines:
        harvester.visit(define.body)
    for criterion in protocol.criteria:
        harvester.visit(criterion.body)
    return harvester.result()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class _Harvester:
    def __init__(self, defines: Mapping[str, ir.Node]) -> None:
        self.defines = defines
        self.found: dict[str, dict[str, set[Any]]] = {
            k: {} for k in ("value", "windows", "since", "instant", "texts")
        }
        self.relations: dict[tuple[Linear, Linear], None] = {}
        self.each: list[Linear | None] = []
        self._busy: set[str] = set()

    def result(self) -> Boundaries:
        def frozen_(kind: str) -> dict[str, tuple[Any, ...]]:
            return {k: tuple(sorted(v)) for k, v in self.found[kind].items()}

        return Boundaries(
            frozen_("value"),
            frozen_("windows"),
            frozen_("since"),
            frozen_("instant"),
            tuple(self.relations),
            frozen_("texts"),
        )

    def _add(self, kind: str, fact: str, value: Any) -> None:
        self.found[kind].setdefault(fact, set()).add(value)

    def visit(self, node: ir.Node) -> None:
        match node:
            case ir.Compare(left=left, right=right):
                self._compare(left, right)
            case ir.Between(operand=operand, low=low, high=high):
                self._compare(operand, low)
                self._compare(operand, high)
            case ir.InSet(operand=operand, items=items) | ir.Contains(
                collection=operand, items=items
            ):
                for item in items:
                    self._compare(operand, item)
            case ir.Window(series=ir.FactRef(name=name), seconds=ir.Const(value=seconds)):
                if _number(seconds) is not None:
                    self._add("windows", name, float(seconds))
            case ir.Quantified(window=window, condition=condition):
                self.visit(window)
                self.each.append(self.linear(window))
                self.visit(condition)
                self.each.pop()
                return
        for child in ir.children(node):
            self.visit(child)

    def _compare(self, a: ir.Node, b: ir.Node) -> None:
        for x, y in ((a, b), (b, a)):
            if isinstance(y, ir.Const) and isinstance(y.value, str):
                if isinstance(x, ir.FactRef) and _element(x.type) == TEXT:
                    self._add("texts", x.name, y.value)
                continue
            lin = self.linear(x)
            if lin is None:
                continue
            if isinstance(y, ir.Const):
                constant = _number(y.value)
                solved = lin.solve(constant) if constant is not None else None
                if solved is not None:
                    self._add(lin.kind, lin.fact, solved)
            else:
                other = self.linear(y)
                same_kind = other is not None and other.kind == lin.kind == "value"
                if same_kind and other.fact != lin.fact:  # type: ignore[union-attr]
                    if (other, lin) not in self.relations:
                        self.relations[(lin, other)] = None  # type: ignore[index]

    def linear(self, node: ir.Node) -> Linear | None:
        """`node` as a linear function of one fact, if it is one."""
        match node:
            case ir.FactRef(name=name, type=SeriesT(element=NumT() | QtyT())):
                return Linear(name)
            case ir.FactRef(name=name, type=NumT() | QtyT()):
                return Linear(name)
            case ir.FactRef(name=name, type=TimeT()):
                return Linear(name, kind="instant")
            case ir.Window(series=series):
                return self.linear(series)
            case ir.Aggregate(function=function, window=window) if function not in (
                "count",
                "exists",
            ):
                return self.linear(window)
            case ir.Each():
                return self.each[-1] if self.each else None
            case ir.Convert(operand=operand, conversion=conversion):
                inner = self.linear(operand)
                return inner.then(conversion.factor, conversion.offset) if inner else None
            case ir.Negate(operand=operand):
                inner = self.linear(operand)
                return inner.then(-1.0) if inner else None
            case ir.Arith():
                return self._arith(node)
            case ir.TimeSince(operand=operand):
                inner = self.linear(operand)
                if inner is None or inner.kind != "instant" or inner.scale != 1.0:
                    return None
                return Linear(inner.fact, 1.0, -inner.offset / DAY, "since")
            case ir.DateShift(sign=sign, date=when, seconds=ir.Const(value=seconds)):
                inner = self.linear(when)
                shift = _number(seconds)
                return inner.then(1.0, sign * shift) if inner and shift is not None else None
            case ir.DefineRef(name=name) if name in self.defines and name not in self._busy:
                self._busy.add(name)
                try:
                    return self.linear(self.defines[name])
                finally:
                    self._busy.discard(name)
        return None

    def _arith(self, node: ir.Arith) -> Linear | None:
        left, right = node.left, node.right
        lc = _number(left.value) if isinstance(left, ir.Const) else None
        rc = _number(right.value) if isinstance(right, ir.Const) else None
        op = node.op.value
        if rc is not None and (inner := self.linear(left)):
            if op == "*":
                return inner.then(rc * node.scale)
            if op == "/" and rc != 0:
                return inner.then(node.scale / rc)
            if op in "+-" and node.scale == 1.0:
                return inner.then(1.0, rc if op == "+" else -rc)
        if lc is not None and (inner := self.linear(right)):
            if op == "*":
                return inner.then(lc * node.scale)
            if op == "+":
                return inner.then(1.0, lc)
            if op == "-":
                return inner.then(-1.0, lc)
        return None


def _near(threshold: float, integer: bool) -> list[float]:
    """A threshold and the values just around it."""
    if integer:
        low, high = math.floor(threshold), math.ceil(threshold)
        return sorted({low - 1, low, high, high + 1})
    magnitude = abs(threshold) or 1.0
    step = 10.0 ** (math.floor(math.log10(magnitude)) - 3)
    tiny = magnitude * 1e-9
    around = [threshold - step, threshold - tiny, threshold, threshold + tiny, threshold + step]
    return [_units.clean(x) for x in around]


# --------------------------------------------------------------------------- patients


class _Plan:
    """What `patients` precomputes for one protocol."""

    def __init__(self, protocol: Protocol, unit_choice: Any, bias: bool) -> None:
        self.protocol = protocol
        self.bounds = boundaries(protocol)
        self.bias = bias
        self.units: dict[str, tuple[str, ...]] = {}
        for fact in protocol.facts:
            element = _element(fact.type)
            if not isinstance(element, QtyT):
                continue
            if unit_choice == "declared":
                self.units[fact.name] = (element.unit,)
            elif isinstance(unit_choice, Mapping) and fact.name in unit_choice:
                self.units[fact.name] = tuple(unit_choice[fact.name])
            else:
                self.units[fact.name] = compatible_units(element.unit, element.molar_mass)

    def near(self, fact: FactInfo, element: Type) -> list[float]:
        integer = isinstance(element, NumT) and element.integer
        out: set[float] = set()
        for threshold in self.bounds.values.get(fact.name, ()):
            out.update(_near(threshold, integer))
        return sorted(v for v in out if _in_range(fact, v))


def _element(type_: Type) -> Type:
    return type_.element if isinstance(type_, SeriesT | SetT) else type_


def _in_range(fact: FactInfo, value: float) -> bool:
    if not math.isfinite(value):
        return False
    if fact.low is not None and fact.high is not None:
        return fact.low <= value <= fact.high
    return True


def _iso(moment: datetime) -> str:
    text = moment.isoformat()
    return text.replace("+00:00", "Z")


def patients(
    protocol: Protocol,
    *,
    as_of: datetime | str | st.SearchStrategy[datetime] | None = None,
    absent: float = 0.15,
    units: str | Mapping[str, Sequence[str]] = "any",
    fixed: Mapping[str, Any] | None = None,
    bias: bool = True,
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid patient records for `protocol`, with their ``"as_of"``.

    Args:
        protocol: the loaded protocol whose declared facts the records hold.
        as_of: the evaluation time, or a strategy for it; by default a date in 2020-2030 at a
            time of day that puts `time_since` thresholds exactly on a day boundary.
        absent: how often (0 to 1) a fact is left out (as a missing key or as ``null``).
        units: ``"any"`` sends quantities in randomly chosen compatible units (converted
            exactly, see `exact_in`), ``"declared"`` always in the declared unit, or a mapping
            fact name -> the units allowed for it.
        fixed: facts given these values in every record (``None`` leaves a fact absent).
        bias: draw values at and around the protocol's thresholds and window edges about
            half of the time (see `boundaries`).

    Values have at most `SIGNIFICANT_DIGITS` significant digits, besides those just around a
    threshold (one part in a billion away from it).
    """
    plan = _Plan(protocol, units, bias)
    fixed = dict(fixed or {})
    moments = _as_of_strategy(plan.bounds, as_of)
    percent = round(max(0.0, min(1.0, absent)) * 100)

    @st.composite
    def draw_patient(draw: st.DrawFn) -> dict[str, Any]:
        now = draw(moments)
        record: dict[str, Any] = {"as_of": _iso(now)}
        declared: dict[str, float] = {}
        for fact in protocol.facts:
            if fact.name in fixed:
                if fixed[fact.name] is not None:
                    record[fact.name] = fixed[fact.name]
                continue
            if percent and draw(st.integers(0, 99)) < percent:
                if draw(st.booleans()):
                    record[fact.name] = None
                continue
            record[fact.name] = _value(draw, plan, fact, now, declared)
        if plan.bias and plan.bounds.relations and draw(st.booleans()):
            _relate(draw, plan, record, declared, now, fixed)
        return record

    return draw_patient()


def _as_of_strategy(
    bounds: Boundaries, as_of: datetime | str | st.SearchStrategy[datetime] | None
) -> st.SearchStrategy[datetime]:
    if isinstance(as_of, st.SearchStrategy):
        return as_of.map(_aware)
    if as_of is not None:
        return st.just(_aware(as_of))
    aligned = {round((days % 1) * DAY) % 86400 for v in bounds.ages.values() for days in v}
    times = st.sampled_from(sorted({0, 8 * 3600, *aligned})) | st.integers(0, 86399)
    days = st.dates(date(2020, 1, 1), date(2030, 12, 31))
    return st.builds(
        lambda day, seconds: datetime(day.year, day.month, day.day, tzinfo=UTC)
        + timedelta(seconds=seconds),
        days,
        times,
    )


def _aware(moment: datetime | str) -> datetime:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _value(
    draw: st.DrawFn, plan: _Plan, fact: FactInfo, now: datetime, declared: dict[str, float]
) -> Any:
    type_ = fact.type
    if isinstance(type_, SeriesT):
        return _series(draw, plan, fact, type_.element, now)
    if isinstance(type_, SetT):
        element = type_.element
        if isinstance(element, ChoiceT):
            return draw(st.lists(st.sampled_from(element.choices), unique=True, max_size=4))
        texts = plan.bounds.texts.get(fact.name, ())
        pool = st.sampled_from(texts) | st.text(max_size=8) if texts else st.text(max_size=8)
        return draw(st.lists(pool, unique=True, max_size=4))
    if isinstance(type_, TimeT):
        return _instant(draw, plan, fact, type_, now)
    if isinstance(type_, NumT | QtyT):
        value = _magnitude(draw, plan, fact, type_)
        declared[fact.name] = value
        return _express(draw, plan, fact, type_, value)
    return _plain(draw, plan, fact, type_)


def _plain(draw: st.DrawFn, plan: _Plan, fact: FactInfo, type_: Type) -> Any:
    match type_:
        case BoolT():
            return draw(st.booleans())
        case ChoiceT(choices=choices):
            return draw(st.sampled_from(choices))
        case TextT():
            texts = plan.bounds.texts.get(fact.name, ())
            return draw(st.sampled_from(texts) | st.text(max_size=8) if texts else st.text())
    raise AssertionError(type_)  # pragma: no cover - every declared type is handled


def _magnitude(draw: st.DrawFn, plan: _Plan, fact: FactInfo, element: Type) -> float:
    """A value in the declared unit: near a threshold, or anywhere in a plausible range."""
    integer = isinstance(element, NumT) and element.integer
    near = plan.near(fact, element) if plan.bias else []
    if near and draw(st.booleans()):
        value = draw(st.sampled_from(near))
        return int(value) if integer else value
    thresholds = [abs(t) for t in plan.bounds.values.get(fact.name, ())]
    top = max([100.0, *(4 * t for t in thresholds)])
    low = fact.low if fact.low is not None else 0.0
    high = fact.high if fact.high is not None else top
    if integer:
        return draw(st.integers(math.ceil(low), math.floor(high)))
    value = draw(st.floats(low, high, allow_nan=False, allow_infinity=False))
    rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return rounded if _in_range(fact, rounded) else value


def _express(draw: st.DrawFn, plan: _Plan, fact: FactInfo, element: Type, value: float) -> Any:
    """A declared-unit value as the patient sends it: bare, or in another unit exactly."""
    if not isinstance(element, QtyT):
        return value
    declared = element.unit
    unit = draw(st.sampled_from(plan.units.get(fact.name, (declared,))))
    if unit != declared:
        there = exact_in(value, declared, unit, element.molar_mass)
        if there is not None:
            return {"value": there, "unit": unit}
    return value if draw(st.booleans()) else {"value": value, "unit": declared}


def _series(
    draw: st.DrawFn, plan: _Plan, fact: FactInfo, element: Type, now: datetime
) -> list[dict[str, Any]]:
    windows = plan.bounds.windows.get(fact.name, ())
    longest = max(windows, default=30 * DAY)
    edges = sorted({0.0, -1.0, *(x for w in windows for x in (w - 1, w, w + 1, w / 2))})
    offsets = st.integers(-3600, int(2 * longest)).map(float)
    if plan.bias and edges:
        offsets = st.sampled_from(edges) | offsets
    zones = st.sampled_from([timedelta(0), timedelta(hours=8), timedelta(hours=-5)])
    observations = []
    for _ in range(draw(st.integers(0, 6))):
        seconds = draw(offsets)
        at = (now - timedelta(seconds=seconds)).astimezone(_zone(draw(zones)))
        observation: dict[str, Any] = {"at": _iso(at)}
        if isinstance(element, NumT | QtyT):
            magnitude = _magnitude(draw, plan, fact, element)
            value = _express(draw, plan, fact, element, magnitude)
            if isinstance(value, dict):
                observation.update(value)
            else:
                observation["value"] = value
        else:
            observation["value"] = _plain(draw, plan, fact, element)
        observations.append(observation)
    return observations


def _zone(offset: timedelta) -> Any:
    from datetime import timezone

    return timezone(offset)


def _instant(
    draw: st.DrawFn, plan: _Plan, fact: FactInfo, type_: TimeT, now: datetime
) -> str:
    """A date (or datetime) near the `time_since` thresholds and compared dates, or anywhere."""
    edges: set[datetime] = set()
    for days in plan.bounds.ages.get(fact.name, ()):
        with contextlib.suppress(OverflowError):
            edges.add(now - timedelta(days=days))
    for seconds in plan.bounds.instants.get(fact.name, ()):
        with contextlib.suppress(OverflowError, ValueError, OSError):
            edges.add(datetime.fromtimestamp(seconds, UTC))
    edges = {e for e in edges if datetime(1, 1, 3, tzinfo=UTC) < e < datetime(9999, 12, 30, tzinfo=UTC)}
    if type_.has_time:
        candidates = sorted({e + timedelta(seconds=s) for e in edges for s in (-1, 0, 1)})
        anywhere = st.integers(-400 * 86400, 3650 * 86400).map(
            lambda s: now - timedelta(seconds=s)
        )
        pick = st.sampled_from(candidates) | anywhere if plan.bias and candidates else anywhere
        return _iso(draw(pick).astimezone(UTC))
    days = sorted({(e.date() + timedelta(days=d)) for e in edges for d in (-1, 0, 1, 2)})
    anywhere_day = st.integers(-400, 3650).map(lambda d: now.date() - timedelta(days=d))
    pick_day = st.sampled_from(days) | anywhere_day if plan.bias and days else anywhere_day
    return draw(pick_day).isoformat()


def _relate(
    draw: st.DrawFn,
    plan: _Plan,
    record: dict[str, Any],
    declared: dict[str, float],
    now: datetime,
    fixed: Mapping[str, Any],
) -> None:
    """Put one fact exactly at (or just around) where a relation between two facts flips."""
    pairs = [
        (a, b)
        for left, right in plan.bounds.relations
        for a, b in ((left, right), (right, left))
        if b.fact in declared and a.fact not in fixed
    ]
    if not pairs:
        return
    left, right = draw(st.sampled_from(pairs))
    target = left.solve(right.scale * declared[right.fact] + right.offset)
    fact = plan.protocol.fact(left.fact)
    element = _element(fact.type)
    if target is None or not isinstance(element, NumT | QtyT):
        return
    integer = isinstance(element, NumT) and element.integer
    value = _units.clean(draw(st.sampled_from(_near(target, integer))))
    if integer and not float(value).is_integer():
        return
    if not _in_range(fact, value):
        return
    sent = _express(draw, plan, fact, element, int(value) if integer else value)
    if isinstance(fact.type, SeriesT):
        windows = plan.bounds.windows.get(fact.name, (DAY,))
        seconds = draw(st.sampled_from([0.0, min(windows) / 2, min(windows)]))
        observation = {"at": _iso(now - timedelta(seconds=seconds))}
        observation.update(sent if isinstance(sent, dict) else {"value": sent})
        series = record.get(fact.name) or []
        record[fact.name] = [*series, observation]
    else:
        record[fact.name] = sent
        declared[fact.name] = value


# --------------------------------------------------------------------------- expressions

_OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _UNARY, _ATOM = range(1, 9)
_OPS = ("<", "<=", ">", ">=", "=", "!=")
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
    """Names usable in expressions, by type."""

    def __init__(self, named: Iterable[tuple[str, Type]]) -> None:
        self.all: list[tuple[str, Type]] = list(named)
        self.bools = [n for n, t in self.all if isinstance(t, BoolT)]
        self.scalars = [(n, t) for n, t in self.all if isinstance(t, NumT | QtyT)]
        self.series = [(n, t.element) for n, t in self.all if isinstance(t, SeriesT)]
        self.choices = [(n, t) for n, t in self.all if isinstance(t, ChoiceT)]
        self.sets = [(n, t.element) for n, t in self.all if isinstance(t, SetT)]
        self.times = [(n, t) for n, t in self.all if isinstance(t, TimeT)]
        self.texts = [n for n, t in self.all if isinstance(t, TextT)]


def _literal(type_: Type) -> st.SearchStrategy[str]:
    """A literal of a number or quantity type, possibly in another compatible unit."""
    numbers = st.sampled_from(_NICE) | st.integers(0, 500) | st.decimals(0, 100, places=2)
    if isinstance(type_, QtyT):
        options = compatible_units(type_.unit, type_.molar_mass)
        if type_.is_duration:
            words = st.sampled_from(("years", "months", "weeks", "days", "hours"))
            return st.tuples(numbers, words).map(lambda p: f"{_num_text(float(p[0]))} {p[1]}")
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


def _terms(vocab: _Vocabulary) -> list[st.SearchStrategy[_Expr]]:
    """Numeric terms: names, aggregates of windows, scaled or shifted."""
    out: list[st.SearchStrategy[_Expr]] = []
    if vocab.scalars:
        out.append(st.sampled_from(vocab.scalars).map(lambda p: _Expr(p[0], _ATOM, p[1])))
    numeric_series = [(n, e) for n, e in vocab.series if isinstance(e, NumT | QtyT)]
    if numeric_series:
        aggregate = st.sampled_from(("max", "min", "mean", "latest", "earliest"))
        out.append(
            st.tuples(aggregate, st.sampled_from(numeric_series), _duration()).map(
                lambda p: _Expr(
                    f"{p[0]}({p[1][0]} over last {p[2]})",
                    _ATOM,
                    NUMBER if p[0] == "mean" and isinstance(p[1][1], NumT) else p[1][1],
                )
            )
        )
    if vocab.series:
        out.append(
            st.tuples(st.sampled_from(vocab.series), _duration()).map(
                lambda p: _Expr(f"count({p[0][0]} over last {p[1]})", _ATOM, INTEGER)
            )
        )
    dates = [n for n, t in vocab.times if not t.has_time]
    if dates:
        out.append(
            st.sampled_from(dates).map(lambda n: _Expr(f"time_since({n})", _ATOM, QtyT("d")))
        )
    return out


def _scaled(term: st.SearchStrategy[_Expr]) -> st.SearchStrategy[_Expr]:
    def build(draw: st.DrawFn) -> _Expr:
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

    return st.composite(build)()


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
        out.append(st.composite(lambda draw: _comparison(draw, _scaled(st.one_of(terms))))())
    if vocab.choices:
        out.append(st.composite(lambda draw: _choice(draw, vocab))())
    if vocab.sets:
        out.append(st.composite(lambda draw: _contains(draw, vocab))())
    if vocab.series:
        out.append(st.composite(lambda draw: _quantified(draw, vocab))())
    if vocab.times:
        out.append(st.composite(lambda draw: _dated(draw, vocab))())
    if vocab.texts:
        out.append(
            st.tuples(st.sampled_from(vocab.texts), st.text(max_size=6)).map(
                lambda p: _Expr(f"{p[0]} = {_quote(p[1])}", _COMPARE)
            )
        )
    return out


def _atom(text: str) -> _Expr:
    return _Expr(text, _ATOM, BOOL)


def _comparison(draw: st.DrawFn, terms: st.SearchStrategy[_Expr]) -> _Expr:
    term = draw(terms)
    assert term.type is not None
    left = _paren(term, _SUM)
    form = draw(st.sampled_from(("compare", "between", "in")))
    if form == "between":
        low, high = sorted(draw(st.lists(st.sampled_from(_NICE), min_size=2, max_size=2)))
        unit = _unit_suffix(draw, term.type)
        return _Expr(
            f"{left} between {_num_text(low)}{unit} and {_num_text(high)}{unit}", _COMPARE
        )
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


def _choice(draw: st.DrawFn, vocab: _Vocabulary) -> _Expr:
    name, choice = draw(st.sampled_from(vocab.choices))
    form = draw(st.sampled_from(("=", "!=", "in", "not in")))
    if form in ("=", "!="):
        return _Expr(f"{name} {form} {draw(st.sampled_from(choice.choices))}", _COMPARE)
    items = draw(st.lists(st.sampled_from(choice.choices), min_size=1, max_size=3, unique=True))
    return _Expr(f"{name} {form} {{{', '.join(items)}}}", _COMPARE)


def _contains(draw: st.DrawFn, vocab: _Vocabulary) -> _Expr:
    name, element = draw(st.sampled_from(vocab.sets))
    if isinstance(element, ChoiceT):
        pool = st.sampled_from(element.choices)
    else:
        pool = st.text(max_size=5).map(_quote)
    items = draw(st.lists(pool, min_size=1, max_size=3, unique=True))
    form = draw(st.sampled_from(("contains", "contains any of", "contains all of")))
    if form == "contains":
        return _Expr(f"{name} contains {items[0]}", _COMPARE)
    return _Expr(f"{name} {form} {{{', '.join(items)}}}", _COMPARE)


def _quantified(draw: st.DrawFn, vocab: _Vocabulary) -> _Expr:
    name, element = draw(st.sampled_from(vocab.series))
    window = f"{name} over last {draw(_duration())}"
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
    if draw(st.booleans()):
        return _atom(f"exists({window})")
    op = draw(st.sampled_from(_OPS))
    return _Expr(f"{quantifier}({window}) {op} {draw(_literal(element))}", _COMPARE)


def _dated(draw: st.DrawFn, vocab: _Vocabulary) -> _Expr:
    name, type_ = draw(st.sampled_from(vocab.times))
    day = draw(st.dates(date(2015, 1, 1), date(2030, 12, 31)))
    literal = f"@{day.isoformat()}" + ("T08:00" if type_.has_time else "")
    op = draw(st.sampled_from(_OPS[:4]))
    if draw(st.booleans()):
        return _Expr(f"{name} + {draw(_duration())} {op} {literal}", _COMPARE)
    return _Expr(f"{name} {op} {literal}", _COMPARE)


def _boolean(vocab: _Vocabulary, depth: int, known: bool = True) -> st.SearchStrategy[_Expr]:
    leaves = st.one_of(_conditions(vocab, known))
    if depth <= 0:
        return leaves
    inner = st.deferred(lambda: _boolean(vocab, depth - 1, known))
    extra = st.integers(0, 5).map(lambda i: i == 0)  # a redundant pair of parentheses

    def negation(draw: st.DrawFn) -> _Expr:
        operand = draw(inner)
        return _Expr(f"not {_paren(operand, _NOT, draw(extra))}", _NOT, BOOL)

    def chain(draw: st.DrawFn) -> _Expr:
        op = draw(st.sampled_from(("and", "or")))
        need, prec = (_NOT, _AND) if op == "and" else (_AND, _OR)
        operands = draw(st.lists(inner, min_size=2, max_size=3))
        return _Expr(f" {op} ".join(_paren(o, need, draw(extra)) for o in operands), prec, BOOL)

    def count(draw: st.DrawFn) -> _Expr:
        operands = draw(st.lists(inner, min_size=1, max_size=4))
        n = draw(st.integers(0, len(operands)))
        word = draw(st.sampled_from(("at least", "at most")))
        return _atom(f"{word} {n} of ({', '.join(o.text for o in operands)})")

    composite = st.one_of(
        st.composite(negation)(), st.composite(chain)(), st.composite(count)()
    )
    return st.one_of(leaves, composite)


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
        lines = [f"fact {name}: {type_}" for name, type_ in facts.items()]
        text = "\n".join(["protocol facts", *lines, 'inclusion I1 "x": true'])
        return list(parse_protocol(text, "<facts>").facts)
    return list(facts)


# --------------------------------------------------------------------------- protocols

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
    ("text", TEXT),
    ("series of quantity 'mg/dL' molar_mass 113.12 'g/mol'", SeriesT(QtyT("mg/dL", 113.12))),
    ("series of quantity 'mL/kg/h'", SeriesT(QtyT("mL/kg/h"))),
    ("series of number", SeriesT(NUMBER)),
    ("series of boolean", SeriesT(BOOL)),
    ("set of text", SetT(TEXT)),
)
_TEXT = st.text(
    st.characters(codec="utf-8", exclude_characters="\n\r", exclude_categories=("Cs", "Cc")),
    max_size=30,
)


def _names(prefix: str = "") -> st.SearchStrategy[str]:
    fresh = st.from_regex(r"[a-z][a-z0-9_]{0,9}", fullmatch=True)
    return (st.sampled_from(_WORDS) | fresh).map(lambda n: prefix + n)


@st.composite
def protocols(
    draw: st.DrawFn,
    *,
    max_facts: int = 8,
    max_criteria: int = 5,
    messy: bool = False,
) -> str:
    """Rules text of a random protocol that parses and checks without errors.

    Facts of every type, boolean defines that criteria use, criteria with texts and notes.
    With `messy`, tokens are laid out with random spaces, newlines and comments, which a
    formatter or a parser must not care about.
    """
    reserved = reserved_words()
    names = draw(
        st.lists(
            _names().filter(lambda n: n not in reserved),
            min_size=1,
            max_size=max_facts + 2,
            unique=True,
        )
    )
    fact_names, define_names = names[: max(1, len(names) - 2)], names[max(1, len(names) - 2) :]
    lines = [_header(draw)]
    named: list[tuple[str, Type]] = []
    for name in fact_names:
        if draw(st.integers(0, 5)) == 0:
            choices = [f"{name}_{c}" for c in ("a", "b", "c")[: draw(st.integers(1, 3))]]
            wrapper = draw(st.sampled_from(("", "series of ", "set of ")))
            declared = f"{wrapper}one of {', '.join(choices)}"
            type_: Type = ChoiceT(tuple(choices), name)
            type_ = {"": type_, "series of ": SeriesT(type_), "set of ": SetT(type_)}[wrapper]
        else:
            declared, type_ = draw(st.sampled_from(_FACT_TYPES))
        description = f" {_quote(draw(_TEXT))}" if draw(st.booleans()) else ""
        lines.append(f"fact {name}: {declared}{description}")
        named.append((name, type_))
    for name in define_names:
        body = draw(_boolean(_Vocabulary(named), 2))
        lines.append(f"define {name} =\n  {body.text}")
        named.append((name, BOOL))
    vocab = _Vocabulary(named)
    count = draw(st.integers(1, max_criteria))
    for i in range(count):
        kind, ident = ("inclusion", f"I{i + 1}") if i % 2 == 0 else ("exclusion", f"E{i + 1}")
        note = f"\n  note {_quote(draw(_TEXT))}" if draw(st.booleans()) else ""
        body = draw(_boolean(vocab, 3))
        lines.append(f"{kind} {ident} {_quote(draw(_TEXT))}{note}:\n  {body.text}")
    text = "\n\n".join(lines) + "\n"
    return _scramble(draw, text) if messy else text


def _header(draw: st.DrawFn) -> str:
    ident = draw(st.sampled_from(("NCT01234567", '"MSC-001"', "demo_trial", '"protocol"')))
    keys = draw(st.lists(st.sampled_from(("title", "sponsor", "phase", "source")), unique=True))
    metas = [f"  {key} {_quote(draw(_TEXT))}" for key in keys]
    return "\n".join([f"protocol {ident}", *metas])


_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|@[0-9T:.+\-Z]+|[A-Za-z_][A-Za-z0-9_]*'
    r"|[0-9][0-9_]*(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|<=|>=|!=|\S"
)
_TIGHT = set("(){},:")
_SEPARATORS = (" ", " ", " ", "  ", "\n", "\n  ", "\t", " # a note\n", "\n# ' \" # x\n\n")


def _scramble(draw: st.DrawFn, text: str) -> str:
    """The same tokens with random whitespace and comments between them."""
    tokens = _TOKEN.findall(text)
    out = [tokens[0]]
    for before, token in zip(tokens, tokens[1:], strict=False):
        choices = _SEPARATORS
        if before in _TIGHT or token in _TIGHT:
            choices = ("", *_SEPARATORS)
        out.append(draw(st.sampled_from(choices)))
        out.append(token)
    return "".join(out) + "\n"


# --------------------------------------------------------------------------- grammar programs

_UNITS_WRITTEN = ("mg/dL", "/uL", "%", "a", "mo", "10*9/L", "g/mol", "mL/min/{1.73_m2}", "mg/d")
_DATES = ("@2026-03-01", "@2026-03-01T08:00", "@2026-03-01T08:00:00Z", "@2024-02-29")
_FUNCTIONS = ("max", "min", "mean", "sum", "latest", "earliest", "count", "exists", "time_since")


def grammar_programs(
    *, start: str = "start", names: Sequence[str] = (), numbers: Sequence[str] = ()
) -> st.SearchStrategy[str]:
    """Texts the grammar accepts, drawn with `hypothesis.extra.lark.from_lark`.

    `start` is a rule of the grammar: ``start`` for whole files, ``expr`` for expressions.

    Every token is followed by whitespace, a newline or a comment (`from_lark` would glue
    `fact` and `age` into `factage`), names avoid the reserved words, and numbers, units,
    texts and dates are drawn from small pools of plausible and odd spellings. Most texts
    parse; few check, since names are not declared consistently: for the parser, the
    formatter and the error paths of the checker. `names` and `numbers` extend the pools.
    """
    from hypothesis.extra.lark import from_lark

    from ._grammar import parser

    lark = parser()
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
    for name in lark.ignore_tokens:
        explicit[name] = st.just("# comment\n" if name == "COMMENT" else " ")
    return from_lark(lark, start=start, explicit=explicit)
