"""Back end, SQL: the missing facts of an undecided patient, as `Program._missing` finds them.

For each unknown criterion the interpreter walks the criterion's unknown sub-expressions down to
absent facts, series whose window holds no observation, and series an `if` waited on
(`Program._unknown_sources`). `sources(node)` gives, for a node assumed unknown, each fact such
a walk can reach and the condition (per patient, or per observation inside a window) under which
it does — the same walk the polars engine compiles. Window readers add their own rules: an
aggregate over a known, empty window names its series; an unknown filter or quantifier is
walked through the last observation its condition ran on (`sql_windows.Reader.last`).
"""

from __future__ import annotations

from sqlglot import exp

from ..check import ir
from ..check.types import SetT
from . import series_read
from .sql_build import Expr, and_, case, col, compare, is_null, not_, num, or_
from .sql_compile import Scope
from .sql_windows import Reader

Sources = dict[str, Expr]  # fact -> "reached" (a condition)


def _merge(out: Sources, more: Sources, guard: Expr) -> None:
    for name, reached in more.items():
        term = and_(*(t for t in (guard, reached) if not _is_true(t)))  # TRUE if both are
        out[name] = or_(out[name], term) if name in out else term


def _is_true(e: Expr) -> bool:
    return isinstance(e, exp.Boolean) and e.this is True


class MissingFacts:
    """`sources` (a mixin of `sql.SqlCompiler`)."""

    def _init_missing(self) -> None:
        self._sources: dict[tuple[int, int, tuple[int, ...]], Sources] = {}

    def sources(self, node: ir.Node, scope: Scope | None = None) -> Sources:
        """Facts reached from `node` by the interpreter's walk (node assumed unknown)."""
        scope = scope or self.patients
        key = (id(node), scope.key, self.call_context)
        cached = self._sources.get(key)
        if cached is None:
            self._keep.append(node)
            cached = self._sources[key] = self._find(node, scope)
        return cached

    def _find(self, node: ir.Node, scope: Scope) -> Sources:
        true = exp.true()
        match node:
            case ir.FactRef(name=name):
                return {name: true}
            case ir.DefineRef(name=name):
                return self.sources(self.define_bodies[name], self.patients)
            case ir.Aggregate() | ir.Quantified() | ir.Consecutive():
                self.expr(node, scope)  # the reader exists once its value was compiled
                return self._reader_sources(node, self.readers[id(node)], scope)
            case ir.If(condition=condition, then=then, otherwise=otherwise):
                return self._if_sources(node, condition, then, otherwise, scope)
            case ir.FunctionCall(args=args):
                out: Sources = {}  # a body reads no fact: what is missing is in the arguments
                for arg in args:
                    _merge(out, self.sources(arg, scope), self.is_unknown(arg, scope))
                return out
        out = {}
        for child in ir.children(node):
            _merge(out, self.sources(child, scope), self.is_unknown(child, scope))
        return out

    def _if_sources(
        self, node: ir.If, condition: ir.Node, then: ir.Node, otherwise: ir.Node, scope: Scope
    ) -> Sources:
        """The condition when it is unknown, else the branch it chose; and the series read by
        the condition when the chosen branch is the literal `unknown` (more observations)."""
        c = self.shared(condition, scope)
        out: Sources = {}
        _merge(out, self.sources(condition, scope), self.is_unknown(condition, scope))
        d = self.dialect
        chose_then = self._flag(case((c, d.value(d.true())), default=d.value(d.false())), scope)
        chose_else = self._flag(
            case((not_(c), d.value(d.true())), default=d.value(d.false())), scope
        )
        for branch, chosen in ((then, chose_then), (otherwise, chose_else)):
            _merge(out, self.sources(branch, scope), and_(chosen, self.is_unknown(branch, scope)))
        waited = []
        if isinstance(then, ir.Unknown):
            waited.append(chose_then)
        if isinstance(otherwise, ir.Unknown):
            waited.append(chose_else)
        if waited:
            for name in series_read(condition, self.define_bodies):
                _merge(out, {name: or_(*waited)}, exp.true())
        return out

    # ------------------------------------------------------------------ windows

    def _flag(self, condition: Expr, scope: Scope) -> Expr:
        """A condition that is never unknown, written more than once: a column."""
        return self.shared_condition(condition, scope)

    def _reader_sources(self, node: ir.Node, reader: Reader, scope: Scope) -> Sources:
        no_rows = is_null(col(reader.rows))
        levels = len(reader.ran)
        out: Sources = {}
        chain_unknown = self._chain_unknown(reader, reader.filters, scope)
        if isinstance(node, ir.Aggregate):
            # a known window with no observation: the series itself is missing
            empty = self._flag(
                and_(
                    not_(chain_unknown),
                    or_(no_rows, compare("=", col(reader.kept), num(0))),
                ),
                scope,
            )
            _merge(out, {reader.fact: exp.true()}, empty)
            _merge(
                out,
                self._chain_sources(reader, reader.filters, scope),
                and_(not_(empty), chain_unknown),
            )
            return out
        _merge(out, self._chain_sources(reader, reader.filters, scope), chain_unknown)
        if levels > reader.filters:  # the quantifier's or the run's own condition
            _merge(out, self._last(reader, levels - 1), not_(chain_unknown))
        return out

    def _chain_unknown(self, reader: Reader, filters: int, scope: Scope) -> Expr:
        """Whether the window with its first `filters` filters is unknown (never NULL)."""
        known = compare("=", col(reader.known), num(1))
        if filters == 0:
            return not_(known)
        flag = col(reader.unknown[filters - 1])
        return self._flag(
            or_(not_(known), compare("=", case((is_null(flag), num(0)), default=flag), num(1))),
            scope,
        )

    def _chain_sources(self, reader: Reader, filters: int, scope: Scope) -> Sources:
        """Sources of the window with its first `filters` filters, when it is unknown."""
        if filters == 0:
            return self._window_sources(reader)
        out: Sources = {}
        inner_unknown = self._chain_unknown(reader, filters - 1, scope)
        _merge(out, self._chain_sources(reader, filters - 1, scope), inner_unknown)
        _merge(out, self._last(reader, filters - 1), not_(inner_unknown))
        return out

    def _last(self, reader: Reader, level: int) -> Sources:
        return {
            name: compare("=", case((is_null(col(c)), num(0)), default=col(c)), num(1))
            for name, c in reader.last[level].items()
        }

    def _window_sources(self, reader: Reader) -> Sources:
        """The base window (or set) unknown: its unknown children (series, bounds, length)."""
        out: Sources = {}
        window = reader.window
        presence = col(self.presence_columns[reader.fact])
        _merge(out, {reader.fact: exp.true()}, is_null(presence))
        if window is None:
            return out
        for child in (window.start, window.length, window.end):
            if child is not None:
                _merge(out, self.sources(child), self.is_unknown(child))
        return out


del SetT
