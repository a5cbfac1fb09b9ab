"""Back end, continued: windows, `where` filters, `consecutive` and what reads them, as
group-bys over the observations of a series.

`WindowHandlers` is a mixin of the polars engine's compiler (`engines.polars._Compiler`). Every
read of a window — an aggregate (`max`, `count`, `first_time`, …), a quantifier (`any`, `all`)
or `consecutive` — becomes one `Step`, run over all patients at once (`run_window`):

1. **The window.** Its bounds are per-patient expressions (docs/language/time.md#windows):
   ``lo <= at <= hi``, where `hi` is the end (`as_of`, or any instant: `before T`, `to B`) and
   `lo` the start (`from A`, or the end shifted back by the length: a calendar duration, or any
   duration expression in seconds). A date end covers its whole day (``at < end + 1 day``); a
   never bound gives an empty window (lo = +inf); an unknown series, bound or length an unknown
   window — and, as the interpreter has it, so does a computed length with a never end. When
   every patient has the same `as_of` and the bounds read nothing else, they are two numbers
   and the observations are filtered without a join.
2. **The filters** (`W where C`, nested or through defines), in order: each condition is
   computed per observation of the window (``value`` is the observation's value); an
   observation passes when it is true. A filter is unknown for a patient when its condition is
   unknown for some observation it tests, and then so is everything that reads it.
3. **The reader**, over the observations that passed every filter, in time order (ties in input
   order, as the interpreter's stable sort): the aggregate, Kleene `any` / `all`, or the longest
   run of true conditions counted twice — unknowns as false, then as true — known only when the
   two agree (`ir.Consecutive`).

Missing facts follow `Program._unknown_sources`: an unknown reader whose window (after its
filters) is known and empty names its series; otherwise the sources of the window if it is
unknown (its series, bounds and length, or the filters' conditions), and those of the reader's
condition. A condition is judged at the last observation it was tested on, which is what the
interpreter's value record holds after its loop; flags per observation are taken `last()` in
time order.

`value` is read only by the conditions of its own `where`: a window, aggregate or quantifier
inside a `where` condition that reads that `value` (a read correlated with each observation) is
refused with PR503, the one construct this engine does not screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import polars as pl

from ..check import ir
from ..sources.population import AS_OF, AT, SEQ, VALUE, Population
from .polars_shared import DAY, Sources, is_date, merge, never, roots, shift, unsupported

#: Refusal of a `value` read by a window, aggregate or quantifier nested in its `where`.
CORRELATED = (
    "it reads the `value` of the `where` it is written in (a window read once per observation "
    "of another: the one construct the engine does not screen)"
)


@attrs.frozen(eq=False)
class Stage:
    """A condition tested on each observation of a window: a `where`, or a reader's own."""

    condition: pl.Expr  # per observation; null for unknown
    last: tuple[tuple[str, str, pl.Expr], ...]  # (fact, column, flag per observation)


@attrs.frozen(eq=False)
class Step:
    """One read of a window by an aggregate, a quantifier or `consecutive` (module docstring)."""

    column: str  # the reader's value, per patient
    fact: str  # the series
    function: str  # an aggregate's function, "any", "all" or "consecutive"
    lo: pl.Expr  # the window's first instant, per patient (+inf: an empty window)
    hi: pl.Expr  # its last instant; the end of its last day when `hi_open`
    hi_open: bool
    bounds_known: pl.Expr  # the bounds and length are known (non-null)
    stages: tuple[Stage, ...] = ()  # the filters, innermost first
    reader: Stage | None = None  # the condition of `any` / `all` / `consecutive`

    def known(self, stage: int) -> str:
        """Column: the window after `stage` filters is known (non-null)."""
        return f"{self.column}:k{stage}"

    @property
    def empty(self) -> str:
        """Column: the window after every filter is known and holds no observation."""
        return f"{self.column}:e"

    @property
    def ordered(self) -> bool:
        """Whether the observations must be read in time order."""
        flags = any(s.last for s in self.stages) or (self.reader is not None and self.reader.last)
        return self.function in _ORDERED or bool(flags)


_ORDERED = {"sum", "mean", "latest", "earliest", "first_time", "last_time", "consecutive"}
#: A reader's value over a known window with no observation (after its filters).
_WHEN_EMPTY: dict[str, Any] = {
    "count": 0.0,
    "exists": False,
    "any": False,
    "all": True,
    "consecutive": 0.0,
}


