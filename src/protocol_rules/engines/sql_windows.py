"""Back end, SQL: windows and sets, read per patient and joined back as columns.

An aggregate, a quantifier, `consecutive` or `contains` reads the observations of one series
(or the members of one set). Each such *reader* gets its own relation: the observations of the
fact inside the window's bounds (``start <= at <= end``, a date end covering its whole day),
joined with the patient's columns; its conditions (`where`, the quantifier's, the run's) become
columns per observation; one GROUP BY patient reduces them; the result is LEFT JOINed into the
patients relation, where a patient without rows there gets the empty window's value.

Three-valued, as the interpreter (`evaluate_time.window`, `filtered`, `_longest_run`):

- the window is unknown when the series, a bound or the length is; a `never` bound empties it;
- ``W where C`` is unknown when C is unknown for one of its observations, each filter applying
  to the observations the previous ones kept; nothing read from an unknown window is known;
- ``any`` / ``all`` are Kleene over the kept observations; ``consecutive`` counts the longest
  run with unknowns as false and as true (gaps and islands with row numbers), unknown if the
  two differ;
- ``latest`` / ``earliest`` and sums read the observations in time order, ties in input order
  (the layout's order column); a sum adds left to right (`Dialect.ordered_sum_of`).

For missing facts each reader also keeps, per condition, the facts an unknown condition reached
at the last observation it ran on, as the interpreter's record holds it (`sql_missing`).
"""

from __future__ import annotations

from typing import Any

import attrs
import sqlglot
from sqlglot import exp

from ..check import ir
from ..check.types import BoolT, SeriesT, SetT, TimeT
from .sql_build import (
    Expr,
    add,
    alias,
    and_,
    case,
    col,
    compare,
    div,
    ident,
    is_null,
    not_,
    not_null,
    null,
    num,
    or_,
    sub,
    text,
    to_double,
)
from .sql_compile import Scope, refuse
from .sql_numeric import null_double
from .sql_stages import Relation
from .sql_time import DAY, is_never, shift


@attrs.define(eq=False)
class Reader:
    """What the patients relation holds about one reader, for its value and for missing facts.

    Columns are integers: `known` 1 / 0; the others NULL for a patient without observations
    there. `unknown[i]`: some condition up to level i was unknown on the rows it ran on;
    `ran[i]`: how many rows level i's condition ran on; `last[i]`: fact -> 1 when level i's
    condition reached it at its last row.
    """

    fact: str
    known: str
    rows: str
    kept: str
    unknown: list[str]
    ran: list[str]
    last: list[dict[str, str]]
    filters: int  # how many of the levels are `where` filters (the rest: the reader's own)
    window: ir.Window | None
    filter_nodes: tuple[ir.Filter, ...] = ()


@attrs.define(eq=False)
class _Plan:
    """The window relation of one reader while it is built."""

    fact: str
    rel: Relation
    key: str
    value: str
    at: str
    seq: str
    order_asc: list[exp.Ordered]
    order_desc: list[exp.Ordered]
    aggregates: list[tuple[str, Expr]] = attrs.field(factory=list)

    def out(self, names: Any, e: Expr, hint: str) -> str:
        name = names.new(f"{self.fact}_{hint}")
        self.aggregates.append((name, e))
        return name


