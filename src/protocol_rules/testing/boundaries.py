"""Where a protocol's outcomes can flip: thresholds, window edges and relations.

Read from the checked protocol (its IR), so that unit conversions, multipliers such as
``2 * baseline_creatinine`` and defines are seen through."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from .. import units as _units
from ..calendar import CalendarDuration, shift
from ..check import ir
from ..check.types import TEXT, NumT, QtyT, SeriesT, SetT, TimeT, Type
from ..protocol import Protocol

DAY = 86400.0


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
    the texts a text fact is compared with; `calendars` the calendar durations D per fact
    whose outcome flips when the fact is at ``as_of - D`` by calendar (`time_since(x) >= 18
    years`: 18 years; `x <= as_of + 7 months`: -7 months; `S over last 3 months`: 3 months).
    """

    values: Mapping[str, tuple[float, ...]]
    windows: Mapping[str, tuple[float, ...]]
    ages: Mapping[str, tuple[float, ...]]
    instants: Mapping[str, tuple[float, ...]]
    relations: tuple[tuple[Linear, Linear], ...]
    texts: Mapping[str, tuple[str, ...]]
    #: `count(S over last D) >= N` thresholds per series: how many observations flip it.
    counts: Mapping[str, tuple[float, ...]] = field(factory=dict)
    calendars: Mapping[str, tuple[CalendarDuration, ...]] = field(factory=dict)
    #: Per series, the edges of its windows that are not `as_of - D` (`S over last D before T`,
    #: `S from A to B`, `S over last time_since(x)`), each an `Edge`.
    edges: Mapping[str, tuple[Edge, ...]] = field(factory=dict)


@frozen
class Edge:
    """An edge of an anchored window: the instant ``anchor + offset - seconds``.

    `anchor` is a date fact's name, ``"as_of"``, or a number (epoch seconds of a literal).
    With `since`, the edge is ``as_of - time_since(anchor)`` (a computed window length).
    `whole_day`: the edge is a date end, which covers its whole day.
    """

    anchor: str | float
    offset: CalendarDuration = field(factory=CalendarDuration)
    seconds: float = 0.0
    since: bool = False
    whole_day: bool = False


def element_type(type_: Type) -> Type:
    """The type of one value of a series or a set; other types as they are."""
    return type_.element if isinstance(type_, SeriesT | SetT) else type_


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
            k: {}
            for k in (
                "value", "windows", "since", "instant", "texts", "counts", "calendars", "edges",
            )
        }  # fmt: skip
        self.relations: dict[tuple[Linear, Linear], None] = {}
        self.each: list[Linear | None] = []
        self._busy: set[str] = set()
        self.arguments: list[tuple[ir.Node, ...]] = []  # of the calls being visited

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
            frozen_("counts"),
            {k: tuple(sorted(v, key=repr)) for k, v in self.found["calendars"].items()},
            {k: tuple(sorted(v, key=repr)) for k, v in self.found["edges"].items()},
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
            case (
                ir.InSet(operand=operand, items=items)
                | ir.Contains(collection=operand, items=items)
            ):
                for item in items:
                    self._compare(operand, item)
            case ir.Window(series=ir.FactRef(name=name), start=None, end=None) if node.duration:
                if node.duration.months:
                    self._add("calendars", name, node.duration)
                else:
                    self._add("windows", name, float(node.duration.seconds))
            case ir.Window(
                series=ir.FactRef(name=name), start=None, end=None, length=ir.Const(value=length)
            ):
                if _number(length) is not None:
                    self._add("windows", name, float(length))
            case ir.Window(series=ir.FactRef(name=name)):
                for edge in _edges(node):
                    self._add("edges", name, edge)
            case ir.CalendarCompare(since=ir.TimeSince(operand=operand), durations=durations):
                fact = _fact_of(operand)
                for duration in durations if fact else ():
                    self._add("calendars", fact, duration)
            case (
                ir.Quantified(window=window, condition=condition)
                | ir.Filter(window=window, condition=condition)
                | ir.Consecutive(window=window, condition=condition)
            ):  # the condition tests each observation (`value` in a filter)
                self.visit(window)
                self.each.append(self.linear(window))
                self.visit(condition)
                self.each.pop()
                return
            case ir.FunctionCall(args=args, body=body):
                for arg in args:
                    self.visit(arg)
                self.arguments.append(args)
                self.visit(body)
                self.arguments.pop()
                return
        for child in ir.children(node):
            self.visit(child)

    def _compare(self, a: ir.Node, b: ir.Node) -> None:
        """Thresholds of `a` compared with `b`, seen through `if`, `first_known`, min/max…"""
        for x in _passed_through(a):
            for y in _passed_through(b):
                self._compare_one(x, y)
        self._calendar_compare(a, b)

    def _compare_one(self, a: ir.Node, b: ir.Node) -> None:
        for x, y in ((a, b), (b, a)):
            if isinstance(y, ir.Const) and _is_count(x):
                assert isinstance(x, ir.Aggregate)
                series = self._window(x.window).series
                if isinstance(series, ir.FactRef) and _number(y.value) is not None:
                    self._add("counts", series.name, float(y.value))
                continue
            if isinstance(y, ir.Const) and isinstance(y.value, str):
                if isinstance(x, ir.FactRef) and element_type(x.type) == TEXT:
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
                if (
                    other is not None
                    and other.kind == lin.kind == "value"
                    and other.fact != lin.fact
                    and (other, lin) not in self.relations
                ):
                    self.relations[(lin, other)] = None

    def _window(self, node: ir.Node) -> ir.Window:
        """The window a filtered window or a define of one reads."""
        while True:
            match node:
                case ir.Filter(window=inner):
                    node = inner
                case ir.DefineRef(name=name) if name in self.defines:
                    node = self.defines[name]
                case ir.Window():
                    return node
                case _:  # pragma: no cover - the checker gives aggregates windows
                    raise AssertionError(node)

    def _calendar_compare(self, a: ir.Node, b: ir.Node) -> None:
        """`x + 3 months <= as_of`, `x <= as_of + 7 months`, `x + 1 year < @2026-03-01`."""
        if not (isinstance(a.type, TimeT) and isinstance(b.type, TimeT)):
            return
        for x, y in ((a, b), (b, a)):
            moved, fact = _calendar_offset(x)
            if not isinstance(fact, str):
                continue
            other, anchor = _calendar_offset(y)
            if isinstance(anchor, ir.AsOf):  # fact + moved OP as_of + other
                self._add("calendars", fact, moved - other)
            elif isinstance(anchor, ir.Const) and _number(anchor.value) is not None:
                edge = shift(float(anchor.value), other)
                self._add("instant", fact, shift(edge, moved, -1))

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
            case ir.Each() | ir.ObservationValue():
                return self.each[-1] if self.each else None
            case ir.Filter(window=window):
                return self.linear(window)
            case ir.DayOf(operand=operand):
                return self.linear(operand)
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
            case ir.FunctionCall(args=args, body=body):
                self.arguments.append(args)
                try:
                    return self.linear(body)
                finally:
                    self.arguments.pop()
            case ir.Param(index=index) if self.arguments:
                args = self.arguments.pop()  # an argument is read in the caller's scope
                try:
                    return self.linear(args[index])
                finally:
                    self.arguments.append(args)
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


