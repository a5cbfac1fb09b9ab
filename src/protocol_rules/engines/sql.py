"""Back end: a checked protocol compiled into one SQL query, for every dialect sqlglot writes.

`compile_sql(checked, dialect)` returns a `SqlQuery`: a sqlglot expression tree (never text
pasted together) over the columnar layout — a ``patients`` table, wide, and an
``observations`` table, long (docs/screening.md) — that yields, per patient, what the polars
engine yields: ``patient_id``, ``status``, one column per criterion id (``met``, ``not_met``,
``unknown``), ``missing_facts`` (names separated by ``;``), ``error_code`` and
``error_message``. The DuckDB and Spark engines (`engines.duckdb`, `engines.spark`) run the same
query, asking for its *engine* form: booleans and bit masks instead of words.

The query reads as the protocol computes, one CTE per stage (docs/sql.md):

- ``unit_conversions``: the unit table (`sql_layout.UnitTable`), derived from the data's
  distinct (fact, unit) pairs with the project's units module;
- ``observations…``: the observations, typed and converted; ``observed``: which series and
  sets each patient has;
- ``patients``, ``patients_1``, …: the patients' facts, typed and converted, then defines (a
  column each, named after the define), window aggregates (``window_<series>…`` joined back),
  criteria (a column each, named after the criterion id), missing facts;
- the final SELECT: status, outcomes, missing facts, the first problem of a malformed record.

Semantics are the interpreter's, to the last bit where floating point is involved
(`sql_numeric`); `sql_compile`, `sql_windows`, `sql_missing`, `sql_time` and `sql_layout`
say how. What a dialect cannot express is refused when compiling (PR520-PR522), never
approximated silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from sqlglot import exp

from .. import ast
from ..check import CheckedProtocol, ir
from ..check.types import CodeT, SeriesT, SetT
from ..diagnostics import error
from . import ScreeningError
from .sql_build import (
    DIALECTS,
    Dialect,
    Expr,
    alias,
    and_,
    case,
    coalesce,
    col,
    compare,
    double,
    ident,
    is_null,
    not_,
    num,
    or_,
    render,
    text,
)
from .sql_compile import ExprCompiler, Scope
from .sql_layout import (
    LayoutSchema,
    Problem,
    Reader,
    UnitTable,
    element,
    first_problem,
    is_collection,
    past_problems,
    presence,
    read_observations,
    read_patients,
)
from .sql_missing import MissingFacts
from .sql_stages import Names, with_ctes
from .sql_windows import WindowReaders

#: Columns of the result besides one per criterion (as `screening.COLUMNS`).
RESULT_COLUMNS = ("patient_id", "status", "missing_facts", "error_code", "error_message")
OUTPUTS = ("text", "engine")


# --------------------------------------------------------------------------- errors


def unsupported(node: Any, why: str) -> ScreeningError:
    """PR520: a construct the SQL compiler does not compile, named with its place in the file."""
    source = getattr(node, "source", None)
    span = getattr(source, "span", None)
    shown = " ".join(span.text.split()) if span is not None else type(node).__name__
    return ScreeningError(
        [
            error(
                "PR520",
                f"the SQL compiler cannot compile `{shown}` ({type(node).__name__}): {why}",
                span,
                help="screen with the polars engine or `evaluate`, or rewrite the expression",
            )
        ]
    )


def refuse_codes(checked: CheckedProtocol) -> None:
    """PR520 for a fact holding codes: terminology (docs/language/codes.md) is screened by the
    polars engine and `evaluate`; the SQL compiler has no code columns yet."""
    for fact in checked.facts:
        if isinstance(element(fact.type), CodeT):
            raise ScreeningError(
                [
                    error(
                        "PR520",
                        f"the SQL compiler cannot compile fact `{fact.name}`: it holds codes, "
                        "which are not compiled to SQL yet",
                        getattr(fact, "span", None),
                        help="screen with the polars engine (`--engine polars`) or `evaluate`",
                    )
                ]
            )


def unsupported_dialect(dialect: Dialect, what: str, help: str) -> ScreeningError:
    """PR521: something the protocol or the data needs that this SQL dialect cannot express."""
    return ScreeningError(
        [
            error(
                "PR521",
                f"the {dialect.name} dialect cannot express {what}",
                None,
                path=f"dialect {dialect.name}",
                help=help,
            )
        ]
    )


def _name_clash(checked: CheckedProtocol) -> ScreeningError | None:
    """PR522: criterion ids that SQL engines cannot tell apart (they compare names without
    case) or that are the names of result columns."""
    seen: dict[str, str] = {c.lower(): c for c in RESULT_COLUMNS}
    for criterion in checked.criteria:
        other = seen.get(criterion.id.lower())
        if other is not None:
            return ScreeningError(
                [
                    error(
                        "PR522",
                        f"criterion `{criterion.id}` has the name of the column `{other}` "
                        "once SQL ignores case",
                        criterion.decl.span if hasattr(criterion, "decl") else None,
                        help="rename the criterion: SQL engines compare column names without case",
                    )
                ]
            )
        seen[criterion.id.lower()] = criterion.id
    return None


def dialect_named(name: str) -> Dialect:
    if name not in DIALECTS:
        choices = ", ".join(f"`{d}`" for d in DIALECTS)
        raise ScreeningError(
            [
                error(
                    "PR523",
                    f"unknown SQL dialect `{name}`",
                    None,
                    path="dialect",
                    help=f"use {choices}",
                )
            ]
        )
    return DIALECTS[name]()


# --------------------------------------------------------------------------- the query


@attrs.frozen
class Stage:
    """One stage of `SqlQuery.stages`: its name (the view later stages read), its SELECT, and
    the columns (lower case) that later stages or the final SELECT may read — None: all."""

    name: str
    sql: str
    columns: frozenset[str] | None

    def keep(self, names: Sequence[str]) -> list[str]:
        """Of a stage result's column `names`, those to keep (in their order)."""
        if self.columns is None:
            return list(names)
        return [n for n in names if n.lower() in self.columns]


