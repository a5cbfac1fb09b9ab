"""Traces: the tree of a criterion's sub-expressions with their values, built on demand.

Evaluation records one value per node in a flat list; this module turns that record into
`Trace` objects only when a caller reads `CriterionResult.trace` (or renders a result).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import ast
from .calculate import domain_why
from .calendar import NEVER, shift
from .check import ir
from .check.types import QtyT, SeriesT, TimeT, Type, WindowT
from .evaluate import NOTRUN
from .facts import UNKNOWN, format_instant
from .result import Observation, Trace

if TYPE_CHECKING:
    from .evaluate import Program

_KINDS = {
    ir.Const: "literal",
    ir.FactRef: "fact",
    ir.DefineRef: "define",
    ir.Each: "observation",
    ir.Not: "not",
    ir.Logic: "logic",
    ir.Compare: "comparison",
    ir.Between: "between",
    ir.InSet: "in",
    ir.IsKnown: "is known",
    ir.Contains: "contains",
    ir.Arith: "arithmetic",
    ir.Convert: "arithmetic",  # shown as its operand (see `TraceBuilder.build`)
    ir.Negate: "negate",
    ir.Window: "window",
    ir.Aggregate: "aggregate",
    ir.Quantified: "quantified",
    ir.Count: "count",
    ir.TimeSince: "time_since",
    ir.DateShift: "date arithmetic",
    ir.DateDiff: "date arithmetic",
    ir.Convert: "conversion",  # shown as its operand (see `TraceBuilder.build`)
    ir.If: "if",
    ir.FirstKnown: "first_known",
    ir.Unknown: "literal",
    ir.Power: "power",
    ir.Math: "function",
    ir.Param: "parameter",
    ir.FunctionCall: "call",
    ir.AsOf: "as_of",
    ir.DayOf: "date arithmetic",
    ir.CalendarShift: "date arithmetic",
    ir.CalendarCompare: "comparison",
    ir.IsNever: "is never",
    ir.Filter: "filter",
    ir.Consecutive: "consecutive",
    ir.ObservationValue: "observation",
    ir.InCodes: "in",  # terminology: trace_codes.py lists the matches below
    ir.ContainsCodes: "contains",
}


def json_value(value: Any, type_: Type) -> Any:
    """A value of the evaluator as JSON-ready data (None for unknown)."""
    if value is UNKNOWN or value is NOTRUN or value is None:
        return None
    if value is NEVER or (isinstance(value, float) and math.isinf(value)):
        return "never"  # a `date or never` fact, or a duration since one
    if isinstance(type_, TimeT):
        return format_instant(value, type_.has_time)
    if isinstance(type_, WindowT | SeriesT):
        return [json_value(v, type_.element) for v in value[1]]
    if isinstance(value, frozenset):
        return sorted(value, key=str)
    if isinstance(value, float):
        if value - value != 0:  # evaluation makes none; JSON has no infinity
            return None
        if value.is_integer() and abs(value) < 1e15:
            return int(value)
    return value


def unit_of(type_: Type) -> str | None:
    while isinstance(type_, WindowT | SeriesT):
        type_ = type_.element
    return type_.unit if isinstance(type_, QtyT) else None


def static_info(program: Program) -> list[tuple[str, str, str | None, int, int]]:
    """What a trace node shows that depends only on the protocol: computed once per program."""
    table = program.__dict__.get("_trace_static")
    if table is None:
        table = []
        for node in program.nodes:
            span = node.source.span
            text = " ".join(span.text.split())  # as written, on one line
            table.append((text, _KINDS[type(node)], unit_of(node.type), span.line, span.column))
        program.__dict__["_trace_static"] = table
    return table


class TraceBuilder:
    """Builds `Trace` trees for one evaluated patient."""

    def __init__(self, program: Program, V: list[Any], patient: Mapping[str, Any]):
        self.program = program
        self.V = V
        self.patient = patient
        self._expanded: dict[str, str | None] = {}  # define name -> why it is unknown

    def criterion(self, i: int) -> Trace:
        """The trace of the criterion whose root is node `i`.

        A define used twice in one criterion is expanded the first time only: a chain of
        defines that each use the previous one twice would otherwise double the tree at
        every link. Each call builds with its own record of expanded defines, so threads can
        build traces of one result at the same time.
        """
        return TraceBuilder(self.program, self.V, self.patient).build(i)

    def build(self, i: int) -> Trace:
        program = self.program
        node = program.nodes[i]
        if isinstance(node, ir.Convert):  # inserted by the checker, not written: show operand
            return self._with_value(self.build(program.children[i][0]), i, node)
        if isinstance(node, ir.DayOf):  # inserted where a date meets a datetime: show operand
            return self.build(program.children[i][0])
        expr, kind, unit, line, column = static_info(program)[i]
        value = self.V[i]
        known = value is not UNKNOWN and value is not NOTRUN
        below = program.children[i]
        if isinstance(node, ir.DefineRef) and node.name in self._expanded:
            below = ()  # shown in full where the criterion first uses it
        children = tuple(self.build(c) for c in below)
        why = fact = given = None
        observations: tuple[Observation, ...] = ()
        match node:
            case ir.FactRef(name=name):
                fact, given = name, self.patient.get(name)
                if value is UNKNOWN:
                    why = f"`{name}` is absent from the patient record"
            case ir.Window():
                observations = self._window_observations(i, node)
                if value is UNKNOWN:
                    why = _first_why(children) or "the series is unknown"
            case ir.Aggregate() | ir.Quantified() | ir.Consecutive():
                observations, why = self._window_summary(i, node, value, children)
                if isinstance(node, ir.Quantified | ir.Consecutive):
                    children = children[:1]
            case ir.Filter():
                observations = self._filter_observations(i, node)
                children = children[:1]
                if value is UNKNOWN:
                    why = _first_why(children) or "the condition is unknown for some observation"
            case ir.CalendarCompare():
                children = (*children[:1], *self._calendar_steps(i, node))
                if value is UNKNOWN:
                    why = _first_why(children)
            case ir.DefineRef(name=name):
                if value is UNKNOWN:
                    why = _first_why(children) or self._expanded.get(name)
                    why = why or f"define `{name}` is unknown"
                self._expanded.setdefault(name, why)
            case ir.Arith() if value is UNKNOWN and not _first_why(children):
                why = "division by zero" if children[1].value == 0 else "too large (beyond 1e300)"
            case ir.InCodes() | ir.ContainsCodes():
                children = (*children, *self._code_matches(i, node))
                if value is UNKNOWN:
                    why = _first_why(children)
            case ir.DateShift() | ir.CalendarShift() if value is UNKNOWN and not _first_why(
                children
            ):
                why = "the date falls outside the years 1 to 9999"
            case ir.Unknown():
                why = "the rules say `unknown` here"
            case ir.Power() | ir.Math() if value is UNKNOWN:
                why = _first_why(children) or domain_why(node, [c.value for c in children])
            case ir.FunctionCall():
                children = (*children[:-1], self._body(i, node, children[-1]))
                if value is UNKNOWN:
                    why = _first_why(children)
            case _:
                if value is UNKNOWN:
                    why = _first_why(children)
        return Trace(
            expr,
            kind,
            json_value(value, node.type),
            known,
            unit,
            value is not NOTRUN,
            why,
            fact,
            given,
            observations,
            children,
            line,
            column,
        )

    def _code_matches(self, i: int, node: ir.InCodes | ir.ContainsCodes) -> tuple[Trace, ...]:
        """Which codes matched which members (trace_codes.py)."""
        from . import trace_codes

        names = self.__dict__.get("_displays")
        if names is None:
            names = self.__dict__["_displays"] = trace_codes.displays(self.patient)
        return trace_codes.matches(node, self.V[self.program.children[i][0]], names)

    def _body(self, i: int, node: ir.FunctionCall, body: Trace) -> Trace:
        """The body of a called function, under one node of kind `body` (shown on demand)."""
        decl = node.source
        name = decl.function if isinstance(decl, ast.Call) else node.function
        return Trace(
            f"{name}(…) = {body.expr}",
            "body",
            body.value,
            body.known,
            body.unit,
            body.evaluated,
            body.why,
            children=(body,),
            line=body.line,
            column=body.column,
        )

    def _with_value(self, inner: Trace, i: int, node: ir.Node) -> Trace:
        import attrs

        value = self.V[i]
        unit = unit_of(node.type)
        if value is UNKNOWN and inner.known:  # the conversion overflowed
            why = f"the value is too large to convert to `{unit}`"
            return attrs.evolve(inner, value=None, known=False, unit=unit, why=why)
        return attrs.evolve(inner, value=json_value(value, node.type), unit=unit)

    def _window_observations(self, i: int, node: ir.Window) -> tuple[Observation, ...]:
        series_index = self.program.children[i][0]
        series = self.V[series_index]
        window = self.V[i]
        if series is UNKNOWN or series is NOTRUN:
            return ()
        element = node.type.element if isinstance(node.type, WindowT) else None
        unit = unit_of(node.type)
        inside = set(zip(*window, strict=True)) if window not in (UNKNOWN, NOTRUN) else set()
        return tuple(
            Observation(format_instant(t), json_value(v, element), unit, (t, v) in inside)
            for t, v in zip(*series, strict=True)
        )

    def _window_summary(
        self, i: int, node: ir.Node, value: Any, children: tuple[Trace, ...]
    ) -> tuple[tuple[Observation, ...], str | None]:
        window_index = self.program.children[i][0]
        window = self.V[window_index]
        observations: tuple[Observation, ...] = ()
        if isinstance(node, ir.Quantified | ir.Consecutive) and window not in (UNKNOWN, NOTRUN):
            results = self.V[self.program.details[i]]
            window_node = self.program.nodes[window_index]
            unit = unit_of(window_node.type)
            element = window_node.type.element if isinstance(window_node.type, WindowT) else None
            observations = tuple(
                Observation(format_instant(t), json_value(v, element), unit, True, _result(r))
                for t, v, r in zip(window[0], window[1], results, strict=False)
            )
        why = None
        if value is UNKNOWN:
            if window is UNKNOWN:
                why = _first_why(children) or "the series is unknown"
            elif window is not NOTRUN and not window[1]:
                window_text = self.program.nodes[window_index].source.span.text
                why = f"no observation in `{window_text}`"
            elif isinstance(node, ir.Aggregate) and node.function in ("sum", "mean"):
                why = "the sum is too large to compute"
            else:
                why = _first_why(children) or "a value it compares with is unknown"
        return observations, why

    def _filter_observations(self, i: int, node: ir.Filter) -> tuple[Observation, ...]:
        """The observations of the filtered window, each marked with the condition's result."""
        window = self.V[self.program.children[i][0]]
        if window in (UNKNOWN, NOTRUN):
            return ()
        results = self.V[self.program.details[i]]
        element = node.type.element if isinstance(node.type, WindowT) else None
        unit = unit_of(node.type)
        return tuple(
            Observation(format_instant(t), json_value(v, element), unit, True, _result(r))
            for t, v, r in zip(window[0], window[1], results, strict=False)
        )

    def _calendar_steps(self, i: int, node: ir.CalendarCompare) -> tuple[Trace, ...]:
        """`x + D = <date>` for each duration: the calendar reasoning, shown under the test."""
        since = node.since
        if not isinstance(since, ir.TimeSince):  # pragma: no cover - built that way
            return ()
        x = self.V[self.program.children[self.program.children[i][0]][0]]
        if x is UNKNOWN or x is NOTRUN or x is NEVER:
            return ()
        operand = since.operand
        x_text = " ".join(operand.source.span.text.split())
        has_time = isinstance(operand.type, TimeT) and operand.type.has_time
        steps = []
        for amount, duration in zip(node.amounts, node.durations, strict=True):
            amount_text = " ".join(amount.source.span.text.split())
            moment = shift(x, duration)
            steps.append(
                Trace(
                    f"{x_text} + {amount_text}",
                    "date arithmetic",
                    format_instant(moment, has_time or duration.has_time),
                    True,
                )
            )
        return tuple(steps)


def _result(value: Any) -> Any:
    return None if value is UNKNOWN else value


def _first_why(children: tuple[Trace, ...]) -> str | None:
    for child in children:
        if not child.known and child.evaluated:
            return child.why
    return None