def _passed_through(node: ir.Node) -> list[ir.Node]:
    """`node` and the sub-expressions whose value it may take as is: the branches of an `if`,
    the operands of `first_known`, the arguments of `min`, `max`, `abs` and `round`."""
    out = [node]
    match node:
        case ir.If(then=then, otherwise=otherwise):
            out += _passed_through(then) + _passed_through(otherwise)
        case ir.FirstKnown(operands=operands):
            for operand in operands:
                out += _passed_through(operand)
        case ir.Math(function="min" | "max" | "abs" | "round", args=args):
            out += (
                _passed_through(args[0])
                if node.function in ("abs", "round")
                else [n for arg in args for n in _passed_through(arg)]
            )
    return out


def _is_count(node: ir.Node) -> bool:
    return isinstance(node, ir.Aggregate) and node.function == "count"


def _fact_of(node: ir.Node) -> str | None:
    while isinstance(node, ir.DayOf):
        node = node.operand
    return node.name if isinstance(node, ir.FactRef) else None


def _calendar_offset(node: ir.Node) -> tuple[CalendarDuration, Any]:
    """`node` as (calendar offset, what it is shifted from): a fact's name, `AsOf` or a Const."""
    offset = CalendarDuration()
    while True:
        match node:
            case ir.CalendarShift(sign=sign, instant=instant, duration=duration):
                offset = offset + (duration if sign > 0 else -duration)
                node = instant
            case ir.DayOf(operand=operand):
                node = operand
            case ir.FactRef(name=name):
                return offset, name
            case ir.AsOf() | ir.Const():
                return offset, node
            case _:
                return offset, None


def _edges(window: ir.Window) -> list[Edge]:
    """The edges of an anchored window (or of one with a computed length), where they are
    offsets of a date fact, `as_of` or a literal."""
    end = _anchor(window.end) if window.end is not None else (CalendarDuration(), "as_of")
    if end is None:
        return []
    out = [Edge(end[1], end[0], whole_day=_is_date(window.end))]
    if window.start is not None:
        start = _anchor(window.start)
        return out + ([Edge(start[1], start[0])] if start is not None else [])
    if window.duration is not None:
        return [*out, Edge(end[1], end[0] - window.duration)]
    match window.length:
        case ir.Const(value=seconds) if _number(seconds) is not None:
            return [*out, Edge(end[1], end[0], seconds=float(seconds))]
        case ir.Convert(operand=ir.TimeSince(operand=operand)) if window.end is None:
            fact = _fact_of(operand)
            return [*out, Edge(fact, since=True)] if fact else out
    return out


def _anchor(node: ir.Node) -> tuple[CalendarDuration, str | float] | None:
    offset, anchor = _calendar_offset(node)
    if isinstance(anchor, str):
        return offset, anchor
    if isinstance(anchor, ir.AsOf):
        return offset, "as_of"
    if isinstance(anchor, ir.Const) and _number(anchor.value) is not None:
        return offset, float(anchor.value)
    return None


def _is_date(node: ir.Node | None) -> bool:
    return node is not None and isinstance(node.type, TimeT) and not node.type.has_time


def near(threshold: float, integer: bool) -> list[float]:
    """A threshold and the values just around it."""
    if integer:
        low, high = math.floor(threshold), math.ceil(threshold)
        return sorted({low - 1, low, high, high + 1})
    magnitude = abs(threshold) or 1.0
    step = 10.0 ** (math.floor(math.log10(magnitude)) - 3)
    tiny = magnitude * 1e-9
    around = [threshold - step, threshold - tiny, threshold, threshold + tiny, threshold + step]
    return [_units.clean(x) for x in around]