class WindowHandlers:
    """The window half of the polars compiler (see the module docstring)."""

    # provided by the compiler
    steps: list[Any]
    facts: dict[str, Any]
    define_bodies: dict[str, ir.Node]
    _keep: list[ir.Node]

    def expr(self, node: ir.Node, obs: bool = False) -> pl.Expr:  # pragma: no cover - compiler's
        raise NotImplementedError

    def sources(self, node: ir.Node, obs: bool = False) -> Sources:  # pragma: no cover
        raise NotImplementedError

    def _name(self, what: str) -> str:  # pragma: no cover - compiler's
        raise NotImplementedError

    def _init_windows(self) -> None:
        self.by_node: dict[int, Step] = {}
        self._frames: list[str] = []  # whose observation is under test, innermost last
        self._readers: list[ir.Node] = []  # the readers being compiled, innermost last

    # ------------------------------------------------------------------ values

    def _aggregate(self, node: ir.Aggregate, obs: bool) -> pl.Expr:
        return pl.col(self._step(node).column)

    def _quantified(self, node: ir.Quantified, obs: bool) -> pl.Expr:
        return pl.col(self._step(node).column)

    def _consecutive(self, node: ir.Consecutive, obs: bool) -> pl.Expr:
        return pl.col(self._step(node).column)

    def _window(self, node: ir.Window | ir.Filter, obs: bool) -> pl.Expr:
        raise unsupported(node, "a window is read by an aggregate, a quantifier or `consecutive`")

    _filter = _window

    def _each(self, node: ir.Each, obs: bool) -> pl.Expr:
        if obs and self._frames and self._frames[-1] == "each":
            return pl.col(VALUE)
        raise unsupported(node, "an observation outside `any` / `all`")

    def _observation_value(self, node: ir.ObservationValue, obs: bool) -> pl.Expr:
        if obs and self._frames and self._frames[-1] == "where":
            return pl.col(VALUE)
        raise unsupported(self._readers[-1] if self._readers else node, CORRELATED)

    # ------------------------------------------------------------------ steps

    def _step(self, node: ir.Aggregate | ir.Quantified | ir.Consecutive) -> Step:
        step = self.by_node.get(id(node))
        if step is not None:
            return step
        self._readers.append(node)
        try:
            step = self._new_step(node)
        finally:
            self._readers.pop()
        self.steps.append(step)
        self.by_node[id(node)] = step
        self._keep.append(node)
        return step

    def _new_step(self, node: ir.Aggregate | ir.Quantified | ir.Consecutive) -> Step:
        window, filters = self._chain(node.window, node)
        fact = self._collection_fact(window.series, node)
        lo, hi, known = self._bounds(window)
        stages = tuple(self._stage(f.condition, "where") for f in filters)
        reader = None
        if isinstance(node, ir.Quantified):
            function = node.quantifier.value
            reader = self._stage(node.condition, "each")
        elif isinstance(node, ir.Consecutive):
            function = "consecutive"
            reader = self._stage(node.condition, "where")
        else:
            function = node.function
        column = self._name("agg")
        return Step(column, fact, function, lo, hi, is_date(window.end), known, stages, reader)

    def _chain(self, window: ir.Node, user: ir.Node) -> tuple[ir.Window, list[ir.Filter]]:
        """The window a reader reads, and its filters innermost first (through defines)."""
        filters = []
        node = self._resolve(window)
        while isinstance(node, ir.Filter):
            filters.append(node)
            node = self._resolve(node.window)
        if not isinstance(node, ir.Window):
            raise unsupported(user, "its argument is not a window of a series")
        return node, filters[::-1]

    def _stage(self, condition: ir.Node, frame: str) -> Stage:
        """A condition per observation, with the missing-fact flags it reaches."""
        self._frames.append(frame)
        try:
            test = self.expr(condition, obs=True)
            found = self.sources(condition, obs=True)
        finally:
            self._frames.pop()
        last = tuple(
            (name, self._name("last"), test.is_null() & reached) for name, reached in found.items()
        )
        return Stage(test, last)

    def _bounds(self, window: ir.Window) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
        """(lo, hi, known) of a window, per patient (see the module docstring)."""
        end = pl.col(AS_OF) if window.end is None else self.expr(window.end)
        if window.start is not None:
            start = self.expr(window.start)
            unknown = start.is_null() | end.is_null()
            empty = (never(start) | never(end)).fill_null(False)
        elif window.duration is not None:
            start = shift(end, window.duration, -1)
            unknown = end.is_null()
            empty = never(end).fill_null(False)
        else:
            assert window.length is not None
            length = self.expr(window.length)
            # as the interpreter: the start of a computed length before a never end is unknown
            unknown = end.is_null() | length.is_null() | never(end).fill_null(False)
            start = end - length
            empty = pl.lit(False)
        lo = pl.when(empty).then(pl.lit(float("inf"))).otherwise(start)
        hi = end + DAY if is_date(window.end) else end
        return lo, hi, ~unknown

    def _resolve(self, node: ir.Node) -> ir.Node:
        """A define of a series, set or window, read through to its body."""
        while isinstance(node, ir.DefineRef) and node.name in self.define_bodies:
            node = self.define_bodies[node.name]
        return node

    def _collection_fact(self, node: ir.Node, user: ir.Node) -> str:
        resolved = self._resolve(node)
        if isinstance(resolved, ir.FactRef) and resolved.name in self.facts:
            return resolved.name
        raise unsupported(user, "it reads a series or set that is not a declared fact")

    # ------------------------------------------------------------------ missing facts

    def _reader_sources(self, node: ir.Aggregate | ir.Quantified | ir.Consecutive) -> Sources:
        """`Program._unknown_sources` of an unknown reader."""
        step = self._step(node)
        window, filters = self._chain(node.window, node)
        m = len(filters)
        out: Sources = {step.fact: pl.col(step.empty)}
        merge(out, self._stage_sources(step, window, m), ~pl.col(step.known(m)))
        if step.reader is not None:  # flags hold only where the window is known and not empty
            for name, column, _ in step.reader.last:
                merge(out, {name: pl.col(column)}, pl.lit(True))
        return out

    def _stage_sources(self, step: Step, window: ir.Window, stage: int) -> Sources:
        """The sources of the window after `stage` filters, assuming it is unknown."""
        out: Sources = {}
        if stage == 0:
            merge(out, self.sources(window.series), pl.col(step.fact).is_null())
            for child in (window.start, window.length, window.end):
                if child is not None:
                    merge(out, self.sources(child), self.expr(child).is_null())
            return out
        merge(out, self._stage_sources(step, window, stage - 1), ~pl.col(step.known(stage - 1)))
        for name, column, _ in step.stages[stage - 1].last:
            merge(out, {name: pl.col(column)}, pl.lit(True))
        return out


