"""Back end: a checked protocol compiled into polars expressions, run over a whole population.

The interpreter (`protocol_rules.evaluate`) is the reference; this engine computes, for every
patient of a `Population`, the same three-valued outcome of every criterion, the same status and
the same missing facts — as columns, without running the interpreter per row.

- Each IR node has a compile method, named in `_Compiler.HANDLERS`; a node without one is refused
  when the protocol is compiled (PR503, naming the construct and where it is written), never
  evaluated some other way.
- Unknown is polars' null: ``&``, ``|`` and ``~`` on nullable booleans are Kleene logic, and
  comparisons and arithmetic with a null are null. Where the interpreter's rule differs from
  polars' (``between`` with an unknown bound, ``in`` with unknown items, division by zero), the
  compile method says so explicitly.
- Windows and what reads them are computed per reader as *steps* (`polars_windows`): the
  series' observations are filtered to each patient's window (anchored anywhere), through its
  `where` filters, and grouped by patient in time order (sums are cumulative, as Python's
  ``sum`` adds left to right); the result is joined back as a column.
- Missing facts follow `Program._missing`: for each unknown criterion, the absent facts (and the
  series whose window is empty) reached through sub-expressions that are unknown; inside `any` /
  `all` and `where` that is judged at the window's last observation, as the interpreter's
  record holds it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import polars as pl

from .. import ast
from ..check import CheckedProtocol, ir
from ..check.types import BoolT, ChoiceT, NumT, QtyT, SeriesT, SetT, TextT, TimeT, WindowT
from ..numeric import LIMIT
from ..sources.population import AS_OF, ROW, VALUE, Population, convert
from .polars_calc import CALC_HANDLERS, CalcHandlers, undecided_sources
from .polars_codes import CODE_HANDLERS, CodeHandlers
from .polars_shared import (
    DAY,
    NULL_BOOL,
    Sources,
    day,
    is_date,
    merge,
    never,
    shift,
    unsupported,
)
from .polars_windows import Step, WindowHandlers, beside, run_window

_COMPARE: dict[ast.CompareOp, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    ast.CompareOp.LT: lambda a, b: a < b,
    ast.CompareOp.LE: lambda a, b: a <= b,
    ast.CompareOp.GT: lambda a, b: a > b,
    ast.CompareOp.GE: lambda a, b: a >= b,
    ast.CompareOp.EQ: lambda a, b: a == b,
    ast.CompareOp.NE: lambda a, b: a != b,
}


@attrs.frozen
class DefineStep:
    column: str
    expr: pl.Expr


@attrs.frozen
class SetStep:
    """A set fact gathered into a list column, for `contains`."""

    column: str
    fact: str


class CompiledProtocol:
    """What `compile_protocol` returns: the plan of one protocol, ready for any population."""

    def __init__(self, checked: CheckedProtocol) -> None:
        compiler = _Compiler(checked)
        self.checked = checked
        self.criteria = [compiler.expr(c.body) for c in checked.criteria]
        self.sources = [compiler.sources(c.body) for c in checked.criteria]
        self.steps = compiler.steps
        self.near = compiler.near_misses()

    def run(self, population: Population) -> pl.DataFrame:
        """One row per patient: the patients' columns, a boolean per criterion (``c0``, …),
        ``:excluded``, ``:open`` and ``:missing`` (the names of the missing facts)."""
        patients = population.patients
        for step in self.steps:
            patients = _run_step(step, patients, population)
        names = [f"c{i}" for i in range(len(self.criteria))]
        frame = patients.lazy().with_columns(
            e.alias(n) for e, n in zip(self.criteria, names, strict=True)
        )
        excluding = [
            (pl.col(n) == (c.kind is ast.CriterionKind.EXCLUSION)).fill_null(False)
            for n, c in zip(names, self.checked.criteria, strict=True)
        ]
        unknown = [pl.col(n).is_null() for n in names]
        frame = frame.with_columns(
            (pl.any_horizontal(excluding) if excluding else pl.lit(False)).alias(":excluded"),
            (pl.any_horizontal(unknown) if unknown else pl.lit(False)).alias(":open"),
        )
        facts, masks = self._missing_masks(names)
        frame = frame.with_columns(masks).collect()
        return _missing_lists(frame, facts)

    def _missing_masks(self, names: list[str]) -> tuple[list[str], list[pl.Expr]]:
        """Per fact that can be missing: is it a missing fact of this (undecided) patient? As
        bit masks, a bit per fact (63 facts a column): ``:mask:0``, …"""
        found: dict[str, list[pl.Expr]] = {}
        for name, sources in zip(names, self.sources, strict=True):
            for fact, reached in sources.items():
                found.setdefault(fact, []).append(pl.col(name).is_null() & reached)
        order = [f.name for f in self.checked.facts if f.name in found]
        undecided = pl.col(":open") & ~pl.col(":excluded")
        flags = [
            (undecided & pl.any_horizontal(found[f]).fill_null(False)).cast(pl.Int64) * (1 << bit)
            for bit, f in enumerate(order)
        ]
        masks = [
            pl.sum_horizontal(flags[i : i + 63]).alias(f":mask:{i // 63}")
            for i in range(0, len(flags), 63)
        ]
        return order, masks

    def near_misses(self, frame: pl.DataFrame) -> list[tuple[int, list[tuple[Any, str]]]]:
        """Per criterion with comparison leaves: the leaves, and the column of each leaf's
        (value, distance, relative, flips) struct, added to `frame` — see `near_miss`."""
        out = []
        columns = []
        for i, leaves in self.near:
            named = []
            for j, (leaf, expr) in enumerate(leaves):
                column = f":near:{i}:{j}"
                columns.append(expr.alias(column))
                named.append((leaf, column))
            out.append((i, named))
        return out, frame.with_columns(columns) if columns else frame  # type: ignore[return-value]


def _missing_lists(frame: pl.DataFrame, facts: list[str]) -> pl.DataFrame:
    """``:missing`` from the bit masks of `CompiledProtocol._missing_masks`: each distinct
    combination of bits is turned into a list once, then joined back."""
    keys = [f":mask:{k}" for k in range((len(facts) + 62) // 63)]
    if not keys:
        return frame.hstack(
            [pl.repeat([], frame.height, dtype=pl.List(pl.String), eager=True).alias(":missing")]
        )
    # the columns taken, not selected: a `select` would align the chunks of every column
    undecided = pl.DataFrame([frame.get_column(c) for c in (ROW, *keys)])
    undecided = undecided.filter(pl.any_horizontal(pl.col(k) != 0 for k in keys))
    combos = undecided.select(keys).unique()
    names = [
        pl.when(pl.col(keys[bit // 63]) & (1 << (bit % 63)) != 0).then(pl.lit(fact))
        for bit, fact in enumerate(facts)
    ]
    combos = combos.with_columns(pl.concat_list(names).list.drop_nulls().alias(":missing"))
    lists = undecided.join(combos, on=keys, how="left", maintain_order="left")
    rows = frame.get_column(ROW)
    if rows.is_sorted():  # rows in order (as `population.patients` has them): a merge join
        rows = rows.set_sorted()
        lists = lists.with_columns(pl.col(ROW).set_sorted())  # a subset, in the same order
    # only the rows are joined, so the other columns are not copied
    found = rows.to_frame().join(lists, on=ROW, how="left", maintain_order="left")
    # eager, in place: a lazy `with_columns` would align the chunks of every column (a copy)
    for key in keys:
        frame.drop_in_place(key)
    return frame.hstack([found.get_column(":missing").fill_null([])])


def compile_protocol(checked: CheckedProtocol) -> CompiledProtocol:
    """Compile a checked protocol for polars; raises `ScreeningError` (PR503) if it cannot."""
    return CompiledProtocol(checked)


# --------------------------------------------------------------------------- the compiler


class _Compiler(CalcHandlers, WindowHandlers, CodeHandlers):
    """IR -> polars expressions, one method per node (see `HANDLERS`); the calculation nodes
    are compiled by `CalcHandlers` (engines/polars_calc.py), windows and what reads them by
    `WindowHandlers` (engines/polars_windows.py)."""

    HANDLERS: ClassVar[dict[type, str]] = {
        ir.Const: "_const",
        ir.FactRef: "_fact",
        ir.DefineRef: "_define",
        ir.Each: "_each",
        ir.Not: "_not",
        ir.Logic: "_logic",
        ir.Compare: "_compare",
        ir.Between: "_between",
        ir.InSet: "_in_set",
        ir.IsKnown: "_is_known",
        ir.Contains: "_contains",
        ir.Convert: "_convert",
        ir.Arith: "_arith",
        ir.Negate: "_negate",
        ir.Window: "_window",
        ir.Aggregate: "_aggregate",
        ir.Quantified: "_quantified",
        ir.Count: "_count",
        ir.TimeSince: "_time_since",
        ir.DateShift: "_date_shift",
        ir.DateDiff: "_date_diff",
        **CALC_HANDLERS,  # if, first_known, unknown, ^, math functions, calls
        # time, second edition (see the block "calendar time" below)
        ir.AsOf: "_as_of",
        ir.DayOf: "_day_of",
        ir.CalendarShift: "_calendar_shift",
        ir.CalendarCompare: "_calendar_compare",
        ir.IsNever: "_is_never",
        # windows anchored anywhere, filters and runs (engines/polars_windows.py)
        ir.Filter: "_filter",
        ir.Consecutive: "_consecutive",
        ir.ObservationValue: "_observation_value",
        **CODE_HANDLERS,  # terminology (engines/polars_codes.py); extends `Const` to codes
    }

    def __init__(self, checked: CheckedProtocol) -> None:
        self.checked = checked
        self.facts = {f.name: f for f in checked.facts}
        self.define_bodies = {d.name: d.body for d in checked.defines}
        self.steps: list[Step | DefineStep | SetStep] = []
        self.set_columns: dict[str, str] = {}
        self._exprs: dict[tuple[int, bool, tuple[int, ...]], pl.Expr] = {}
        self._sources: dict[tuple[int, bool], Sources] = {}
        self._counter = itertools.count()
        self._keep: list[ir.Node] = []  # nodes whose id() is a cache key stay alive
        self._init_calc()
        self._init_windows()
        for define in checked.defines:
            if isinstance(define.type, SeriesT | SetT | WindowT):
                continue  # read through, where it is used
            body = self.expr(define.body)
            self.steps.append(DefineStep(_define_column(define.name), body))

    def _name(self, what: str) -> str:
        return f":{what}{next(self._counter)}"

    # ------------------------------------------------------------------ values

    def expr(self, node: ir.Node, obs: bool = False) -> pl.Expr:
        """The value of `node` per patient (or per observation, inside `any` / `all`)."""
        key = (id(node), obs, self.call_context)  # a function's body, once per call
        cached = self._exprs.get(key)
        if cached is None:
            method = self.HANDLERS.get(type(node))
            if method is None:
                raise unsupported(node, "this construct is not supported by the engine yet")
            self._keep.append(node)
            cached = self._exprs[key] = getattr(self, method)(node, obs)
        return cached

    def _const(self, node: ir.Const, obs: bool) -> pl.Expr:
        value = node.value
        match node.type:
            case BoolT():
                return pl.lit(value, dtype=pl.Boolean)
            case NumT() | QtyT() | TimeT():
                return pl.lit(float(value), dtype=pl.Float64)
            case TextT() | ChoiceT():
                return pl.lit(value, dtype=pl.String)
        raise unsupported(node, f"a literal of type {node.type}")

    def _fact(self, node: ir.FactRef, obs: bool) -> pl.Expr:
        # a series or set fact's column says whether the patient has it (true or null)
        return pl.col(node.name)

    def _define(self, node: ir.DefineRef, obs: bool) -> pl.Expr:
        if isinstance(node.type, SeriesT | SetT | WindowT):
            raise unsupported(node, "a define of a series, set or window is read where it is used")
        return pl.col(_define_column(node.name))

    def _not(self, node: ir.Not, obs: bool) -> pl.Expr:
        return ~self.expr(node.operand, obs)

    def _logic(self, node: ir.Logic, obs: bool) -> pl.Expr:
        operands = [self.expr(o, obs) for o in node.operands]
        combined = operands[0]
        for operand in operands[1:]:
            combined = combined & operand if node.op is ast.LogicOp.AND else combined | operand
        return combined

    def _compare(self, node: ir.Compare, obs: bool) -> pl.Expr:
        left, right = self.expr(node.left, obs), self.expr(node.right, obs)
        result = _COMPARE[node.op](left, right)
        if isinstance(node.left.type, TimeT):  # any comparison with a never date is not met
            return pl.when(never(left) | never(right)).then(pl.lit(False)).otherwise(result)
        return result

    def _between(self, node: ir.Between, obs: bool) -> pl.Expr:
        x, low, high = (self.expr(n, obs) for n in (node.operand, node.low, node.high))
        # unknown when any of the three is, even if the known bound alone decides
        unknown = x.is_null() | low.is_null() | high.is_null()
        result = pl.when(unknown).then(NULL_BOOL).otherwise((low <= x) & (x <= high))
        if isinstance(node.operand.type, TimeT):  # never: not met, even with an unknown bound
            nowhere = never(x) | never(low) | never(high)
            return pl.when(nowhere).then(pl.lit(False)).otherwise(result)
        return result

    def _in_set(self, node: ir.InSet, obs: bool) -> pl.Expr:
        x = self.expr(node.operand, obs)
        if all(isinstance(i, ir.Const) for i in node.items):
            values = pl.Series([self._plain(i) for i in node.items], dtype=_dtype(node.operand))
            hit = x.is_in(values.implode())
            return pl.when(x.is_null()).then(NULL_BOOL).otherwise(hit ^ node.negated)
        items = [self.expr(i, obs) for i in node.items]
        hit = pl.any_horizontal([(x == i).fill_null(False) for i in items])
        some_unknown = pl.any_horizontal([i.is_null() for i in items])
        return (
            pl.when(x.is_null())
            .then(NULL_BOOL)
            .when(hit)
            .then(pl.lit(not node.negated))
            .when(some_unknown)
            .then(NULL_BOOL)
            .otherwise(pl.lit(node.negated))
        )

    def _plain(self, node: ir.Const) -> Any:
        return float(node.value) if isinstance(node.type, NumT | QtyT | TimeT) else node.value

    def _is_known(self, node: ir.IsKnown, obs: bool) -> pl.Expr:
        x = self.expr(node.operand, obs)
        return x.is_null() if node.negated else x.is_not_null()

    def _contains(self, node: ir.Contains, obs: bool) -> pl.Expr:
        fact = self._collection_fact(node.collection, node)
        column = self.set_columns.get(fact)
        if column is None:
            column = self.set_columns[fact] = self._name("set")
            self.steps.append(SetStep(column, fact))
        hits = []
        for item in node.items:
            value = self.expr(item, obs)
            member = pl.col(column).list.contains(value)
            hits.append(pl.when(value.is_null()).then(NULL_BOOL).otherwise(member))
        combined = hits[0]
        for hit in hits[1:]:
            combined = combined & hit if node.mode is ast.ContainsMode.ALL else combined | hit
        return pl.when(pl.col(fact).is_null()).then(NULL_BOOL).otherwise(combined)

    def _convert(self, node: ir.Convert, obs: bool) -> pl.Expr:
        conversion = node.conversion
        r = self.expr(node.operand, obs).map_batches(
            lambda s: convert(s, conversion), return_dtype=pl.Float64, is_elementwise=True
        )
        return pl.when(r.is_finite()).then(r)  # overflowed to infinity: unknown, as evaluate

    def _arith(self, node: ir.Arith, obs: bool) -> pl.Expr:
        a, b = self.expr(node.left, obs), self.expr(node.right, obs)
        match node.op:
            case ast.ArithOp.ADD:
                r = a + b
            case ast.ArithOp.SUB:
                r = a - b
            case ast.ArithOp.MUL:
                r = a * b
            case ast.ArithOp.DIV:
                r = pl.when(b == 0).then(pl.lit(None, dtype=pl.Float64)).otherwise(a / b)
        if node.scale != 1.0:
            r = r * node.scale
        if isinstance(node.type, NumT) and node.type.integer:
            return r
        # as the interpreter: an overflow (or inf/NaN) is unknown, never a value
        return pl.when(r.abs() <= LIMIT).then(r).otherwise(pl.lit(None, dtype=pl.Float64))

    def _negate(self, node: ir.Negate, obs: bool) -> pl.Expr:
        return -self.expr(node.operand, obs)

    def _count(self, node: ir.Count, obs: bool) -> pl.Expr:
        conditions = [self.expr(c, obs) for c in node.conditions]
        true = pl.sum_horizontal([c.fill_null(False).cast(pl.Int32) for c in conditions])
        unknown = pl.sum_horizontal([c.is_null().cast(pl.Int32) for c in conditions])
        n = node.n
        if node.op is ast.CountOp.AT_LEAST:
            return (
                pl.when(true >= n)
                .then(pl.lit(True))
                .when(true + unknown < n)
                .then(pl.lit(False))
                .otherwise(NULL_BOOL)
            )
        return (
            pl.when(true + unknown <= n)
            .then(pl.lit(True))
            .when(true > n)
            .then(pl.lit(False))
            .otherwise(NULL_BOOL)
        )

    def _time_since(self, node: ir.TimeSince, obs: bool) -> pl.Expr:
        # whole days from a date: `as_of` counts as its UTC date (calendar.days_since)
        as_of = day(pl.col(AS_OF)) if is_date(node.operand) else pl.col(AS_OF)
        return (as_of - self.expr(node.operand, obs)) / DAY

    def _date_shift(self, node: ir.DateShift, obs: bool) -> pl.Expr:
        x, seconds = self.expr(node.date, obs), self.expr(node.seconds, obs)
        # never stays never, even shifted by an infinite duration (-inf + inf would be NaN)
        kept = pl.when(seconds.is_not_null()).then(x)
        return pl.when(never(x)).then(kept).otherwise(x + node.sign * seconds)

    def _date_diff(self, node: ir.DateDiff, obs: bool) -> pl.Expr:
        left, right = self.expr(node.left, obs), self.expr(node.right, obs)
        both = never(left) & never(right)  # -inf - -inf: unknown, not NaN
        return pl.when(both).then(pl.lit(None, dtype=pl.Float64)).otherwise((left - right) / DAY)

    # ------------------------------------------------------------------ calendar time
    #
    # The semantics are `protocol_rules.calendar`'s: instants are seconds since the epoch,
    # months step the calendar with the day clamped to the month's end (polars' `offset_by`
    # clamps the same way), a date meets a datetime at the datetime's UTC date. A `never` date
    # is minus infinity (`NEVER_SECONDS`): `time_since` of it is infinite, and `as_of OP x + D`
    # then gives exactly `calendar_compare`'s table for never; comparisons of dates check it.

    def _as_of(self, node: ir.AsOf, obs: bool) -> pl.Expr:
        return pl.col(AS_OF)

    def _day_of(self, node: ir.DayOf, obs: bool) -> pl.Expr:
        return day(self.expr(node.operand, obs))

    def _calendar_shift(self, node: ir.CalendarShift, obs: bool) -> pl.Expr:
        return shift(self.expr(node.instant, obs), node.duration, node.sign)

    def _is_never(self, node: ir.IsNever, obs: bool) -> pl.Expr:
        return never(self.expr(node.operand, obs))

    def _calendar_compare(self, node: ir.CalendarCompare, obs: bool) -> pl.Expr:
        since = node.since
        if not isinstance(since, ir.TimeSince):  # pragma: no cover - built that way
            raise unsupported(node)
        x = self.expr(since.operand, obs)
        date = is_date(since.operand)
        tests = []
        for op, duration in zip(node.ops, node.durations, strict=True):
            as_of = day(pl.col(AS_OF)) if date and not duration.has_time else pl.col(AS_OF)
            tests.append(_COMPARE[op](as_of, shift(x, duration, 1)))
        combined = tests[0]
        for test in tests[1:]:
            combined = combined & test
        return combined

    # ------------------------------------------------------------------ windows

    # ------------------------------------------------------------------ missing facts

    def sources(self, node: ir.Node, obs: bool = False) -> Sources:
        """Facts reached from `node` by `Program._unknown_sources` (node assumed unknown)."""
        key = (id(node), obs)
        cached = self._sources.get(key)
        if cached is None:
            self._keep.append(node)
            cached = self._sources[key] = self._find_sources(node, obs)
        return cached

    def _find_sources(self, node: ir.Node, obs: bool) -> Sources:
        match node:
            case ir.FactRef(name=name):
                return {name: pl.lit(True)}
            case ir.DefineRef(name=name):
                return self.sources(self.define_bodies[name])
            case ir.Aggregate() | ir.Quantified() | ir.Consecutive():
                return self._reader_sources(node)
            case ir.Window() | ir.Filter():  # pragma: no cover - only readers reach windows
                raise AssertionError(f"sources of a window outside a reader: {node!r}")
            case ir.If(condition=condition, then=then, otherwise=otherwise):
                # as `Program._unknown_sources`: the condition, then the branch it chose
                c = self.expr(condition, obs)
                out = {}
                merge(out, self.sources(condition, obs), c.is_null())
                for branch, chosen in ((then, c), (otherwise, ~c)):
                    reached = chosen.fill_null(False) & self.expr(branch, obs).is_null()
                    merge(out, self.sources(branch, obs), reached)
                merge(out, undecided_sources(node, c, self.define_bodies), pl.lit(True))
                return out
            case ir.FunctionCall(args=args):
                out = {}  # a body reads no fact: what is missing is in the arguments
                for arg in args:
                    merge(out, self.sources(arg, obs), self.expr(arg, obs).is_null())
                return out
        out = {}
        for child in ir.children(node):
            merge(out, self.sources(child, obs), self.expr(child, obs).is_null())
        return out

    # ------------------------------------------------------------------ near misses

    def near_misses(self) -> list[tuple[int, list[tuple[Any, pl.Expr]]]]:
        """Per criterion with comparison leaves: (leaf, struct of value, distance, relative
        distance and whether it flips) — the numbers of `near_miss.near_misses_of`: a leaf
        *flips* when negating it alone turns the criterion from excluding to passing."""
        from ..near_miss import skeleton

        out = []
        for i, criterion in enumerate(self.checked.criteria):
            shape, leaves = skeleton(criterion.body, self.define_bodies)
            if not leaves:
                continue
            excluding = criterion.kind is ast.CriterionKind.EXCLUSION
            excludes = (self._skeleton(shape, None) == excluding).fill_null(False)
            exprs = []
            for index, leaf in enumerate(leaves):
                x = self.expr(leaf.operand)
                shown = x * leaf.factor + leaf.offset
                low, high = leaf.shown(leaf.low), leaf.shown(leaf.high)
                if leaf.between:
                    inside = (shown >= low) & (shown <= high)
                    distance = (
                        pl.when(inside)
                        .then(pl.min_horizontal(shown - low, high - shown))
                        .otherwise(pl.max_horizontal(low - shown, shown - high))
                    )
                else:
                    distance = (shown - low).abs()
                flipped = self._skeleton(shape, index) == (not excluding)
                flips = excludes & flipped.fill_null(False) & self.expr(leaf.node).is_not_null()
                exprs.append(
                    (
                        leaf,
                        pl.struct(
                            shown.alias("value"),
                            distance.alias("distance"),
                            (distance / max(abs(low), abs(high), 1e-300)).alias("relative"),
                            (flips & x.is_not_null()).alias("flips"),
                        ),
                    )
                )
            out.append((i, exprs))
        return out

    def _skeleton(self, shape: Any, flip: int | None) -> pl.Expr:
        kind = shape[0]
        if kind == "leaf":
            value = self.expr(shape[2])
            return ~value if shape[1] == flip else value
        if kind == "other":
            return self.expr(shape[1])
        if kind == "not":
            return ~self._skeleton(shape[1], flip)
        parts = [self._skeleton(part, flip) for part in shape[1]]
        combined = parts[0]
        for part in parts[1:]:
            combined = combined & part if kind == "and" else combined | part
        return combined


def _define_column(name: str) -> str:
    return f":define:{name}"


def _dtype(node: ir.Node) -> Any:
    from ..sources.population import dtype

    return dtype(node.type)


# --------------------------------------------------------------------------- running steps


def _run_step(
    step: Step | DefineStep | SetStep, patients: pl.DataFrame, population: Population
) -> pl.DataFrame:
    if isinstance(step, DefineStep):
        return patients.with_columns(step.expr.alias(step.column))
    key = population.key
    if isinstance(step, SetStep):
        items = (
            population.observations[step.fact].group_by(key).agg(pl.col(VALUE).alias(step.column))
        )
        joined = beside(patients, items, key)
        empty = pl.lit([], dtype=joined.schema[step.column])
        return joined.with_columns(
            pl.when(pl.col(step.fact).is_not_null())
            .then(pl.col(step.column).fill_null(empty))
            .alias(step.column)
        )
    return run_window(step, patients, population)


__all__ = ["CompiledProtocol", "compile_protocol", "unsupported"]
