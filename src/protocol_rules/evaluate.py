"""Stage 5 of the pipeline: compile a checked protocol once, evaluate patients cheaply.

Every IR node becomes a closure ``f(F, V)`` where ``F`` holds the patient's normalised fact
values (slot per fact, plus ``as_of`` last) and ``V`` is the flat record of the value each node
took, one slot per node. Closures compute Kleene three-valued logic with `UNKNOWN` flowing
through operators as a value. Nothing per patient parses, looks up a name or a unit; the trace
tree is built from ``V`` only when someone asks for it (see `trace`).
"""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from . import ast
from . import evaluate_codes as codes
from . import evaluate_time as time
from .calculate import CalcCompiler
from .check import CheckedProtocol, ir
from .check.types import SeriesT, TimeT
from .diagnostics import Diagnostic, PatientDataError, error, warning
from .facts import UNKNOWN, Invalid, PatientReader, format_instant, parse_instant
from .numeric import LIMIT
from .render.safe import printable
from .result import CriterionResult, MissingFact, Outcome, Result, Status
from .snapshot import snapshot

U = UNKNOWN
Fn = Callable[[list[Any], list[Any]], Any]


class _NotRun:
    __slots__ = ()

    def __repr__(self) -> str:
        return "not evaluated"


NOTRUN: Any = _NotRun()
_CODE_OF = {True: "m", False: "n", UNKNOWN: "u"}  # a criterion's value -> `OUTCOME_CODES`
MET, NOT_MET, OPEN = Outcome.MET, Outcome.NOT_MET, Outcome.UNKNOWN

_COMPARE = {
    ast.CompareOp.LT: operator.lt,
    ast.CompareOp.LE: operator.le,
    ast.CompareOp.GT: operator.gt,
    ast.CompareOp.GE: operator.ge,
    ast.CompareOp.EQ: operator.eq,
    ast.CompareOp.NE: operator.ne,
}
_ARITH = {
    ast.ArithOp.ADD: operator.add,
    ast.ArithOp.SUB: operator.sub,
    ast.ArithOp.MUL: operator.mul,
    ast.ArithOp.DIV: operator.truediv,
}