def _read_downstream(parts: list[tuple[str, exp.Expression]]) -> dict[str, frozenset[str] | None]:
    """For each part (in order; the last is the final SELECT), the column names later parts
    may read from it: every column name a reader mentions, and — if the reader passes rows on
    with a ``*`` — whatever the reader's own readers may read. Names are compared without
    case and without their table, which can only keep too much, never too little."""
    where = {name.lower(): i for i, (name, _) in enumerate(parts)}
    mentions: list[set[str]] = []
    starred: list[bool] = []
    reads: list[set[int]] = []
    for i, (_, body) in enumerate(parts):
        mentions.append({c.name.lower() for c in body.find_all(exp.Column) if c.name})
        starred.append(any(True for _ in body.find_all(exp.Star)))
        tables = {t.name.lower() for t in body.find_all(exp.Table)}
        reads.append({where[t] for t in tables if t in where and where[t] < i})
    needed: list[set[str] | None] = [set() for _ in parts]
    final = parts[-1][1]
    # the final SELECT's result: the columns it names, or everything if it selects a `*`
    needed[-1] = None if any(e.find(exp.Star) for e in final.expressions) else set()
    for reader in range(len(parts) - 1, -1, -1):
        passes = needed[reader] if starred[reader] else set()
        for read in reads[reader]:
            target = needed[read]
            if target is None:
                continue
            if passes is None:
                needed[read] = None
                continue
            target |= mentions[reader] | passes
    return {
        name.lower(): (None if n is None else frozenset(n))
        for (name, _), n in zip(parts, needed, strict=True)
    }