# --------------------------------------------------------------------------- running


def run_window(step: Step, patients: pl.DataFrame, population: Population) -> pl.DataFrame:
    """`patients` with the step's columns beside them: its value, whether each stage of its
    window is known, whether it is empty, and the missing-fact flags of its conditions."""
    key = population.key
    known = (pl.col(step.fact).is_not_null() & step.bounds_known).fill_null(False)
    patients = patients.with_columns(known.alias(step.known(0)))
    stages = [*step.stages, *([step.reader] if step.reader is not None else [])]
    per_row = [s.condition for s in stages] + [e for s in stages for _, _, e in s.last]
    needed = roots(per_row) - {VALUE, AT, SEQ, key}
    inside = _inside(step, patients, population, sorted(needed))
    if step.ordered:  # time order, ties in input order
        inside = inside.sort([key, AT, SEQ])
    for j, stage in enumerate(step.stages, 1):  # one at a time: each pass reads the one before
        passed = pl.col(f":f{j}").fill_null(False)
        inside = inside.with_columns(
            stage.condition.alias(f":f{j}"), *(e.alias(c) for _, c, e in stage.last)
        ).with_columns((passed if j == 1 else pl.col(f":p{j - 1}") & passed).alias(f":p{j}"))
    if step.reader is not None:
        reader = step.reader
        inside = inside.with_columns(
            reader.condition.alias(":t"), *(e.alias(c) for _, c, e in reader.last)
        )
    m = len(step.stages)

    def tested(e: pl.Expr, stage: int) -> pl.Expr:
        """`e` on the observations that passed the first `stage` filters."""
        return e if stage == 0 else e.filter(pl.col(f":p{stage}"))

    aggregates = []
    for j, stage in enumerate(step.stages, 1):
        aggregates.append(tested(pl.col(f":f{j}").is_null(), j - 1).any().alias(f":bad{j}"))
        aggregates += [tested(pl.col(c), j - 1).last().alias(c) for _, c, _ in stage.last]
    n = pl.len() if m == 0 else pl.col(f":p{m}").sum()
    aggregates.append(n.alias(":n"))
    aggregates.append(_reduction(step.function, lambda e: tested(e, m), n).alias(step.column))
    if step.reader is not None:
        aggregates += [tested(pl.col(c), m).last().alias(c) for _, c, _ in step.reader.last]
    found = inside.group_by(key).agg(aggregates).collect()  # rows keep their order in a group
    joined = beside(patients, found, key)
    return joined.with_columns(_settled(step)).drop(":n", *(f":bad{j}" for j in range(1, m + 1)))