class Program:
    """A compiled protocol: what `Protocol.evaluate` runs for each patient."""

    def __init__(self, checked: CheckedProtocol) -> None:
        self.checked = checked
        self.reader = PatientReader(checked.facts)
        self.as_of_slot = len(checked.facts)
        compiler = _Compiler(self.as_of_slot)
        for define in checked.defines:
            compiler.define(define.name, define.body)
        self.roots = [compiler.compile(c.body) for c in checked.criteria]
        self.functions = [fn for _, fn in self.roots]
        self.nodes = compiler.nodes
        self.fns = compiler.fns
        self.children = compiler.children
        self.details = compiler.details
        self.define_roots = compiler.define_roots
        self.template = compiler.template
        self.needs_as_of = compiler.uses_time
        self.inclusion = [c.kind is ast.CriterionKind.INCLUSION for c in checked.criteria]
        # The value that makes a criterion exclude: false for an inclusion, true for an exclusion.
        self.excluding = tuple(not inclusion for inclusion in self.inclusion)
        self.facts_by_name = {f.name: f for f in checked.facts}
        self.series_slots = [(f.index, f.name) for f in checked.facts if _is_series(f.type)]
        self.criterion_rows = [
            (index, c.id, c.kind.value, c.text, c.note, excluding)
            for (index, _), c, excluding in zip(
                self.roots, checked.criteria, self.excluding, strict=True
            )
        ]
        self.title = dict(checked.metadata).get("title")
        self.criterion_ids = tuple(c.id for c in checked.criteria)
        self.past_facts = [(f.index, f.name, f.type.has_time) for f in checked.facts if f.past]
        self.define_bodies = {d.name: d.body for d in checked.defines}

    # ------------------------------------------------------------------ running

    def run(
        self, patient: Mapping[str, Any], as_of: Any = None, *, ignore_unknown: bool = False
    ) -> Result:
        F, raw_as_of, problems = self.reader.read(patient, ignore_unknown, extra=1)
        if problems and problems[0].code == "PR401":  # not an object: nothing else to say
            raise PatientDataError(problems)
        as_of_seconds = self._as_of(as_of, raw_as_of, problems)
        if self.past_facts:
            problems += time.past_problems(self.past_facts, F, as_of_seconds)
        if problems:
            raise PatientDataError(problems)
        F[-1] = as_of_seconds
        V = self.template.copy()
        values = [fn(F, V) for fn in self.functions]
        status = self._status(values)
        missing = self._missing(values, V) if status is Status.INDETERMINATE else ()
        as_of_dt = None if as_of_seconds is U else datetime.fromtimestamp(as_of_seconds, UTC)
        warnings = () if as_of_seconds is U else self._after_as_of(F, as_of_seconds)
        # A partial of the plain function keeps few objects alive per result (GC pressure
        # when callers keep many results); each criterion's value is in V at its root, and
        # the outcomes are one string.
        slots = self.reader.slots  # the record's facts as given, safe from later edits
        given = {k: snapshot(v) for k, v in patient.items() if k in slots}
        make_criteria = partial(Program._criteria, self, status, F, V, given)
        codes = "".join(map(_CODE_OF.__getitem__, values))
        return Result(
            self.checked.id,
            self.title,
            status,
            make_criteria,
            missing,
            as_of_dt,
            warnings,
            (self.criterion_ids, codes),
        )

    def _after_as_of(self, F: list[Any], as_of: float) -> tuple[Diagnostic, ...]:
        """PR414 for each series with observations after `as_of`: no window reads them."""
        found = []
        for slot, name in self.series_slots:
            series = F[slot]
            if series is U or not series[0] or series[0][-1] <= as_of:
                continue
            times = series[0]
            late = len(times) - bisect_right(times, as_of)
            when = format_instant(as_of)
            found.append(
                warning(
                    "PR414",
                    f"fact `{name}`: {_observations(late)} after `as_of` ({when}) "
                    f"{'was' if late == 1 else 'were'} not used",
                    None,
                    path=f"$.{name}",
                    help="windows end at `as_of`; the latest observation is at "
                    f"{format_instant(times[-1])}: evaluate with a later `as_of` to use it",
                )
            )
        return tuple(found)

    def _as_of(self, given: Any, raw: Any, problems: list[Any]) -> Any:
        value = given if given is not None else raw
        path = "as_of (argument)" if given is not None else "$.as_of"
        if value is None:
            if self.needs_as_of:
                problems.append(
                    error(
                        "PR410",
                        "this protocol reads time windows or `time_since`, so it needs `as_of`",
                        None,
                        path=path,
                        help="pass as_of= to evaluate(), `--as-of` to the CLI, or put "
                        '"as_of": "2026-03-01T08:00:00Z" in the patient record',
                    )
                )
            return U
        try:
            return parse_instant(value, "a datetime")
        except Invalid as exc:
            message = printable(f"`as_of`: {exc.message}", newlines=False)
            problems.append(error("PR407", message, None, path=path, help=exc.hint))
            return U

    def _status(self, values: list[Any]) -> Status:
        """Ineligible if any criterion excludes, else indeterminate if any is unknown.

        Criterion values are ``True``, ``False`` or `UNKNOWN`, so identity tests suffice.
        """
        if any(map(operator.is_, values, self.excluding)):
            return Status.INELIGIBLE
        return Status.INDETERMINATE if U in values else Status.ELIGIBLE

    def _criteria(
        self, status: Status, F: list[Any], V: list[Any], patient: Mapping[str, Any]
    ) -> tuple[CriterionResult, ...]:
        from .near_miss import for_result
        from .trace import TraceBuilder

        build = TraceBuilder(self, V, patient).criterion
        ineligible = status is Status.INELIGIBLE
        open_ = status is Status.INDETERMINATE
        results = []
        for index, cid, kind, text, note, excluding in self.criterion_rows:
            value = V[index]
            deciding = value is excluding if ineligible else open_ and value is U
            outcome = OPEN if value is U else (MET if value else NOT_MET)
            results.append(
                CriterionResult(cid, kind, text, note, outcome, deciding, partial(build, index))
            )
            results[-1].near_miss_builder = partial(for_result, self, F, V, len(results) - 1)
        return tuple(results)

    def _missing(self, values: list[Any], V: list[Any]) -> tuple[MissingFact, ...]:
        """Absent facts (or empty windows) under the unknown parts of open criteria."""
        found: dict[str, dict[str, None]] = {}
        reasons: dict[str, str] = {}
        for (root, _), info, value in zip(self.roots, self.checked.criteria, values, strict=True):
            if value is not U:
                continue
            for name, reason in self._unknown_sources(root, V):
                found.setdefault(name, {})[info.id] = None
                reasons.setdefault(name, reason)
        facts = self.facts_by_name
        ordered = sorted(found, key=lambda n: facts[n].index)
        return tuple(
            MissingFact(n, tuple(found[n]), reasons[n], facts[n].description) for n in ordered
        )

    def _undecided_series(self, i: int, V: list[Any]) -> list[tuple[str, str]]:
        """The series an `if` read in its condition when it chose a branch that is `unknown`.

        "At least 6 values, …, else unknown" waits for more observations of those series.
        """
        condition, then, otherwise = self.children[i]
        chosen = then if V[condition] else otherwise
        if not isinstance(self.nodes[chosen], ir.Unknown):
            return []
        found: dict[str, None] = {}
        stack = [condition]
        while stack:
            k = stack.pop()
            node = self.nodes[k]
            if isinstance(node, ir.FactRef) and isinstance(node.type, SeriesT):
                found[node.name] = None
            stack.extend(self.children[k])
        return [(name, "more observations needed") for name in found]

    def _unknown_sources(self, root: int, V: list[Any]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        stack = [root]
        seen: set[int] = set()
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            node = self.nodes[i]
            if isinstance(node, ir.FactRef):
                out.append((node.name, "absent"))
                continue
            if isinstance(node, ir.DefineRef):
                stack.append(self.define_roots[node.name])
                continue
            if isinstance(node, ir.If) and V[self.children[i][0]] is not U:
                out += self._undecided_series(i, V)  # `if count(w) >= 6 … else unknown`
            if isinstance(node, ir.Aggregate | ir.Quantified | ir.Consecutive):
                window_index = self.children[i][0]
                window = V[window_index]
                if window is not U and window is not NOTRUN and not window[0]:
                    out.append((self._series_name(window_index), "no observation in the window"))
                    continue
            for child in self.children[i]:
                if V[child] is U:
                    stack.append(child)
        return out

    def _series_name(self, index: int) -> str:
        """The fact a window reads, through filters and the defines that hold it."""
        node = self.nodes[index]
        for _ in range(len(self.nodes)):  # a define chain is bounded by the checker
            match node:
                case ir.FactRef(name=name):
                    return name
                case ir.DefineRef(name=name) if name in self.define_bodies:
                    node = self.define_bodies[name]
                case ir.Filter(window=window):
                    node = window
                case ir.Window(series=series):
                    node = series
                case _:
                    break
        return node.source.span.text  # pragma: no cover - a window reads a fact


def _is_series(type_: Any) -> bool:
    return isinstance(type_, SeriesT)


def _observations(n: int) -> str:
    return "1 observation" if n == 1 else f"{n} observations"


def compile_protocol(checked: CheckedProtocol) -> Program:
    """Compile a checked protocol into a `Program` (done once, at load)."""
    return Program(checked)


class _Compiler(CalcCompiler):
    """IR -> closures. Assigns each node a slot in the value record ``V``.

    The calculation nodes (`if`, `^`, functions, …) are compiled by `CalcCompiler`.
    """

    def __init__(self, as_of_slot: int) -> None:
        self.as_of_slot = as_of_slot
        self.nodes: list[ir.Node] = []
        self.children: list[tuple[int, ...]] = []
        self.template: list[Any] = []
        self.fns: list[Fn | None] = []  # each node's closure, for near misses
        self.details: dict[int, int] = {}  # quantified node -> slot of per-observation results
        self.define_roots: dict[str, int] = {}
        self.define_fns: dict[str, Fn] = {}
        self.uses_time = False
        self._each_slots: list[int] = []
        self._param_slots: list[tuple[int, ...]] = []  # argument slots of the calls being compiled
        self.value_slots: list[int] = []  # `value` in `where` conditions, innermost last

    def _slot(self, node: ir.Node, initial: Any = NOTRUN) -> int:
        self.nodes.append(node)
        self.children.append(())
        self.template.append(initial)
        self.fns.append(None)
        return len(self.nodes) - 1

    def define(self, name: str, body: ir.Node) -> None:
        index, fn = self.compile(body)
        self.define_roots[name] = index
        self.define_fns[name] = fn

    def compile(self, node: ir.Node) -> tuple[int, Fn]:
        """Compile `node`; returns its slot and its closure."""
        if isinstance(node, ir.Const):
            i = self._slot(node, node.value)
            value = node.value
            self.fns[i] = const = lambda F, V: value
            return i, const
        i = self._slot(node)
        kids = (
            [self.compile(c) for c in ir.children(node)]
            if not isinstance(node, ir.Quantified | ir.FunctionCall | ir.Filter | ir.Consecutive)
            else []
        )
        if kids:
            self.children[i] = tuple(k for k, _ in kids)
        fns = [f for _, f in kids]
        self.fns[i] = fn = self._build(node, i, fns)
        return i, fn

    def _build(self, node: ir.Node, i: int, fns: list[Fn]) -> Fn:
        match node:
            case ir.FactRef(index=k):

                def fact(F, V):
                    V[i] = x = F[k]
                    return x

                return fact
            case ir.DefineRef(name=name):
                d = self.define_roots[name]
                body = self.define_fns[name]
                self.children[i] = (d,)

                def define(F, V):
                    x = V[d]
                    if x is NOTRUN:
                        x = body(F, V)
                    V[i] = x
                    return x

                return define
            case ir.Each():
                slot = self._each_slots[-1]

                def each(F, V):
                    V[i] = x = V[slot]
                    return x

                return each
            case ir.Not():
                (a,) = fns

                def not_(F, V):
                    x = a(F, V)
                    V[i] = r = U if x is U else not x
                    return r

                return not_
            case ir.Logic(op=op):
                return _logic(i, fns, op is ast.LogicOp.AND)
            case ir.Compare(op=op, left=left) if isinstance(left.type, TimeT):
                return time.compare(i, fns, op)
            case ir.Between(operand=operand) if isinstance(operand.type, TimeT):
                return time.between(i, fns)
            case ir.Compare(op=op, left=left, right=right):
                return _compare(i, fns, _COMPARE[op], self._fact_read(i, left), right)
            case ir.Between(operand=operand, low=low, high=high):
                return _between(i, fns, self._fact_read(i, operand), low, high)
            case ir.InSet(operand=operand, items=items, negated=negated):
                return _in_set(i, fns, items, negated, self._fact_read(i, operand))
            case ir.IsKnown(negated=negated):
                (a,) = fns

                def is_known(F, V):
                    V[i] = r = (a(F, V) is U) is negated
                    return r

                return is_known
            case ir.Contains(mode=mode):
                return _contains(i, fns, mode)
            case ir.Convert(conversion=conversion):
                (a,) = fns

                def convert(F, V):
                    x = a(F, V)
                    r = U if x is U else conversion(x)
                    if r is not U and r - r != 0:  # overflowed to infinity: not a value
                        r = U
                    V[i] = r
                    return r

                return convert
            case ir.Arith(op=op, scale=scale):
                return _arith(i, fns, _ARITH[op], scale)
            case ir.Negate():
                (a,) = fns

                def negate(F, V):
                    x = a(F, V)
                    V[i] = r = U if x is U else -x
                    return r

                return negate
            case ir.Window():
                self.uses_time = True
                return time.window(i, fns, node, self.as_of_slot)
            case ir.Aggregate(function="first_time" | "last_time" as function):
                return time.moment(i, fns[0], function)
            case ir.Aggregate(function=function):
                return _aggregate(i, fns[0], function)
            case ir.Quantified():
                return self._quantified(node, i)
            case ir.Count(op=op, n=n):
                return _count(i, fns, op is ast.CountOp.AT_LEAST, n)
            case ir.TimeSince():
                self.uses_time = True
                return time.time_since(i, fns, node, self.as_of_slot)
            case ir.DateShift(sign=sign):
                return time.date_shift(i, fns, sign)
            case ir.DateDiff():
                return time.date_diff(i, fns)
            case ir.InCodes() | ir.ContainsCodes():  # terminology: evaluate_codes.py
                return codes.build(node, i, fns)
            case _:
                return self._build_time(node, i, fns)
        raise AssertionError(f"cannot compile {node!r}")  # pragma: no cover

    def _build_time(self, node: ir.Node, i: int, fns: list[Fn]) -> Fn:
        """The nodes of the second edition's time expressions (see `evaluate_time`)."""
        match node:
            case ir.AsOf():
                self.uses_time = True
                return time.as_of(i, self.as_of_slot)
            case ir.DayOf():
                return time.day(i, fns)
            case ir.CalendarShift():
                return time.calendar_shift(i, fns, node)
            case ir.CalendarCompare():
                self.uses_time = True
                since = self.children[i][0]
                return time.calendar_compare(i, fns, node, self.children[since][0], self.as_of_slot)
            case ir.IsNever():
                return time.is_never(i, fns)
            case ir.Filter() | ir.Consecutive():
                return time.filtered(self, node, i)
            case ir.ObservationValue():
                return time.observation_value(i, self.value_slots[-1])
        built = self._build_calc(node, i, fns)
        if built is not None:
            return built
        raise AssertionError(f"cannot compile {node!r}")  # pragma: no cover

    def _fact_read(self, i: int, operand: ir.Node) -> tuple[int, int] | None:
        """(fact index, value slot) of node `i`'s first operand if it reads a fact, else None.

        Closures for the common shapes (a fact compared with a constant) read the fact
        themselves, saving a call per patient; they record its value in its slot all the same.
        """
        if isinstance(operand, ir.FactRef):
            return operand.index, self.children[i][0]
        return None

    def _quantified(self, node: ir.Quantified, i: int) -> Fn:
        w_index, window = self.compile(node.window)
        element_slot = self._slot(node, NOTRUN)  # holds the observation under test
        detail = self._slot(node, ())  # per-observation results, for the trace
        self.details[i] = detail
        self._each_slots.append(element_slot)
        c_index, condition = self.compile(node.condition)
        self._each_slots.pop()
        self.children[i] = (w_index, c_index)
        is_any = node.quantifier is ast.Quantifier.ANY

        def quantified(F, V):
            w = window(F, V)
            if w is U:
                V[i] = U
                return U
            results = []
            for x in w[1]:
                V[element_slot] = x
                results.append(condition(F, V))
            V[detail] = tuple(results)
            decisive = is_any  # any: a true decides; all: a false decides
            r: Any = not decisive
            for res in results:
                if res is U:
                    r = U
                elif res is decisive:
                    r = decisive
                    break
            V[i] = r
            return r

        return quantified


def _logic(i: int, fns: list[Fn], is_and: bool) -> Fn:
    if len(fns) == 2:
        return _logic2(i, fns, is_and)
    stop = not is_and  # and stops at False, or stops at True

    def logic(F, V):
        r: Any = is_and
        for fn in fns:
            x = fn(F, V)
            if x is U:
                r = U
            elif x is stop:
                r = stop
                break
        V[i] = r
        return r

    return logic


def _logic2(i: int, fns: list[Fn], is_and: bool) -> Fn:
    """`a and b`, `a or b`: the loop of `_logic` unrolled for the common two operands."""
    a, b = fns
    stop = not is_and

    def logic2(F, V):
        x = a(F, V)
        if x is stop:
            V[i] = stop
            return stop
        y = b(F, V)
        V[i] = r = stop if y is stop else (U if x is U or y is U else is_and)
        return r

    return logic2


def _compare(
    i: int,
    fns: list[Fn],
    op: Callable[[Any, Any], bool],
    read: tuple[int, int] | None,
    right: ir.Node,
) -> Fn:
    a, b = fns
    if isinstance(right, ir.Const) and read is not None:
        k, j = read
        const = right.value

        def compare_fact(F, V):
            V[j] = x = F[k]
            V[i] = r = U if x is U else op(x, const)
            return r

        return compare_fact
    if isinstance(right, ir.Const):
        const = right.value

        def compare_const(F, V):
            x = a(F, V)
            V[i] = r = U if x is U else op(x, const)
            return r

        return compare_const

    def compare(F, V):
        x, y = a(F, V), b(F, V)
        V[i] = r = U if x is U or y is U else op(x, y)
        return r

    return compare


def _between(
    i: int, fns: list[Fn], read: tuple[int, int] | None, low: ir.Node, high: ir.Node
) -> Fn:
    a, lo, hi = fns
    if read is not None and isinstance(low, ir.Const) and isinstance(high, ir.Const):
        k, j = read
        low_value, high_value = low.value, high.value

        def between_fact(F, V):
            V[j] = x = F[k]
            V[i] = r = U if x is U else low_value <= x <= high_value
            return r

        return between_fact

    def between(F, V):
        x, low, high = a(F, V), lo(F, V), hi(F, V)
        V[i] = r = U if x is U or low is U or high is U else low <= x <= high
        return r

    return between


def _in_set(
    i: int,
    fns: list[Fn],
    items: tuple[ir.Node, ...],
    negated: bool,
    read: tuple[int, int] | None,
) -> Fn:
    a, *item_fns = fns
    if all(isinstance(item, ir.Const) for item in items):
        members = frozenset(item.value for item in items)  # type: ignore[union-attr]
        if read is not None:
            k, j = read

            def in_fact(F, V):
                V[j] = x = F[k]
                V[i] = r = U if x is U else (x in members) is not negated
                return r

            return in_fact

        def in_const(F, V):
            x = a(F, V)
            V[i] = r = U if x is U else (x in members) is not negated
            return r

        return in_const

    def in_set(F, V):
        x = a(F, V)
        values = [fn(F, V) for fn in item_fns]
        if x is U:
            r: Any = U
        elif x in [v for v in values if v is not U]:
            r = not negated
        elif any(v is U for v in values):
            r = U
        else:
            r = negated
        V[i] = r
        return r

    return in_set


def _contains(i: int, fns: list[Fn], mode: ast.ContainsMode) -> Fn:
    collection, *item_fns = fns
    want_all = mode is ast.ContainsMode.ALL

    def contains(F, V):
        s = collection(F, V)
        values = [fn(F, V) for fn in item_fns]
        if s is U:
            r: Any = U
        else:
            r = want_all
            for v in values:
                hit = U if v is U else v in s
                if hit is U:
                    r = U
                elif hit is not want_all:
                    r = hit
                    break
        V[i] = r
        return r

    return contains


def _arith(i: int, fns: list[Fn], op: Callable[[Any, Any], Any], scale: float) -> Fn:
    a, b = fns

    def arith(F, V):
        x, y = a(F, V), b(F, V)
        if x is U or y is U:
            r: Any = U
        else:
            try:
                r = op(x, y)
            except ZeroDivisionError:
                r = U
            else:
                if scale != 1.0:
                    r *= scale
                if not -LIMIT <= r <= LIMIT:  # overflow (or inf/NaN): unknown, never inf
                    r = U
        V[i] = r
        return r

    return arith


def _aggregate(i: int, window: Fn, function: str) -> Fn:
    if function == "count":

        def count(F, V):
            w = window(F, V)
            V[i] = r = U if w is U else len(w[1])
            return r

        return count
    if function == "exists":

        def exists(F, V):
            w = window(F, V)
            V[i] = r = U if w is U else len(w[1]) > 0
            return r

        return exists
    reduce: Callable[[tuple[Any, ...]], Any] = {
        "max": max,
        "min": min,
        "sum": _finite_sum,
        "mean": _mean,
        "latest": lambda xs: xs[-1],
        "earliest": lambda xs: xs[0],
    }[function]

    def aggregate(F, V):
        w = window(F, V)
        V[i] = r = U if w is U or not w[1] else reduce(w[1])
        return r

    return aggregate


def _finite_sum(values: tuple[Any, ...]) -> Any:
    """The sum, or unknown when it overflows to infinity (each value is finite)."""
    total = sum(values)
    return total if total - total == 0 else U


def _mean(values: tuple[Any, ...]) -> Any:
    total = _finite_sum(values)
    return U if total is U else total / len(values)


def _count(i: int, fns: list[Fn], at_least: bool, n: int) -> Fn:
    def count(F, V):
        true = unknown = 0
        for fn in fns:
            x = fn(F, V)
            if x is U:
                unknown += 1
            elif x:
                true += 1
        if at_least:
            r: Any = True if true >= n else (False if true + unknown < n else U)
        else:
            r = True if true + unknown <= n else (False if true > n else U)
        V[i] = r
        return r

    return count


__all__ = ["NOTRUN", "UNKNOWN", "Program", "compile_protocol"]