@attrs.frozen
class SqlQuery:
    """A compiled query: `tree` (sqlglot), its `dialect`, and what the runners need to read
    its result."""

    tree: exp.Select
    dialect: Dialect
    criteria: tuple[str, ...]  # criterion ids, in file order
    output: str  # "text" or "engine"
    missing: tuple[str, ...]  # facts that can be missing, in mask bit order
    units: UnitTable

    def sql(self, pretty: bool = True) -> str:
        """The query's text in its dialect."""
        return render(self.tree, self.dialect, pretty=pretty)

    def stages(
        self,
        longest: int = 64,
        ordered: bool = True,
        prefix: str = "",
        tables: Mapping[str, str] | None = None,
    ) -> tuple[list[Stage], str]:
        """The query taken apart: each `Stage` in order, and the final SELECT that reads them —
        for engines that run a long chain faster one stage at a time (Spark plans a deep chain
        of CTEs slowly: each stage is checkpointed before the next).

        A stage is a run of CTEs, each read only by the next one (a window's filters, a chain
        of patient columns), at most `longest` long: one SELECT with the run's first CTEs in its
        own WITH, named after its last CTE. Every CTE read by more than one later CTE ends a
        stage; the run that only the final SELECT reads goes into its WITH (nothing to keep:
        the result comes back as it is computed); a CTE nothing reads is left out. Each stage
        costs Spark a job, so fewer, longer stages screen faster (NCT04194671: 22 CTEs in 6
        stages and the final SELECT).

        Each stage also names the columns later stages and the final SELECT can read
        (`Stage.columns`): the chain carries every column forward (``SELECT s.*, …``), and an
        engine that keeps a stage's result keeps only these (NCT04194671's typed observations:
        a few of their many columns).

        With ``ordered=False`` the final SELECT has no ORDER BY: the caller sorts the result
        itself (Spark sorts a million rows globally in a shuffle; polars in a blink). Each
        stage's name starts with `prefix`, and the input tables are renamed by `tables`: the
        engine keeps stages as views of a session that is the caller's, where names like
        ``patients`` may already be taken."""
        tree = self.tree.copy()
        if not ordered:
            tree.set("order", None)
        with_ = tree.args.get("with_")
        tree.set("with_", None)
        ctes = list(with_.expressions) if with_ is not None else []
        where = {c.alias.lower(): i for i, c in enumerate(ctes)}
        readers: list[set[int]] = [set() for _ in ctes]
        for reader, body in [*enumerate(c.this for c in ctes), (len(ctes), tree)]:
            for table in body.find_all(exp.Table):
                read = where.get(table.name.lower())
                if read is not None and read != reader:
                    readers[read].add(reader)
        parts: list[tuple[str, exp.Expression]] = []
        run: list[exp.CTE] = []
        for i, cte in enumerate(ctes):
            if not readers[i]:
                continue
            run.append(cte)
            if readers[i] == {i + 1} and len(run) < longest:
                continue  # read by the next CTE (or the final SELECT) only: the same stage
            body = cte.this.copy()
            for inner in run[:-1]:
                body = body.with_(ident(inner.alias), as_=inner.this.copy(), append=True)
            parts.append((cte.alias, body))
            run = []
        if run:  # the last CTEs are read by the final SELECT only: it computes them itself
            tree = with_ctes(tree, [(c.alias, c.this.copy()) for c in run])
        kept = _read_downstream([*parts, ("", tree)])
        renamed = {name.lower(): prefix + name for name, _ in parts}
        renamed.update({k.lower(): v for k, v in (tables or {}).items()})

        def text(body: exp.Expression) -> str:
            for table in body.find_all(exp.Table):
                new = renamed.get(table.name.lower())
                if new is not None and not table.args.get("db"):
                    table.set("this", ident(new))
            return render(body, self.dialect, pretty=False)

        stages = [Stage(prefix + name, text(body), kept[name.lower()]) for name, body in parts]
        return stages, text(tree)

    @property
    def masks(self) -> int:
        return (len(self.missing) + 62) // 63


def compile_sql(
    checked: CheckedProtocol,
    dialect: str | Dialect = "duckdb",
    *,
    layout: LayoutSchema | None = None,
    units: UnitTable | None = None,
    as_of: float | None = None,
    ignore_unknown: bool = False,
    output: str = "text",
    patients: str = "patients",
    observations: str = "observations",
) -> SqlQuery:
    """Compile `checked` into one SQL query (see the module docstring).

    `layout` describes the input tables (default: `LayoutSchema.typed`), `units` the unit table
    (default: the units the rules file writes), `as_of` one evaluation time in seconds for
    everyone (default: each patient's ``as_of`` column). Raises `ScreeningError` (PR520-PR523)
    for what cannot be compiled.
    """
    refuse_codes(checked)
    d = dialect_named(dialect) if isinstance(dialect, str) else dialect
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}")
    clash = _name_clash(checked)
    if clash is not None:
        raise clash
    layout = layout or LayoutSchema.typed(checked, as_of_column=as_of is None)
    units = units if units is not None else UnitTable.of_protocol(checked)
    compiler = SqlCompiler(
        checked, d, layout, units, as_of, ignore_unknown, output, patients, observations
    )
    return compiler.query()


def needs_as_of(checked: CheckedProtocol) -> bool:
    """Whether the protocol reads `as_of` (windows, `time_since`, `as_of` itself)."""
    kinds = (ir.Window, ir.TimeSince, ir.AsOf, ir.CalendarCompare)
    stack: list[ir.Node] = [c.body for c in checked.criteria] + [d.body for d in checked.defines]
    while stack:
        node = stack.pop()
        if isinstance(node, kinds):
            return True
        stack.extend(ir.children(node))
    return False