class WindowReaders:
    """The window and set readers of the SQL compiler (a mixin of `sql.SqlCompiler`)."""

    def _init_windows(self) -> None:
        self.readers: dict[int, Reader] = {}
        self._read_cache: dict[int, Expr] = {}
        self.window_blocks: list[tuple[int, Relation, str, exp.Select]] = []

    def _aggregate(self, node: ir.Aggregate, scope: Scope) -> Expr:
        return self._read(node, node.window, node.function, None, scope)

    def _quantified(self, node: ir.Quantified, scope: Scope) -> Expr:
        return self._read(node, node.window, node.quantifier.value, node.condition, scope)

    def _consecutive(self, node: ir.Consecutive, scope: Scope) -> Expr:
        return self._read(node, node.window, "consecutive", node.condition, scope)

    def _contains(self, node: ir.Contains, scope: Scope) -> Expr:
        return self._read(node, node.collection, "contains", None, scope)

    # ------------------------------------------------------------------ structure

    def _resolve(self, node: ir.Node) -> ir.Node:
        while isinstance(node, ir.DefineRef) and node.name in self.define_bodies:
            node = self.define_bodies[node.name]
        return node

    def _chain(self, window: ir.Node) -> tuple[ir.Node, list[ir.Filter]]:
        """(the base window or set, the filters over it, innermost first)."""
        node = self._resolve(window)
        filters: list[ir.Filter] = []
        while isinstance(node, ir.Filter):
            filters.append(node)
            node = self._resolve(node.window)
        filters.reverse()
        return node, filters

    def _fact_of(self, user: ir.Node, node: ir.Node, kind: type) -> str:
        node = self._resolve(node)
        if isinstance(node, ir.FactRef) and isinstance(node.type, kind):
            return node.name
        raise refuse(user, "it reads a series or set that is not a declared fact")

    # ------------------------------------------------------------------ a reader

    def _read(
        self, node: ir.Node, window: ir.Node, function: str, condition: ir.Node | None, scope: Scope
    ) -> Expr:
        cached = self._read_cache.get(id(node))
        if cached is not None:
            return cached
        if self.obs is None:
            raise refuse(node, "the data has no observations table")
        self._keep.append(node)
        base, filters = self._chain(window)
        patients = self.patients.rel
        presence = col(self.presence_columns[_fact_name(self, node, base, function)])
        if function == "contains":
            fact = self._fact_of(node, base, SetT)
            bounds = None
            known = not_null(presence)
        else:
            if not isinstance(base, ir.Window):
                raise refuse(node, "its window is not `series over last …` or `series from … to …`")
            fact = self._fact_of(node, base.series, SeriesT)
            bounds = self._bounds(base)
            known = and_(not_null(presence), not_null(bounds[0]), not_null(bounds[1]))
        known_flag = patients.column(
            case((known, num(1)), default=num(0)), self.hint(fact + "_known")
        )
        plan = self._plan(fact)
        wscope = Scope(plan.rel, next(self._scopes), col(plan.value), col(plan.at))
        levels: list[ir.Node] = [f.condition for f in filters]
        if condition is not None:
            levels.append(condition)
        conditions, previous_kept, last_rows = [], [], []
        kept: Expr = num(1)
        for i, cond in enumerate(levels):
            c = self.expr(cond, wscope)
            ci = plan.rel.column(case((c, num(1)), (not_(c), num(0))), self.hint("condition"))
            rn = plan.rel.column(
                _row_number([col(plan.key), kept], plan.order_desc), self.hint("last_row")
            )
            conditions.append(ci)
            previous_kept.append(kept)
            last_rows.append(rn)
            if i < len(filters):
                both = and_(compare("=", kept, num(1)), compare("=", ci, num(1)))
                kept = plan.rel.column(case((both, num(1)), default=num(0)), self.hint("kept"))
        is_kept = compare("=", kept, num(1))
        names = self.names
        rows = plan.out(names, exp.Count(this=exp.Star()), "rows")
        kept_n = plan.out(names, exp.Sum(this=case((is_kept, num(1)), default=num(0))), "kept")
        unknown, ran, last = [], [], []
        so_far: Expr | None = None
        for i, cond in enumerate(levels):
            here = and_(compare("=", previous_kept[i], num(1)), is_null(conditions[i]))
            so_far = here if so_far is None else or_(so_far, here)
            unknown.append(
                plan.out(
                    names, exp.Max(this=case((so_far, num(1)), default=num(0))), f"unknown_{i}"
                )
            )
            ran.append(
                plan.out(
                    names,
                    exp.Sum(
                        this=case((compare("=", previous_kept[i], num(1)), num(1)), default=num(0))
                    ),
                    f"ran_{i}",
                )
            )
            flags = {}
            for name, reached in self.sources(cond, wscope).items():
                at_last = and_(
                    compare("=", previous_kept[i], num(1)),
                    compare("=", last_rows[i], num(1)),
                    is_null(conditions[i]),
                    reached,
                )
                flags[name] = plan.out(
                    names, exp.Max(this=case((at_last, num(1)), default=num(0))), f"last_{name}"
                )
            last.append(flags)
        results = self._reduce(node, function, plan, kept, is_kept, conditions)
        after = self._patient_level(plan, [known_flag, *(bounds[:3] if bounds else ())])
        plan.rel.base = self._window_base(plan, bounds, known_flag, after)
        cte = names.new(f"{fact}_{function}")
        query = (
            exp.select(alias(col(plan.key), plan.key), *(alias(e, n) for n, e in plan.aggregates))
            .from_(exp.Table(this=ident(plan.rel.last)))
            .group_by(col(plan.key))
        )
        self.window_blocks.append((after, plan.rel, cte, query))
        patients.join(
            cte, [(col(self.key, "s"), plan.key)], [(n, n) for n, _ in plan.aggregates], after=after
        )
        reader = Reader(
            fact,
            known_flag.name,
            rows,
            kept_n,
            unknown,
            ran,
            last,
            len(filters),
            base if isinstance(base, ir.Window) else None,
            tuple(filters),
        )
        self.readers[id(node)] = reader
        value = self._final(node, function, reader, results)
        self._read_cache[id(node)] = value
        return value

    def _plan(self, fact: str) -> _Plan:
        names = self.names
        key, value = names.new(fact + "_patient"), names.new(fact + "_value")
        at, seq = names.new(fact + "_at"), names.new(fact + "_seq")
        rel = Relation(names, "window_" + fact, exp.select(num(1)), [key, value, at, seq])
        tie = seq if self.obs.seq is not None else value  # no input order: ties by value
        asc = [exp.Ordered(this=col(at)), exp.Ordered(this=col(tie))]
        desc = [exp.Ordered(this=col(at), desc=True), exp.Ordered(this=col(tie), desc=True)]
        return _Plan(fact, rel, key, value, at, seq, asc, desc)

    def _bounds(self, w: ir.Window) -> tuple[Expr, Expr, Expr, bool]:
        """(start, end, never, end is a date) as patient columns: a NULL start or end makes the
        window unknown, `never` = 1 empties it (`evaluate_time.window`)."""
        rel = self.patients.rel
        end = self.expr(w.end) if w.end is not None else self.as_of_expr
        end = rel.column(end, self.hint("window_end"))
        if w.start is not None:
            start = self.expr(w.start)
        elif w.duration is not None:
            moved = shift(rel, self.dialect, end, w.duration, -1, self.hint("window_start"))
            if moved is None:
                raise self._no_months(w)
            start = moved
        else:
            assert w.length is not None
            length = self.expr(w.length)
            # a length beyond any calendar (`time_since(never)`) overflows in `evaluate`: unknown
            endless = or_(compare(">", length, num(1e290)), compare("<", length, num(-1e290)))
            start = case(
                (or_(is_null(length), is_never(end), endless), null_double()),
                default=sub(end, length),
            )
        start = rel.column(start, self.hint("window_start"))
        never = rel.column(
            case((or_(is_never(end), is_never(start)), num(1)), default=num(0)),
            self.hint("window_never"),
        )
        end_is_date = (
            w.end is not None and isinstance(w.end.type, TimeT) and not w.end.type.has_time
        )
        return start, end, never, end_is_date

    def _window_base(self, plan: _Plan, bounds: Any, known: exp.Column, after: int) -> exp.Select:
        """The observations of the window, with the patient's columns (stage `after`)."""
        obs = self.obs
        o, p = "o", "p"
        items = [
            alias(col(obs.key, o), plan.key),
            alias(col(obs.values[plan.fact], o), plan.value),
            alias(col(obs.at, o), plan.at),
            alias(col(obs.seq, o) if obs.seq else null(), plan.seq),
            exp.Column(this=exp.Star(), table=ident(p)),
        ]
        where = [
            compare("=", col(obs.fact, o), text(plan.fact)),
            compare("=", col(obs.marker, o), num(0)),
            is_null(col(obs.problem, o)),
            compare("=", col(known.name, p), num(1)),
        ]
        if bounds is not None:
            start, end, never, end_is_date = bounds
            where.append(compare("=", col(never.name, p), num(0)))
            where.append(compare(">=", col(obs.at, o), col(start.name, p)))
            if end_is_date:
                where.append(compare("<", col(obs.at, o), add(col(end.name, p), num(DAY))))
            else:
                where.append(compare("<=", col(obs.at, o), col(end.name, p)))
        stage = self.patients.rel.name_at(after)
        return (
            exp.select(*items)
            .from_(exp.Table(this=ident(obs.relation.last), alias=exp.TableAlias(this=ident(o))))
            .join(
                exp.Table(this=ident(stage), alias=exp.TableAlias(this=ident(p))),
                on=exp.EQ(this=col(obs.key, o), expression=col(self.key, p)),
                join_type="INNER",
            )
            .where(and_(*where))
        )

    def _patient_level(self, plan: _Plan, columns: list[Expr]) -> int:
        """The patients stage holding every patient column the window relation reads: the
        window's bounds and known flag, and whatever its conditions read."""
        patients = self.patients.rel
        exprs: list[Expr] = [e for _, e in plan.aggregates] + list(columns)
        for stage in plan.rel.stages:
            exprs += [e for _, e in stage.columns]
        found = 0
        own = {n for n, level in plan.rel.levels.items() if level > 0} | {
            plan.key.lower(),
            plan.value.lower(),
            plan.at.lower(),
            plan.seq.lower(),
        }
        for e in exprs:
            for c in e.find_all(exp.Column):
                name = c.name.lower()
                if name not in own:
                    found = max(found, patients.levels.get(name, 0))
        return found

    # ------------------------------------------------------------------ reductions

    def _reduce(
        self,
        node: ir.Node,
        function: str,
        plan: _Plan,
        kept: Expr,
        is_kept: Expr,
        conditions: list[Expr],
    ) -> dict[str, str]:
        """The aggregates of the reader's value (names of columns of the grouped CTE)."""
        names, rel = self.names, plan.rel
        value, at = col(plan.value), col(plan.at)

        def out(e: Expr, hint: str) -> str:
            return plan.out(names, e, hint)

        def count_where(flag: Expr) -> Expr:
            return exp.Sum(this=case((and_(is_kept, flag), num(1)), default=num(0)))

        stored = value
        if isinstance(node.type, BoolT) and function in ("latest", "earliest"):
            stored = case(
                (
                    self.dialect.predicate(value) if not self.dialect.native_booleans else value,
                    num(1),
                ),
                default=num(0),
            )
        match function:
            case "count" | "exists":
                return {"n": out(count_where(exp.true()), function)}
            case "max":
                return {"v": out(exp.Max(this=case((is_kept, value))), "max")}
            case "min":
                return {"v": out(exp.Min(this=case((is_kept, value))), "min")}
            case "first_time":
                return {"v": out(exp.Min(this=case((is_kept, at))), "first_time")}
            case "last_time":
                return {"v": out(exp.Max(this=case((is_kept, at))), "last_time")}
            case "latest" | "earliest":
                order = plan.order_desc if function == "latest" else plan.order_asc
                rn = rel.column(
                    _row_number([col(plan.key), kept], order), self.hint(function + "_row")
                )
                first = and_(is_kept, compare("=", rn, num(1)))
                return {"v": out(exp.Max(this=case((first, stored))), function)}
            case "sum" | "mean":
                total = self._ordered_sum(plan, kept, is_kept)
                return {"v": out(total, "sum"), "n": out(count_where(exp.true()), "n")}
            case "any" | "all":
                c = conditions[-1]
                return {
                    "t": out(count_where(compare("=", c, num(1))), "true"),
                    "u": out(count_where(is_null(c)), "unknown"),
                    "f": out(count_where(compare("=", c, num(0))), "false"),
                }
            case "consecutive":
                c = conditions[-1]
                position = rel.column(
                    _row_number([col(plan.key), kept], plan.order_asc), self.hint("position")
                )
                found = {}
                for which, flag in (
                    ("low", compare("=", c, num(1))),
                    ("high", or_(compare("=", c, num(1)), is_null(c))),
                ):
                    f = rel.column(
                        case((and_(is_kept, flag), num(1)), default=num(0)), self.hint("in_run")
                    )
                    island = rel.column(
                        sub(position, _row_number([col(plan.key), kept, f], plan.order_asc)),
                        self.hint("island"),
                    )
                    run = rel.column(
                        exp.Window(
                            this=exp.Count(this=exp.Star()),
                            partition_by=[col(plan.key), kept, f, island],
                        ),
                        self.hint("run"),
                    )
                    found[which] = out(
                        exp.Max(this=case((compare("=", f, num(1)), run), default=num(0))),
                        "run_" + which,
                    )
                return found
            case "contains":
                items = node.items  # type: ignore[attr-defined]
                hits = {}
                for j, item in enumerate(items):
                    member = self._member(item, value, plan)
                    hits[f"h{j}"] = out(
                        exp.Max(this=case((member, num(1)), default=num(0))), f"has_{j}"
                    )
                return hits
        raise refuse(node, f"the aggregate `{function}`")

    def _member(self, item: ir.Node, value: Expr, plan: _Plan) -> Expr:
        patient_item = self.value(item)
        if isinstance(item.type, BoolT):
            return compare("=", value, patient_item)
        return (
            self.dialect.text_equal(value, patient_item)
            if isinstance(item, ir.Const) and isinstance(item.value, str)
            else compare("=", value, patient_item)
        )

    def _ordered_sum(self, plan: _Plan, kept: Expr, is_kept: Expr) -> Expr:
        rel = plan.rel
        value = col(plan.value)
        order = [o.this for o in plan.order_asc]
        total = self.dialect.ordered_sum_of(value, order, is_kept)
        if total is not None:
            return total
        running = rel.column(
            exp.Window(
                this=exp.Sum(this=value),
                partition_by=[col(plan.key), kept],
                order=exp.Order(expressions=_nulls_unsaid(plan.order_asc, self.dialect)),
                spec=exp.WindowSpec(
                    kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"
                ),
            ),
            self.hint("running_sum"),
        )
        rn = rel.column(_row_number([col(plan.key), kept], plan.order_desc), self.hint("sum_last"))
        return exp.Max(this=case((and_(is_kept, compare("=", rn, num(1))), running)))

    # ------------------------------------------------------------------ the value

    def _final(self, node: ir.Node, function: str, reader: Reader, r: dict[str, str]) -> Expr:
        """The reader's value, a column of the patients relation."""
        rel, d = self.patients.rel, self.dialect
        known = compare("=", col(reader.known), num(1))
        no_rows = is_null(col(reader.rows))
        if reader.filters:
            unknown = compare("=", col(reader.unknown[reader.filters - 1]), num(1))
        else:
            unknown = exp.false()
        hint = self.hint(f"{reader.fact}_{function}")

        def column(inner: Expr, empty: Expr) -> exp.Column:
            return rel.column(
                case((not_(known), null()), (no_rows, empty), (unknown, null()), default=inner),
                hint,
            )

        def boolean(inner: Expr, empty: Expr) -> Expr:
            return d.predicate(self._bool_from_int(column(inner, empty)))

        match function:
            case "count":
                return column(to_double(col(r["n"])), num(0.0))
            case "exists":
                return boolean(
                    case((compare(">", col(r["n"]), num(0)), num(1)), default=num(0)), num(0)
                )
            case "any":
                t, u = col(r["t"]), col(r["u"])
                return boolean(
                    case(
                        (compare(">", t, num(0)), num(1)),
                        (compare(">", u, num(0)), null()),
                        default=num(0),
                    ),
                    num(0),
                )
            case "all":
                f, u = col(r["f"]), col(r["u"])
                return boolean(
                    case(
                        (compare(">", f, num(0)), num(0)),
                        (compare(">", u, num(0)), null()),
                        default=num(1),
                    ),
                    num(1),
                )
            case "consecutive":
                low, high = col(r["low"]), col(r["high"])
                return column(case((compare("=", low, high), to_double(low))), num(0.0))
            case "mean":
                n = col(r["n"])
                return column(
                    case((compare(">", n, num(0)), div(col(r["v"]), to_double(n)))), null()
                )
            case "sum":
                return column(case((compare(">", col(r["n"]), num(0)), col(r["v"]))), null())
            case "contains":
                return self._contains_value(node, reader, r)
        if isinstance(node.type, BoolT):
            return boolean(col(r["v"]), null())
        return column(col(r["v"]), null())

    def _contains_value(self, node: ir.Contains, reader: Reader, r: dict[str, str]) -> Expr:
        """Kleene over the items: `contains all of` is an and, `contains any of` an or."""
        from .. import ast

        rel, d = self.patients.rel, self.dialect
        hits = []
        for j, item in enumerate(node.items):
            has = compare("=", _zero_if_null(col(r[f"h{j}"])), num(1))
            if not isinstance(item, ir.Const):  # an unknown item: unknown whether it is there
                has = d.predicate(
                    case((is_null(self.value(item)), d.null_bool()), default=d.value(has))
                )
            hits.append(has)
        combined = and_(*hits) if node.mode is ast.ContainsMode.ALL else or_(*hits)
        known = compare("=", col(reader.known), num(1))
        stored = case((not_(known), d.null_bool()), default=d.value(combined))
        return d.predicate(rel.column(stored, self.hint(f"{reader.fact}_contains")))


