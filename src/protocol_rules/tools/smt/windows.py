"""Windows, aggregates, `any`/`all`, `where` and `consecutive` in the two encodings.

Abstract (proofs): a window is its count `n` (an integer >= 0) and, made on demand, free
values for its aggregates that respect what always holds: within the series' declared range,
``min <= earliest, latest, mean <= max``, all equal when ``n = 1``, unknown when ``n = 0``
(except `count` and `exists`). `any(W) > x` is exactly ``n >= 1 and max(W) > x`` (and so on
for the other comparisons of the observation with a value); any other condition, a `where`
filter and `consecutive` are free values consistent with `n`.

Explicit (witnesses): a window is the series' observations, each with the formula "it is in
the window"; aggregates, quantifiers, filters and runs are computed from them exactly as the
interpreter does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import z3

from ... import ast
from ...calendar import DAY
from ...check import ir
from ...check.types import BoolT, ChoiceT, QtyT, TimeT, Type, WindowT
from .values import FALSE, TRUE, Observation, Tri, Val, Window, compare, real, tri

if TYPE_CHECKING:
    from .encode import Encoder

_VALUE_AGGREGATES = ("max", "min", "latest", "earliest", "mean", "sum")
_BETWEEN = ("latest", "earliest", "mean")


def _element(t: Type) -> Type:
    return t.element if isinstance(t, WindowT) else t


class WindowEncoding:
    """The window half of `Encoder` (a mixin)."""

    def encode_window_node(self: Encoder, node: ir.Node) -> Any:
        match node:
            case ir.Window():
                return self._window(node)
            case ir.Aggregate(function=function, window=w):
                return self._aggregate(function, self.encode(w), node.type)
            case ir.Quantified():
                return self._quantified(node)
            case ir.Filter():
                return self._filter(node)
            case ir.Consecutive():
                return self._consecutive(node)
        raise AssertionError(node)  # pragma: no cover

    # ------------------------------------------------------------------ windows

    def _bounds(self: Encoder, node: ir.Window) -> tuple[Any, Val, Val]:
        """(known, start, end) of a window; either bound may be `NEVER`."""
        end = self.encode(node.end) if node.end is not None else Val(TRUE, self.as_of)
        if node.start is not None:
            start = self.encode(node.start)
        elif node.duration is not None:
            d = node.duration
            start = Val(end.known, self._shifted(end.v, d.months, d.seconds, -1), end.never)
        else:
            length = self.encode(node.length) if node.length is not None else Val(TRUE, real(0))
            start = Val(z3.And(end.known, length.known), end.v - length.v, end.never)
        return z3.And(start.known, end.known), start, end

    def _window(self: Encoder, node: ir.Window) -> Window:
        series = self.encode(node.series)
        from .encode import Series

        if not isinstance(series, Series):
            return Window(FALSE, self.key(node), _element(node.type))
        bounds_known, start, end = self._bounds(node)
        known = z3.And(series.known, bounds_known)
        empty = z3.Or(start.never, end.never)
        info = self._infos.get(series.node.name)
        low = high = None
        if info is not None and info.low is not None:
            low, high = info.low, info.high
        window = Window(
            known, self.key(node), _element(node.type), low, high, series=series.node.name
        )
        if not self.explicit:
            n = self._count_var(window)
            self.side.append(z3.Implies(empty, n == 0))
            return window
        end_is_date = node.end is not None and _is_date(node.end.type)
        members = []
        for o in series.reading.var.observations:
            inside = z3.And(o.present, z3.Not(empty), o.at >= start.v)
            inside = z3.And(inside, o.at < end.v + real(DAY) if end_is_date else o.at <= end.v)
            value = series.reading.convert(o.value) if _is_number(window.element) else o.value
            members.append((inside, Observation(o.present, o.at, value)))
        window.members = members
        return window

    def _count_var(self: Encoder, window: Window) -> Any:
        n = window.extra.get("n")
        if n is None:
            n = window.extra["n"] = z3.Int(self.fresh_name("n"))
            self.side.append(n >= 0)
        return n

    # ------------------------------------------------------------------ aggregates

    def _aggregate(self: Encoder, function: str, w: Any, t: Type) -> Any:
        if not isinstance(w, Window):  # pragma: no cover - the checker allows windows only
            return self.fresh(t, "aggregate of a non-window")
        if w.members is not None:
            return self._aggregate_explicit(function, w, t)
        n = self._count_var(w)
        if function == "count":
            return Val(w.known, z3.ToReal(n))
        if function == "exists":
            return tri(w.known, n >= 1)
        known = z3.And(w.known, n >= 1)
        if function in ("first_time", "last_time"):
            return Val(known, self._moments(w)[function])
        if isinstance(w.element, BoolT):
            b = self._abstract_value(w, function)
            return tri(known, b)
        return Val(known, self._abstract_value(w, function))

    def _abstract_value(self: Encoder, w: Window, function: str) -> Any:
        found = w.extra.get(function)
        if found is not None:
            return found
        element = w.element
        name = self.fresh_name(function)
        if isinstance(element, BoolT):
            found = w.extra[function] = z3.Bool(name)
            return found
        if isinstance(element, ChoiceT):
            found = w.extra[function] = z3.String(name)
            self.side.append(z3.Or([found == z3.StringVal(c) for c in element.choices]))
            return found
        found = w.extra[function] = z3.Real(name)
        n = self._count_var(w)
        if function != "sum" and w.low is not None and w.high is not None:
            self.side += [found >= real(w.low), found <= real(w.high)]
        if function == "sum" and w.low is not None and w.low >= 0:
            self.side.append(found >= real(w.low))
        if function in _BETWEEN or function in ("max", "min"):
            low, high = self._abstract_value(w, "min"), self._abstract_value(w, "max")
            if function in _BETWEEN:
                self.side += [found >= low, found <= high]
            self.side.append(z3.Implies(n == 1, low == high))
        if function == "sum":
            self.side.append(z3.Implies(n == 1, found == self._abstract_value(w, "max")))
        return found

    def _moments(self: Encoder, w: Window) -> dict[str, Any]:
        found = w.extra.get("moments")
        if found is None:
            first = z3.Real(self.fresh_name("first_time"))
            last = z3.Real(self.fresh_name("last_time"))
            self.side.append(first <= last)
            self.side.append(z3.Implies(self._count_var(w) == 1, first == last))
            found = w.extra["moments"] = {"first_time": first, "last_time": last}
        return found

    def _aggregate_explicit(self: Encoder, function: str, w: Window, t: Type) -> Any:
        members = w.members or []
        count = z3.Sum([z3.If(m, 1, 0) for m, _ in members]) if members else z3.IntVal(0)
        if function == "count":
            return Val(w.known, z3.ToReal(count))
        if function == "exists":
            return tri(w.known, z3.Or([m for m, _ in members]) if members else FALSE)
        known = z3.And(w.known, count >= 1)
        if function in ("first_time", "last_time"):
            order = members if function == "last_time" else list(reversed(members))
            acc: Any = real(0)
            for m, o in order:
                acc = z3.If(m, o.at, acc)
            return Val(known, acc)
        values = [(m, o.value) for m, o in members]
        if function in ("latest", "earliest"):
            order = values if function == "latest" else list(reversed(values))
            acc = _zero(w.element)
            for m, v in order:
                acc = z3.If(m, v, acc)
            return tri(known, acc) if isinstance(w.element, BoolT) else Val(known, acc)
        if isinstance(w.element, BoolT | ChoiceT):
            return self.fresh(t, f"{function} of booleans or choices")
        total = z3.Sum([z3.If(m, v, real(0)) for m, v in values]) if values else real(0)
        if function == "sum":
            return Val(known, total)
        if function == "mean":
            mean: Any = real(0)
            for k in range(len(values), 0, -1):
                mean = z3.If(count == k, total / real(k), mean)
            return Val(known, mean)
        acc, seen = real(0), FALSE
        for m, v in values:
            better = v > acc if function == "max" else v < acc
            acc = z3.If(m, z3.If(z3.Or(z3.Not(seen), better), v, acc), acc)
            seen = z3.Or(seen, m)
        return Val(known, acc)

    # ------------------------------------------------------------------ any / all

    def _bind(self: Encoder, stack: list[Any], value: Any, element: Type, node: ir.Node) -> Tri:
        stack.append(tri(TRUE, value) if isinstance(element, BoolT) else Val(TRUE, value))
        try:
            return self.boolean(node)
        finally:
            stack.pop()

    def _quantified(self: Encoder, node: ir.Quantified) -> Tri:
        w = self.encode(node.window)
        is_any = node.quantifier is ast.Quantifier.ANY
        if not isinstance(w, Window):  # pragma: no cover - the checker allows windows only
            return self.fresh(BoolT(), "quantifier over a non-window")
        if w.members is not None:
            tests = [
                (m, self._bind(self._each, o.value, w.element, node.condition))
                for m, o in w.members
            ]
            if is_any:
                t = z3.Or([z3.And(m, c.t) for m, c in tests]) if tests else FALSE
                f = z3.And([z3.Implies(m, c.f) for m, c in tests])
            else:
                t = z3.And([z3.Implies(m, c.t) for m, c in tests])
                f = z3.Or([z3.And(m, c.f) for m, c in tests]) if tests else FALSE
            return Tri(z3.And(w.known, t), z3.And(w.known, f))
        n = self._count_var(w)
        exact = self._extreme_test(node, w, is_any)
        if exact is not None:
            other_known, holds = exact
            if is_any:
                return Tri(
                    z3.And(w.known, n >= 1, other_known, holds),
                    z3.And(w.known, z3.Or(n == 0, z3.And(other_known, z3.Not(holds)))),
                )
            return Tri(
                z3.And(w.known, z3.Or(n == 0, z3.And(other_known, holds))),
                z3.And(w.known, n >= 1, other_known, z3.Not(holds)),
            )
        q = self.fresh(BoolT(), "any/all with another condition", w.known)
        empty_value = q.f if is_any else q.t
        self.side.append(z3.Implies(z3.And(w.known, n == 0), empty_value))
        self.side.append(z3.Implies(q.t if is_any else q.f, n >= 1))
        return q

    def _extreme_test(self: Encoder, node: ir.Quantified, w: Window, is_any: bool) -> Any:
        """`any(W) > x` as ``max(W) > x`` (and the like): (x known, the test), or None."""
        condition = node.condition
        if not isinstance(condition, ir.Compare) or not _is_number(w.element):
            return None
        op, left, right = condition.op, condition.left, condition.right
        if self.free(right) and not self.free(left):
            op, left, right = _flip(op), right, left
        factor, offset = 1.0, 0.0
        if isinstance(left, ir.Convert) and isinstance(left.operand, ir.Each):
            factor, offset = left.conversion.factor, left.conversion.offset
            left = left.operand
        if not isinstance(left, ir.Each) or self.free(right) or factor <= 0:
            return None
        if op in (ast.CompareOp.GT, ast.CompareOp.GE):
            extreme = "max" if is_any else "min"
        elif op in (ast.CompareOp.LT, ast.CompareOp.LE):
            extreme = "min" if is_any else "max"
        else:
            return None
        x = self.encode(right)
        value = self._abstract_value(w, extreme) * real(factor) + real(offset)
        return x.known, compare(op, Val(TRUE, value), x)

    # ------------------------------------------------------------------ where, consecutive

    def _filter(self: Encoder, node: ir.Filter) -> Any:
        w = self.encode(node.window)
        if not isinstance(w, Window):  # pragma: no cover
            return self.fresh(BoolT(), "filter of a non-window")
        if w.members is not None:
            members, all_known = [], []
            for m, o in w.members:
                c = self._bind(self._value, o.value, w.element, node.condition)
                members.append((z3.And(m, c.t), o))
                all_known.append(z3.Implies(m, c.known))
            known = z3.And(w.known, *all_known)
            return Window(known, self.key(node), w.element, w.low, w.high, members, w, w.series)
        self.abstracted["where"] = None
        known = z3.Bool(self.fresh_name("where"))
        self.side.append(z3.Implies(known, w.known))
        kept = Window(known, self.key(node), w.element, w.low, w.high, None, w, w.series)
        self.side.append(self._count_var(kept) <= self._count_var(w))
        return kept

    def _consecutive(self: Encoder, node: ir.Consecutive) -> Val:
        w = self.encode(node.window)
        if not isinstance(w, Window):  # pragma: no cover
            return self.fresh(node.type, "consecutive of a non-window")
        if w.members is None:
            result = self.fresh(node.type, "consecutive", w.known)
            n = self._count_var(w)
            self.side += [result.v >= 0, result.v <= z3.ToReal(n)]
            self.side.append(z3.Implies(result.known, z3.IsInt(result.v)))
            return result
        low = high = best_low = best_high = z3.IntVal(0)
        for m, o in w.members:
            c = self._bind(self._value, o.value, w.element, node.condition)
            new_low = z3.If(c.t, low + 1, 0)
            new_high = z3.If(c.f, 0, high + 1)
            low, high = z3.If(m, new_low, low), z3.If(m, new_high, high)
            best_low = z3.If(low > best_low, low, best_low)
            best_high = z3.If(high > best_high, high, best_high)
        return Val(z3.And(w.known, best_low == best_high), z3.ToReal(best_low))


def _is_date(t: Type) -> bool:
    return isinstance(t, TimeT) and not t.has_time


def _is_number(t: Type) -> bool:
    from ...check.types import NumT

    return isinstance(t, QtyT | NumT)


def _zero(element: Type) -> Any:
    if isinstance(element, BoolT):
        return z3.BoolVal(False)
    if isinstance(element, ChoiceT):
        return z3.StringVal("")
    return real(0)


def _flip(op: ast.CompareOp) -> ast.CompareOp:
    return {
        ast.CompareOp.LT: ast.CompareOp.GT,
        ast.CompareOp.LE: ast.CompareOp.GE,
        ast.CompareOp.GT: ast.CompareOp.LT,
        ast.CompareOp.GE: ast.CompareOp.LE,
    }.get(op, op)
