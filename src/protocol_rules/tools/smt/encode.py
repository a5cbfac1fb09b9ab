"""The IR as Z3 formulas, node by node, with the interpreter's semantics (docs/lint.md).

Two encodings share this code:

- **abstract** (`explicit=False`), for proofs: `as_of` is free; a window is a count and its
  aggregates free values that only respect what always holds (min <= latest <= max, within
  the series' declared range, one observation makes them equal, …); calendar months move a
  date by 27 to 32 days' worth of bounds; what cannot be said exactly in linear arithmetic
  (`ln`, `exp`, `sqrt`, `round`, non-integer powers, products of two unknowns, `consecutive`,
  filters, quantified conditions other than a comparison with the observation) becomes a free
  value of its type. Each of those is an over-approximation: every real patient is a model,
  so "no model" (unsat) is a proof about every patient.
- **explicit** (`explicit=True`), for witnesses: `as_of` is fixed, a series is a few explicit
  observations with times, windows and aggregates are computed from them, calendar
  comparisons with `as_of` are exact. A model is a patient record (`witness`), which the
  interpreter then evaluates to confirm it.

Arithmetic is exact rational arithmetic where the interpreter uses floats (which round), so
every witness is confirmed by `Protocol.evaluate`. A node the encoder does not know (a newer
construct) becomes a free value of its type, never an error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import z3

from ... import ast
from ...calendar import DAY, shift
from ...check import ir
from ...check.model import CheckedProtocol, CriterionInfo
from ...check.types import BoolT, ChoiceT, NumT, QtyT, SeriesT, SetT, TextT, TimeT, Type
from .facts import Facts, FactVar, Reading
from .values import (
    FALSE,
    FALSE3,
    TRUE,
    TRUE3,
    UNKNOWN3,
    SetV,
    Tri,
    Val,
    compare,
    constant_value,
    first_reaching,
    month_shift_bounds,
    real,
    tri,
    tri_and,
    tri_if,
    tri_not,
    tri_or,
    val_if,
)
from .windows import WindowEncoding

#: The `as_of` of the explicit encoding, unless one is given.
DEFAULT_AS_OF = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()
_BINDERS = {"Quantified": "each", "Filter": "value", "Consecutive": "value"}


@attrs.define
class Series:
    """A series fact as a window reads it."""

    known: z3.BoolRef
    reading: Reading
    node: ir.FactRef


class Encoder(WindowEncoding):
    """Encodes criteria of one or more protocols over one set of patient variables."""

    def __init__(
        self, *, explicit: bool = False, as_of: float | None = None, observations: int = 3
    ) -> None:
        self.explicit = explicit
        self.side: list[Any] = []  # constraints every query asserts
        self.abstracted: dict[str, None] = {}  # constructs encoded as free values
        self.unsupported: dict[str, None] = {}  # node kinds the encoder does not know
        self.as_of_value = (as_of if as_of is not None else DEFAULT_AS_OF) if explicit else None
        self.as_of = real(self.as_of_value) if explicit else z3.Real("as_of")
        self._day_as_of: Any = None
        self.facts = Facts(self.side, explicit, self.as_of, self.day_as_of, observations)
        self._cache: dict[Any, Any] = {}
        self._keys: dict[int, Any] = {}
        self._free: dict[int, frozenset[str]] = {}
        self._readings: dict[str, Reading] = {}
        self._defines: dict[str, ir.Node] = {}
        self._params: list[list[Any]] = []
        self._each: list[Any] = []  # the observation `any`/`all` test (explicit), innermost last
        self._value: list[Any] = []  # the observation a `where` tests (explicit), innermost last
        self._infos: dict[str, Any] = {}
        self._keep: list[Any] = []  # nodes whose id() is a key: keep them alive
        if not explicit:
            self.side += [self.as_of >= real(-719162 * DAY), self.as_of < real(2932897 * DAY)]

    # ------------------------------------------------------------------ protocols

    def use(self, checked: CheckedProtocol) -> None:
        """Read `checked`'s facts and defines from now on (call before encoding its criteria)."""
        self._readings = {f.name: self.facts.reading(f) for f in checked.facts}
        self._infos = {f.name: f for f in checked.facts}
        self._defines = {d.name: d.body for d in checked.defines}

    def criterion(self, checked: CheckedProtocol, criterion: CriterionInfo) -> Tri:
        self.use(checked)
        return self.boolean(criterion.body)

    def day_as_of(self) -> Any:
        """The day number of `as_of` (an integer formula)."""
        if self._day_as_of is None:
            if self.explicit:
                self._day_as_of = z3.IntVal(int(self.as_of_value // DAY))
            else:
                d = z3.Int("as_of.day")
                self.side += [z3.ToReal(d) * real(DAY) <= self.as_of]
                self.side += [self.as_of < (z3.ToReal(d) + 1) * real(DAY)]
                self._day_as_of = d
        return self._day_as_of

    # ------------------------------------------------------------------ keys and caching

    def key(self, node: Any) -> Any:
        """A structural key: equal for equal expressions, whatever their layout or protocol
        (fact indexes and define names are looked through)."""
        if isinstance(node, tuple):
            return tuple(self.key(x) for x in node)
        if not attrs.has(type(node)) or not hasattr(node, "type"):
            return node
        found = self._keys.get(id(node))
        if found is not None:
            return found
        if isinstance(node, ir.DefineRef):
            body = self._defines.get(node.name)
            found = ("define", self.key(body) if body is not None else node.name)
        elif isinstance(node, ir.FactRef):
            found = ("fact", node.name, node.type)
        else:
            parts: list[Any] = [type(node).__name__]
            for f in attrs.fields(type(node)):
                if f.name != "source":
                    parts.append(self.key(getattr(node, f.name)))
            found = tuple(parts)
        self._keys[id(node)] = found
        self._keep.append(node)
        return found

    def free(self, node: ir.Node) -> frozenset[str]:
        """The placeholders (`each`, `value`, `param`) `node` reads that it does not bind."""
        found = self._free.get(id(node))
        if found is not None:
            return found
        match node:
            case ir.Each():
                found = frozenset({"each"})
            case ir.ObservationValue():
                found = frozenset({"value"})
            case ir.Param():
                found = frozenset({"param"})
            case ir.FunctionCall(args=args, body=body):
                found = frozenset().union(*(self.free(a) for a in args)) | (
                    self.free(body) - {"param"}
                )
            case ir.Quantified(window=w, condition=c) | ir.Filter(window=w, condition=c):
                found = self.free(w) | (self.free(c) - {_BINDERS[type(node).__name__]})
            case ir.Consecutive(window=w, condition=c):
                found = self.free(w) | (self.free(c) - {"value"})
            case _:
                found = frozenset().union(*(self.free(c) for c in _children(node)))
        self._free[id(node)] = found
        self._keep.append(node)
        return found

    def encode(self, node: ir.Node) -> Any:
        """The encoding of any node (cached when it reads no bound placeholder)."""
        cacheable = not self.free(node)
        if cacheable:
            k = self.key(node)
            found = self._cache.get(k)
            if found is not None:
                return found
        value = self._encode(node)
        if cacheable:
            self._cache[k] = value
        return value

    def boolean(self, node: ir.Node) -> Tri:
        value = self.encode(node)
        if not isinstance(value, Tri):  # pragma: no cover - the checker made it a condition
            raise TypeError(f"not a condition: {node!r}")
        return value

    def fresh_name(self, prefix: str) -> str:
        return self.facts.fresh(prefix)

    def fresh(self, t: Type, why: str, known: Any = None) -> Any:
        """A free value of type `t` (an abstraction, noted in `abstracted`)."""
        self.abstracted[why] = None
        name = self.fresh_name(why.split()[0])
        k = z3.Bool(name + "?")
        if known is not None:
            self.side.append(z3.Implies(k, known))
        if isinstance(t, BoolT):
            t_, f_ = z3.Bool(name + ".t"), z3.Bool(name + ".f")
            self.side.append(z3.Not(z3.And(t_, f_)))
            if known is not None:
                self.side.append(z3.Implies(z3.Or(t_, f_), known))
            return Tri(t_, f_)
        if isinstance(t, ChoiceT | TextT):
            return Val(k, z3.String(name))
        if isinstance(t, SetT):
            return SetV(k, lambda item, name=name: z3.Bool(f"{name}∋{item}"))
        return Val(k, z3.Real(name))

    # ------------------------------------------------------------------ nodes

    def _encode(self, node: ir.Node) -> Any:
        match node:
            case ir.Const(value=value, type=t):
                return self._const(value, t)
            case ir.FactRef():
                return self._fact(node)
            case ir.DefineRef(name=name):
                body = self._defines.get(name)
                if body is None:
                    return self.fresh(node.type, "unknown define")
                return self.encode(body)
            case ir.Not(operand=o):
                return tri_not(self.boolean(o))
            case ir.Logic(op=op, operands=ops):
                parts = [self.boolean(o) for o in ops]
                return tri_and(parts) if op is ast.LogicOp.AND else tri_or(parts)
            case ir.Compare(op=op, left=a, right=b):
                return self._compare(op, a, b)
            case ir.Between(operand=x, low=lo, high=hi):
                return tri_and(
                    [
                        self._compare(ast.CompareOp.GE, x, lo),
                        self._compare(ast.CompareOp.LE, x, hi),
                    ]
                )
            case ir.InSet():
                return self._in_set(node)
            case ir.IsKnown(operand=o, negated=negated):
                k = self._known(self.encode(o))
                return tri(TRUE, z3.Not(k) if negated else k)
            case ir.IsNever(operand=o):
                x = self.encode(o)
                return tri(x.known, x.never)
            case ir.Contains():
                return self._contains(node)
            case ir.Convert(operand=o, conversion=c):
                x = self.encode(o)
                if not isinstance(x, Val) or not x.finite:
                    return self.fresh(node.type, "conversion of a non-number")
                return Val(x.known, x.v * real(c.factor) + real(c.offset))
            case ir.Arith():
                return self._arith(node)
            case ir.Negate(operand=o):
                x = self.encode(o)
                return Val(x.known, -x.v, x.never, x.ninf, x.pinf)
            case ir.AsOf():
                return Val(TRUE, self.as_of)
            case _:
                return self._encode_more(node)

    def _encode_more(self, node: ir.Node) -> Any:
        match node:
            case ir.TimeSince(operand=o):
                return self._time_since(o)
            case ir.DateShift(sign=sign, date=d, seconds=s):
                x, y = self.encode(d), self.encode(s)
                return Val(z3.And(x.known, y.known), x.v + sign * y.v, x.never)
            case ir.DateDiff(left=a, right=b):
                x, y = self.encode(a), self.encode(b)
                both = z3.And(x.never, y.never)
                return Val(
                    z3.And(x.known, y.known, z3.Not(both)),
                    (x.v - y.v) / real(DAY),
                    FALSE,
                    z3.And(y.never, z3.Not(x.never)),
                    z3.And(x.never, z3.Not(y.never)),
                )
            case ir.DayOf(operand=o):
                x = self.encode(o)
                return Val(x.known, self._floor_day(x.v), x.never)
            case ir.CalendarShift():
                return self._calendar_shift(node)
            case ir.CalendarCompare():
                return self._calendar_compare(node)
            case ir.Each():
                return self._each[-1] if self._each else self.fresh(node.type, "observation")
            case ir.ObservationValue():
                return self._value[-1] if self._value else self.fresh(node.type, "observation")
            case ir.If(condition=c, then=a, otherwise=b):
                cond, x, y = self.boolean(c), self.encode(a), self.encode(b)
                if isinstance(x, Tri) and isinstance(y, Tri):
                    return tri_if(cond, x, y)
                if isinstance(x, Val) and isinstance(y, Val):
                    return val_if(cond, x, y)
                return self.fresh(node.type, "if of sets or windows")
            case ir.FirstKnown(operands=ops):
                return self._first_known([self.encode(o) for o in ops], node.type)
            case ir.Unknown(type=t):
                return self._unknown(t)
            case ir.Param(index=index):
                return self._params[-1][index] if self._params else self.fresh(node.type, "p")
            case ir.FunctionCall(args=args, body=body):
                self._params.append([self.encode(a) for a in args])
                try:
                    return self.encode(body)
                finally:
                    self._params.pop()
            case ir.Power():
                return self._power(node)
            case ir.Math():
                return self._math(node)
            case ir.Window() | ir.Aggregate() | ir.Quantified() | ir.Filter() | ir.Consecutive():
                return self.encode_window_node(node)
        self.unsupported[type(node).__name__] = None
        return self.fresh(node.type, f"{type(node).__name__} (not encoded)")

    # ------------------------------------------------------------------ leaves

    def _const(self, value: Any, t: Type) -> Any:
        if value is None:
            return self._unknown(t)
        if isinstance(t, BoolT):
            return TRUE3 if value else FALSE3
        if isinstance(t, ChoiceT | TextT):
            return Val(TRUE, z3.StringVal(str(value)))
        if isinstance(value, int | float):
            return Val(TRUE, real(value))
        return self.fresh(t, "constant of another kind")

    def _unknown(self, t: Type) -> Any:
        if isinstance(t, BoolT):
            return UNKNOWN3
        if isinstance(t, ChoiceT | TextT):
            return Val(FALSE, z3.StringVal(""))
        return Val(FALSE, real(0))

    def _fact(self, node: ir.FactRef) -> Any:
        reading = self._readings.get(node.name)
        if reading is None:  # pragma: no cover - every fact of a protocol is read by `use`
            return self.fresh(node.type, "undeclared fact")
        var = reading.var
        t = node.type
        if isinstance(t, BoolT):
            return tri(var.known, var.value)
        if isinstance(t, SeriesT):
            return Series(var.known, reading, node)
        if isinstance(t, SetT):
            return SetV(var.known, lambda item, var=var: self.facts.member(var, item))
        if isinstance(t, TimeT):
            return Val(var.known, var.value, var.never)
        if isinstance(t, QtyT | NumT):
            return Val(var.known, reading.convert(var.value))
        return Val(var.known, var.value)

    def _known(self, x: Any) -> Any:
        if isinstance(x, Tri):
            return x.known
        return x.known

    # ------------------------------------------------------------------ comparisons

    def _compare(self, op: ast.CompareOp, a: ir.Node, b: ir.Node) -> Tri:
        x, y = self.encode(a), self.encode(b)
        if isinstance(x, Tri) and isinstance(y, Tri):
            same = x.t == y.t
            result = same if op is ast.CompareOp.EQ else z3.Not(same)
            return tri(z3.And(x.known, y.known), result)
        if not (isinstance(x, Val) and isinstance(y, Val)):
            return self.fresh(BoolT(), "comparison of sets or windows")
        known = z3.And(x.known, y.known)
        if isinstance(a.type, TimeT) or isinstance(b.type, TimeT):
            never = z3.Or(x.never, y.never)
            return Tri(
                z3.And(known, z3.Not(never), compare(op, x, y)),
                z3.And(known, z3.Or(never, z3.Not(compare(op, x, y)))),
            )
        return tri(known, compare(op, x, y))

    def _in_set(self, node: ir.InSet) -> Tri:
        x = self.encode(node.operand)
        items = [self.encode(i) for i in node.items]
        hit = z3.Or([z3.And(i.known, x.v == i.v) for i in items])
        some_unknown = z3.Or([z3.Not(i.known) for i in items])
        inside = Tri(z3.And(x.known, hit), z3.And(x.known, z3.Not(hit), z3.Not(some_unknown)))
        return tri_not(inside) if node.negated else inside

    def _contains(self, node: ir.Contains) -> Tri:
        s = self.encode(node.collection)
        if not isinstance(s, SetV):
            return self.fresh(BoolT(), "contains on a series")
        hits = []
        for item_node in node.items:
            if isinstance(item_node, ir.Const) and item_node.value is not None:
                hits.append(tri(TRUE, s.member(str(item_node.value))))
            else:
                hits.append(self.fresh(BoolT(), "contains of a computed item"))
        combined = tri_and(hits) if node.mode is ast.ContainsMode.ALL else tri_or(hits)
        return Tri(z3.And(s.known, combined.t), z3.And(s.known, combined.f))

    # ------------------------------------------------------------------ arithmetic

    def _arith(self, node: ir.Arith) -> Val:
        x, y = self.encode(node.left), self.encode(node.right)
        if not (x.finite and y.finite):
            return self.fresh(node.type, "arithmetic with a never date", z3.And(x.known, y.known))
        known = z3.And(x.known, y.known)
        op = node.op
        cx, cy = constant_value(x.v), constant_value(y.v)
        linear = op in (ast.ArithOp.ADD, ast.ArithOp.SUB) or cx is not None or cy is not None
        if op is ast.ArithOp.DIV:
            linear = cy is not None
        if not linear and not self.explicit:
            return self.fresh(node.type, "product or quotient of two unknowns", known)
        match op:
            case ast.ArithOp.ADD:
                v = x.v + y.v
            case ast.ArithOp.SUB:
                v = x.v - y.v
            case ast.ArithOp.MUL:
                v = x.v * y.v
            case _:
                known = z3.And(known, y.v != 0)
                v = x.v / y.v
        if node.scale != 1.0:
            v = v * real(node.scale)
        return Val(known, v)

    def _power(self, node: ir.Power) -> Val:
        base, exponent = self.encode(node.base), self.encode(node.exponent)
        n = constant_value(exponent.v)
        known = z3.And(base.known, exponent.known)
        b = constant_value(base.v)
        if n is not None and b is not None:
            try:
                return Val(known, real(float(b) ** n))
            except (OverflowError, ZeroDivisionError):
                return Val(FALSE, real(0))
        if n is None or not float(n).is_integer() or abs(n) > 4 or not self.explicit:
            if n is not None and float(n).is_integer() and 0 <= n <= 1:
                return Val(known, base.v if n == 1 else real(1))
            return self.fresh(node.type, "power", known)
        product = real(1)
        for _ in range(int(abs(n))):
            product = product * base.v
        if n < 0:
            return Val(z3.And(known, base.v != 0), 1 / product)
        return Val(known, product)

    def _math(self, node: ir.Math) -> Val:
        args = [self.encode(a) for a in node.args]
        known = z3.And([a.known for a in args])
        f = node.function
        if f == "abs":
            (x,) = args
            return Val(known, z3.If(x.v >= 0, x.v, -x.v))
        if f in ("min", "max") and all(a.finite for a in args):
            v = args[0].v
            for a in args[1:]:
                v = z3.If(a.v < v, a.v, v) if f == "min" else z3.If(a.v > v, a.v, v)
            return Val(known, v)
        domain = {"ln": lambda x: x > 0, "log10": lambda x: x > 0, "sqrt": lambda x: x >= 0}
        if f in domain:
            result = self.fresh(node.type, f)
            self.side.append(result.known == z3.And(known, domain[f](args[0].v)))
            return result
        return self.fresh(node.type, f, known)

    def _first_known(self, values: list[Any], t: Type) -> Any:
        result = values[-1]
        for x in reversed(values[:-1]):
            if isinstance(x, Tri) and isinstance(result, Tri):
                result = Tri(
                    z3.Or(x.t, z3.And(z3.Not(x.known), result.t)),
                    z3.Or(x.f, z3.And(z3.Not(x.known), result.f)),
                )
            elif isinstance(x, Val) and isinstance(result, Val):
                result = val_if(tri(TRUE, x.known), x, result)
            else:
                return self.fresh(t, "first_known of sets or windows")
        return result

    # ------------------------------------------------------------------ time

    def _floor_day(self, v: Any) -> Any:
        """00:00 UTC of the day an instant falls in (seconds)."""
        c = constant_value(v)
        if c is not None:
            return real(c - c % DAY)
        d = z3.Int(self.fresh_name("day"))
        self.side += [z3.ToReal(d) * real(DAY) <= v, v < (z3.ToReal(d) + 1) * real(DAY)]
        return z3.ToReal(d) * real(DAY)

    def _time_since(self, operand: ir.Node) -> Val:
        x = self.encode(operand)
        date = isinstance(operand.type, TimeT) and not operand.type.has_time
        now = z3.ToReal(self.day_as_of()) * real(DAY) if date else self.as_of
        return Val(x.known, (now - x.v) / real(DAY), FALSE, x.never)

    def _shifted(self, x: Any, months: int, seconds: float, sign: int) -> Any:
        """``shift(x, D, sign)`` exactly when x is a constant, else within the calendar's bounds."""
        c = constant_value(x)
        if c is not None:
            from ...calendar import CalendarDuration

            return real(shift(c, CalendarDuration(months, seconds), sign))
        moved = x + real(sign * seconds)
        if not months:
            return moved
        self.abstracted["calendar months"] = None
        low, high = month_shift_bounds(sign * months)
        k = z3.Int(self.fresh_name("months"))
        self.side += [k >= low, k <= high]
        return moved + z3.ToReal(k) * real(DAY)

    def _calendar_shift(self, node: ir.CalendarShift) -> Val:
        x = self.encode(node.instant)
        d = node.duration
        return Val(x.known, self._shifted(x.v, d.months, d.seconds, node.sign), x.never)

    def _calendar_compare(self, node: ir.CalendarCompare) -> Tri:
        since = node.since
        if not isinstance(since, ir.TimeSince):  # pragma: no cover - built that way
            return self.fresh(BoolT(), "calendar comparison")
        x = self.encode(since.operand)
        date = isinstance(since.operand.type, TimeT) and not since.operand.type.has_time
        holds = []
        for op, duration in zip(node.ops, node.durations, strict=True):
            day_precision = date and not duration.has_time
            if self.explicit:
                holds.append(self._exact_calendar(op, duration, x, day_precision, date))
                continue
            now = z3.ToReal(self.day_as_of()) * real(DAY) if day_precision else self.as_of
            moved = self._shifted(x.v, duration.months, duration.seconds, 1)
            holds.append(compare(op, Val(TRUE, now), Val(TRUE, moved)))
        never_holds = all(op in _NEVER_HOLDS for op in node.ops)
        result = z3.If(x.never, z3.BoolVal(never_holds), z3.And(holds))
        return tri(x.known, result)

    def _exact_calendar(
        self, op: ast.CompareOp, duration: Any, x: Val, day_precision: bool, date: bool
    ) -> Any:
        """``as_of OP shift(x, D)`` with `as_of` fixed: x on one side of exact thresholds."""
        a = self.as_of_value
        assert a is not None
        now = a - a % DAY if day_precision else a
        step = DAY if date else 1.0
        span = (month_shift_bounds(duration.months)[1] + 2) * DAY + abs(duration.seconds)
        low, high = int((now - span) // step) - 2, int((now + span) // step) + 2

        def moved(n: int) -> float:
            return shift(n * step, duration)

        reach = first_reaching(lambda n: moved(n) >= now, low, high)  # shift(x) >= now
        beyond = first_reaching(lambda n: moved(n) > now, low, high)  # shift(x) > now
        v = x.v
        at, past = real(reach * step), real(beyond * step)
        match op:
            case ast.CompareOp.LT:  # now < shift(x)
                return v >= past
            case ast.CompareOp.LE:
                return v >= at
            case ast.CompareOp.GT:
                return v < at
            case ast.CompareOp.GE:
                return v < past
            case ast.CompareOp.EQ:
                return z3.And(v >= at, v < past)
            case _:
                return z3.Or(v < at, v >= past)


_NEVER_HOLDS = {ast.CompareOp.GT, ast.CompareOp.GE, ast.CompareOp.NE}


def _children(node: ir.Node) -> tuple[ir.Node, ...]:
    try:
        return ir.children(node)
    except AssertionError:  # a node kind this version does not know: no children seen
        return ()


__all__ = ["DEFAULT_AS_OF", "Encoder", "FactVar", "Series"]