class SqlCompiler(ExprCompiler, WindowReaders, MissingFacts):
    """One compilation: builds the relations, compiles the criteria, assembles the query."""

    def __init__(
        self,
        checked: CheckedProtocol,
        dialect: Dialect,
        layout: LayoutSchema,
        units: UnitTable,
        as_of: float | None,
        ignore_unknown: bool,
        output: str,
        patients_table: str,
        observations_table: str,
    ) -> None:
        self.checked, self.dialect, self.layout = checked, dialect, layout
        self.units, self.output = units, output
        reserved = [f.name for f in checked.facts] + [d.name for d in checked.defines]
        reserved += [c.id for c in checked.criteria] + list(RESULT_COLUMNS)
        reserved += [c for c, _ in layout.patients] + [c for c, _ in layout.observations or ()]
        reserved += [patients_table, observations_table]
        self.names = Names(reserved)
        self._init_expressions()
        self._init_windows()
        self._init_missing()
        self.units_cte = self.names.new("unit_conversions")
        reader = Reader(dialect, checked, self.units_cte)
        read = read_patients(
            reader, self.names, layout, patients_table, as_of, needs_as_of(checked)
        )
        self.read = read
        self.patients = Scope(read.relation, 0)
        self.key = read.key
        self.fact_columns = read.facts
        self.as_of_expr = read.as_of if as_of is None else double(as_of)
        self.obs = read_observations(reader, self.names, layout, observations_table, ignore_unknown)
        self._observed()

    def _observed(self) -> None:
        """Join, per patient, which series and sets they have and their observations' problem."""
        collections = [f for f in self.checked.facts if is_collection(f)]
        rel = self.patients.rel
        self.presence_columns = {}
        self.observation_problem: Expr | None = None
        if self.obs is None:
            for f in collections:
                self.presence_columns[f.name] = rel.column(
                    exp.Cast(this=exp.Null(), to=exp.DataType.build("INT")), f.name + "_known"
                ).name
            return
        self.obs_problem_column = self.obs.relation.column(self.obs.problem, "obs_problem")
        self.obs = attrs.evolve(self.obs, problem=self.obs_problem_column.name)
        name, query, columns, problem = presence(self.obs, self.names, collections)
        self.presence_cte = (name, query)
        joined = [(c, c) for c in columns.values()] + [(problem, problem)]
        rel.join(name, [(col(self.key, "s"), self.obs.key)], joined, after=0)
        self.presence_columns = dict(columns)
        self.observation_problem = col(problem)

    # ------------------------------------------------------------------ criteria

    def query(self) -> SqlQuery:
        rel = self.patients.rel
        d = self.dialect
        criteria = []
        for criterion in self.checked.criteria:
            value = self.value(criterion.body)
            column = self.names.claim(criterion.id)
            rel.add(column, value)
            criteria.append((criterion, column))
        ordered: list[Problem] = list(self.read.problems)
        if self.observation_problem is not None:
            ordered.append(Problem(not_(is_null(self.observation_problem)), "", ""))
        ordered += self.read.as_of_problems
        first = self._first(ordered)
        past = past_problems(rel, self.read, self.checked)
        if past:
            first = coalesce(first, first_problem(past))
        problem = rel.column(first, "problem")
        excluding, unknown = [], []
        for criterion, column in criteria:
            c = d.predicate(col(column))
            exclusion = criterion.kind is ast.CriterionKind.EXCLUSION
            excluding.append(case((c if exclusion else not_(c), num(1)), default=num(0)))
            unknown.append(case((is_null(col(column)), num(1)), default=num(0)))
        any_excluding = rel.column(_any(excluding), "excluded")
        any_unknown = rel.column(_any(unknown), "undecided")
        ok = is_null(problem)
        status = case(
            (not_(ok), text("error")),
            (compare("=", any_excluding, num(1)), text("ineligible")),
            (compare("=", any_unknown, num(1)), text("indeterminate")),
            default=text("eligible"),
        )
        open_ = and_(ok, compare("=", any_excluding, num(0)), compare("=", any_unknown, num(1)))
        facts, flags = self._missing_flags(criteria, open_)
        final_items: list[Expr] = [alias(col(self.key), "patient_id")]
        if self.output == "engine":
            if self.read.order:
                final_items.append(alias(col(self.read.order), "input_row"))
            for i, (_, column) in enumerate(criteria):
                final_items.append(alias(_as_int(d, col(column)), f"c{i}"))
            for k in range(0, max(len(facts), 1), 63):
                chunk = flags[k : k + 63]
                mask = (
                    _sum([case((f, num(2**bit)), default=num(0)) for bit, f in enumerate(chunk)])
                    if chunk
                    else num(0)
                )
                final_items.append(
                    alias(exp.Cast(this=mask, to=exp.DataType.build("BIGINT")), f"m{k // 63}")
                )
            final_items.append(alias(problem, "problem"))
        else:
            final_items.append(alias(status, "status"))
            for criterion, column in criteria:
                c = d.predicate(col(column))
                outcome = case(
                    (
                        not_(ok),
                        exp.Cast(
                            this=exp.Null(), to=exp.DataType.build(d.text_type, dialect=d.sqlglot())
                        ),
                    ),
                    (is_null(col(column)), text("unknown")),
                    (c, text("met")),
                    default=text("not_met"),
                )
                final_items.append(alias(outcome, criterion.id))
            pieces = [
                case((f, text(";" + name)), default=text(""))
                for name, f in zip(facts, flags, strict=True)
            ]
            joined = rel.column(
                exp.Concat(expressions=pieces, safe=True)
                if len(pieces) > 1
                else (pieces[0] if pieces else text("")),
                "missing_list",
            )
            missing = case(
                (compare("=", joined, text("")), text("")),
                default=exp.Substring(this=joined, start=num(2), length=d.length(joined)),
            )
            final_items.append(alias(missing, "missing_facts"))
            final_items.append(
                alias(exp.Substring(this=problem, start=num(1), length=num(5)), "error_code")
            )
            final_items.append(
                alias(
                    exp.Substring(this=problem, start=num(7), length=d.length(problem)),
                    "error_message",
                )
            )
        order = (
            col(self.read.order) if (self.read.order and self.output == "engine") else col(self.key)
        )
        final = exp.select(*final_items).from_(exp.Table(this=ident(rel.last))).order_by(order)
        tree = with_ctes(
            final, self._ctes(), not_materialized=d.not_materialized, materialized=d.materialized
        )
        return SqlQuery(
            tree,
            d,
            tuple(c.id for c in self.checked.criteria),
            self.output,
            tuple(facts),
            self.units,
        )

    def _first(self, problems: list[Problem]) -> Expr:
        """``CODE message`` of the first problem of the record, in the order `evaluate` reads
        it: facts in declaration order, then observations, then `as_of`."""
        whens = []
        for p in problems:
            if p.code == "":  # the observations' own (already a text)
                whens.append((p.when, self.observation_problem))
            else:
                whens.append((p.when, text(f"{p.code} {p.message}")))
        if not whens:
            return exp.Cast(this=exp.Null(), to=exp.DataType.build("VARCHAR"))
        return case(*whens)

    def _missing_flags(
        self, criteria: list[tuple[Any, str]], open_: Expr
    ) -> tuple[list[str], list[Expr]]:
        rel = self.patients.rel
        found: dict[str, list[Expr]] = {}
        for criterion, column in criteria:
            for fact, reached in self.sources(criterion.body).items():
                found.setdefault(fact, []).append(and_(is_null(col(column)), reached))
        order = [f.name for f in self.checked.facts if f.name in found]
        flags = []
        for fact in order:
            flag = rel.column(
                case((and_(open_, or_(*found[fact])), num(1)), default=num(0)), fact + "_missing"
            )
            flags.append(compare("=", flag, num(1)))
        return order, flags

    # ------------------------------------------------------------------ CTEs

    def _ctes(self) -> list[tuple[str, exp.Select]]:
        out: list[tuple[str, exp.Select]] = [(self.units_cte, self.units.select(self.dialect))]
        if self.obs is not None:
            out += self.obs.relation.ctes()
            out.append(self.presence_cte)
        rel = self.patients.rel
        chain = rel.ctes()
        blocks = sorted(self.window_blocks, key=lambda b: b[0])
        for level, (name, query) in enumerate(chain):
            out.append((name, query))
            for after, wrel, cte, agg in blocks:
                if after == level:
                    out += wrel.ctes()
                    out.append((cte, agg))
        return out


def _any(flags: list[Expr]) -> Expr:
    if not flags:
        return num(0)
    return case((compare(">", _sum(flags), num(0)), num(1)), default=num(0))


def _sum(parts: Sequence[Expr]) -> Expr:
    from .sql_build import add

    out = parts[0]
    for p in parts[1:]:
        out = add(out, p)
    return out


def _as_int(d: Dialect, value: Expr) -> Expr:
    c = d.predicate(value)
    return case((c, num(1)), (not_(c), num(0)))


del SeriesT, SetT