def _fact_name(compiler: Any, node: ir.Node, base: ir.Node, function: str) -> str:
    resolved = compiler._resolve(
        base if function == "contains" else base.series if isinstance(base, ir.Window) else base
    )
    if isinstance(resolved, ir.FactRef) and resolved.name in compiler.presence_columns:
        return resolved.name
    raise refuse(node, "it reads a series or set that is not a declared fact")


def _zero_if_null(x: Expr) -> Expr:
    return case((is_null(x), num(0)), default=x)


def _nulls_unsaid(order: list[exp.Ordered], dialect: Any) -> list[exp.Ordered]:
    """`order` with NULLs where `dialect` sorts them unasked, so that no NULLS FIRST/LAST is
    printed: T-SQL and BigQuery have none, and sqlglot cannot emulate it in a framed window
    (the running sum). A window's observations all have an instant and a tie, never NULL, so
    where NULLs would go changes nothing."""
    nulls = sqlglot.Dialect.get_or_raise(dialect.sqlglot()).NULL_ORDERING
    out = []
    for o in order:
        desc = bool(o.args.get("desc"))
        first = (nulls == "nulls_are_small" and not desc) or (nulls == "nulls_are_large" and desc)
        out.append(exp.Ordered(this=o.this.copy(), desc=desc, nulls_first=first))
    return out


def _row_number(partition: list[Expr], order: list[exp.Ordered]) -> Expr:
    return exp.Window(
        this=exp.RowNumber(),
        partition_by=partition,
        order=exp.Order(expressions=[o.copy() for o in order]),
    )
