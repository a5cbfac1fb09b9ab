"""Back end, SQL: a relation built as a chain of CTEs, one stage after another.

A `Relation` has a grain (one row per patient, or one row per observation in a window) and a
base query (stage 0). Later columns are *materialised*: `Relation.column(expr)` adds `expr` as a
named column to the first stage after the stages of every column it reads, and returns a
reference to it. So a value used many times (a define, the operand of an exact rounding) is
computed once, the SQL stays small, and the stages read in the order the protocol computes —
``patients_1``, ``patients_2``, … each ``SELECT previous.*, new columns FROM previous``.

A stage may also join another relation's result (a window's aggregates, grouped by patient):
`Relation.join` adds a LEFT JOIN to the stage after the columns the aggregate reads.

`Names` hands out column and CTE names, unique without regard to case (DuckDB and Spark compare
identifiers without case) and never equal to a user's name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs
from sqlglot import exp

from .sql_build import Expr, alias, and_, col, ident, is_cheap


class Names:
    """Unique SQL names for one query; the names of facts, defines and criteria are reserved
    so that generated names never collide with them."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._taken: set[str] = {r.lower() for r in reserved}
        self._claimed: set[str] = set()

    def new(self, hint: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", hint) or "c"
        if base[0].isdigit():
            base = "c_" + base
        name, n = base, 1
        while name.lower() in self._taken:
            n += 1
            name = f"{base}_{n}"
        self._taken.add(name.lower())
        return name

    def claim(self, name: str) -> str:
        """`name` itself (a user's name, reserved) the first time, then a new one like it: a
        fact and a define whose names differ only in case get two columns."""
        if name.lower() in self._claimed:
            return self.new(name)
        self._claimed.add(name.lower())
        self._taken.add(name.lower())
        return name


@attrs.define
class _Join:
    cte: str
    on: list[tuple[Expr, str]]  # (an expression over this relation as "s", a column there)
    columns: list[tuple[str, str]]  # (column of the joined CTE, name in this relation)


@attrs.define
class _Stage:
    columns: list[tuple[str, Expr]] = attrs.field(factory=list)
    joins: list[_Join] = attrs.field(factory=list)


class Relation:
    """A chain of CTEs named ``{prefix}``, ``{prefix}_1``, … over one grain (each stage's name
    taken from `names` when the stage is made, so that chains never share a name)."""

    def __init__(
        self, names: Names, prefix: str, base: exp.Select, base_columns: Iterable[str]
    ) -> None:
        self.names = names
        self.prefix = names.new(prefix)
        self.base = base
        self.levels: dict[str, int] = {c.lower(): 0 for c in base_columns}
        self.stages: list[_Stage] = []
        self._stage_names: list[str] = []
        self._cache: dict[str, exp.Column] = {}
        #: Columns whose value is NULL or within ±1e300 (`sql_numeric.LIMIT`): the result of a
        #: guarded operation needs no second guard.
        self.bounded: set[str] = set()

    # ------------------------------------------------------------------ columns

    def has(self, name: str) -> bool:
        return name.lower() in self.levels

    def level(self, e: Expr) -> int:
        """The stage after which every column `e` reads is available (0: the base)."""
        found = 0
        for c in e.find_all(exp.Column):
            found = max(found, self.levels.get(c.name.lower(), 0))
        return found

    def column(self, e: Expr, hint: str, at_least: int = 0) -> exp.Column:
        """A column holding `e`, materialised in the first stage that can compute it."""
        if isinstance(e, exp.Column) and self.has(e.name) and at_least == 0:
            return e
        key = e.sql() + f"@{at_least}"
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        name = self.names.new(hint)
        self.add(name, e, at_least)
        self._cache[key] = ref = col(name)
        return ref

    def shared(self, e: Expr, hint: str) -> Expr:
        """`e` where it is as cheap to write again as a column (a column, a literal), else a
        column holding it: for an operand written more than once."""
        return e if is_cheap(e) else self.column(e, hint)

    def add(self, name: str, e: Expr, at_least: int = 0) -> int:
        """Add column `name` = `e` (the name already allocated); returns its stage. A later
        `column` of the same expression reads this column."""
        stage = max(self.level(e) + 1, at_least, 1)
        self._stage(stage).columns.append((name, e))
        self.levels[name.lower()] = stage
        self._cache.setdefault(e.sql() + f"@{at_least}", col(name))
        return stage

    def join(
        self, cte: str, on: list[tuple[Expr, str]], columns: list[tuple[str, str]], after: int
    ) -> int:
        """LEFT JOIN `cte` in the stage after `after`, where each (expression over this relation,
        qualified ``s``; column of `cte`) pair is equal; its `columns` (name there, name here)
        become columns of this relation. Returns the stage."""
        stage = max(after + 1, 1)
        self._stage(stage).joins.append(_Join(cte, on, columns))
        for _, name in columns:
            self.levels[name.lower()] = stage
        return stage

    def _stage(self, n: int) -> _Stage:
        while len(self.stages) < n:
            self.stages.append(_Stage())
            self._stage_names.append(self.names.new(f"{self.prefix}_{len(self.stages)}"))
        return self.stages[n - 1]

    @property
    def depth(self) -> int:
        return len(self.stages)

    def name_at(self, level: int) -> str:
        """The CTE holding every column up to stage `level`."""
        return self.prefix if level == 0 else self._stage_names[level - 1]

    @property
    def last(self) -> str:
        return self.name_at(self.depth)

    # ------------------------------------------------------------------ SQL

    def ctes(self) -> list[tuple[str, exp.Select]]:
        """(name, query) of each CTE of the chain, in order."""
        out = [(self.prefix, self.base)]
        for n, stage in enumerate(self.stages, 1):
            previous = self.name_at(n - 1)
            here = "s"
            items: list[Expr] = [exp.Column(this=exp.Star(), table=ident(here))]
            items += [alias(e, name) for name, e in stage.columns]
            query = exp.select(*items).from_(
                exp.Table(this=ident(previous), alias=exp.TableAlias(this=ident(here)))
            )
            for k, join in enumerate(stage.joins):
                other = f"j{k}"
                for column, name in join.columns:
                    query = query.select(alias(col(column, other), name), append=True, copy=False)
                on = and_(
                    *(exp.EQ(this=left, expression=col(right, other)) for left, right in join.on)
                )
                query = query.join(
                    exp.Table(this=ident(join.cte), alias=exp.TableAlias(this=ident(other))),
                    on=on,
                    join_type="LEFT",
                    copy=False,
                )
            out.append((self.name_at(n), query))
        return out


def with_ctes(
    final: exp.Select,
    ctes: list[tuple[str, exp.Select]],
    not_materialized: bool = False,
    materialized: bool = False,
) -> exp.Select:
    """`final` with the CTEs before it."""
    for name, query in ctes:
        final = final.with_(ident(name), as_=query, append=True, copy=False)
    if not_materialized or materialized:
        for cte in final.args["with_"].expressions:
            cte.set("materialized", bool(materialized))
    return final