def _inside(step: Step, patients: pl.DataFrame, population: Population, needed: list[str]) -> Any:
    """The observations of the step's series inside each patient's window, with the patients'
    columns `needed` by the conditions beside them."""
    key = population.key
    observations = population.observations[step.fact].lazy()
    constant = _constant_bounds(step, population)
    if constant is not None:  # one as_of, bounds that read nothing else: two numbers
        lo, hi = constant
        if lo is None or hi is None:
            return observations.filter(pl.lit(False))
        inside = observations.filter(pl.col(AT) >= lo, _below(step, pl.lit(hi)))
        if needed:
            columns = patients.lazy().select(key, *needed)
            inside = inside.join(columns, on=key, how="inner")
        return inside
    keys = (
        patients.lazy()
        .filter(pl.col(step.known(0)))
        .select(key, step.lo.alias(":lo"), step.hi.alias(":hi"), *needed)
    )
    inside = observations.join(keys, on=key, how="inner")
    return inside.filter(pl.col(AT) >= pl.col(":lo"), _below(step, pl.col(":hi"))).drop(
        ":lo", ":hi"
    )


def _constant_bounds(step: Step, population: Population) -> tuple[Any, Any] | None:
    if population.as_of is None or not roots([step.lo, step.hi, step.bounds_known]) <= {AS_OF}:
        return None
    one = pl.DataFrame({AS_OF: [population.as_of]}, schema={AS_OF: pl.Float64})
    lo, hi, known = one.select(
        step.lo.alias(":lo"), step.hi.alias(":hi"), step.bounds_known.alias(":known")
    ).row(0)
    return (lo, hi) if known else (None, None)


def _below(step: Step, hi: pl.Expr) -> pl.Expr:
    return pl.col(AT) < hi if step.hi_open else pl.col(AT) <= hi


def _settled(step: Step) -> list[pl.Expr]:
    """The step's columns once joined: unknown where the window is, filled where it is empty."""
    m = len(step.stages)
    known = pl.col(step.known(0))
    out = []
    for j, stage in enumerate(step.stages, 1):
        out += [(pl.col(c).fill_null(False) & known).alias(c) for _, c, _ in stage.last]
        known = known & ~pl.col(f":bad{j}").fill_null(False)
        out.append(known.alias(step.known(j)))
    n = pl.col(":n").fill_null(0)
    value = pl.when(~known).then(None)
    if step.function in _WHEN_EMPTY:
        value = value.when(n == 0).then(pl.lit(_WHEN_EMPTY[step.function]))
    out.append(value.otherwise(pl.col(step.column)).alias(step.column))
    out.append((known & (n == 0)).alias(step.empty))
    if step.reader is not None:
        out += [(pl.col(c).fill_null(False) & known).alias(c) for _, c, _ in step.reader.last]
    del m
    return out


def _reduction(function: str, tested: Callable[[pl.Expr], pl.Expr], n: pl.Expr) -> pl.Expr:
    value = tested(pl.col(VALUE))
    match function:
        case "count":
            return n.cast(pl.Float64)
        case "exists":
            return n > 0
        case "max":
            return value.max()
        case "min":
            return value.min()
        case "sum":  # left to right, as Python's sum; unknown when it overflows
            total = value.cum_sum().last()
            return pl.when(total.is_finite()).then(total)
        case "mean":
            total = value.cum_sum().last()
            return pl.when(total.is_finite()).then(total / n)
        case "latest":
            return value.last()
        case "earliest":
            return value.first()
        case "first_time":
            return tested(pl.col(AT)).first()
        case "last_time":
            return tested(pl.col(AT)).last()
        case "any":
            return tested(pl.col(":t")).any(ignore_nulls=False)
        case "all":
            return tested(pl.col(":t")).all(ignore_nulls=False)
        case "consecutive":
            test = tested(pl.col(":t"))
            low, high = _longest_run(test.fill_null(False)), _longest_run(test.fill_null(True))
            return pl.when(low == high).then(low).cast(pl.Float64)
    raise AssertionError(function)  # pragma: no cover


def _longest_run(test: pl.Expr) -> pl.Expr:
    """The longest run of trues of a boolean sequence (in a group-by: per patient)."""
    total = test.cast(pl.Int32).cum_sum()
    before = pl.when(~test).then(total).otherwise(None).forward_fill().fill_null(0)
    return (total - before).max()


def beside(patients: pl.DataFrame, found: pl.DataFrame, key: str) -> pl.DataFrame:
    """`patients` with the columns of `found` (one row per key, or none) beside them; only the
    key is joined, so the patients' own columns are not copied."""
    aligned = patients.select(key).join(found, on=key, how="left", maintain_order="left")
    return patients.with_columns(aligned.drop(key).get_columns())


__all__ = ["CORRELATED", "Stage", "Step", "WindowHandlers", "beside", "run_window"]
