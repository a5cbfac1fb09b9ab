"""Near misses: how far a patient's value is from the threshold of the comparison that excludes.

"Platelets 20,000 /uL against `platelet_count < 25000 '/uL'`: 5,000 /uL short of passing."
Read from the checked IR, so every back end shows the same thing:

- `criterion_leaves` finds, in a criterion's body, the comparisons of a number, quantity or
  duration with constants (``x < 25000 '/uL'``, ``age between 18 years and 65 years``) that
  are joined to the criterion by ``and``, ``or``, ``not`` and defines only;
- `distance` is how far the value must move for such a comparison to change, in the unit the
  threshold is written in;
- a leaf *flips* a criterion when changing that comparison alone (everything else as it is)
  turns the criterion from excluding the patient to letting them pass: `skeleton_value` works
  that out with three-valued logic.

The interpreter uses `near_misses_of` for `explain()` and the JSON result; the polars engine
builds the same numbers as columns from the same leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from attrs import frozen

from . import ast, units
from .check import ir
from .check.types import NumT, QtyT
from .facts import UNKNOWN
from .render.safe import printable

_MIRROR = {
    ast.CompareOp.LT: ast.CompareOp.GT,
    ast.CompareOp.LE: ast.CompareOp.GE,
    ast.CompareOp.GT: ast.CompareOp.LT,
    ast.CompareOp.GE: ast.CompareOp.LE,
}


@frozen
class NearMiss:
    """A comparison that alone keeps a patient out, and how far the value is from passing it."""

    criterion: str
    expr: str  # the comparison as written
    value: float  # the patient's value, in `unit`
    threshold: str  # the threshold as written
    unit: str | None
    distance: float  # how far `value` must move for the comparison to change, in `unit`


@frozen(eq=False)
class Leaf:
    """A comparison of a numeric expression with constants, in a criterion's connectives."""

    node: ir.Node  # the Compare or Between
    operand: ir.Node  # the compared expression
    low: float  # the threshold (or the lower bound), in the operand's unit
    high: float  # the upper bound of `between` (== low for a comparison)
    between: bool
    factor: float  # operand's unit -> the threshold's unit: factor * x + offset
    offset: float
    unit: str | None
    text: str
    threshold_text: str

    def shown(self, x: float) -> float:
        """A value in the operand's unit, in the threshold's unit."""
        return self.factor * x + self.offset

    def distance(self, x: float) -> float:
        """How far `x` (operand's unit) is from changing this comparison (threshold's unit)."""
        v, lo, hi = self.shown(x), self.shown(self.low), self.shown(self.high)
        if not self.between:
            return abs(v - lo)
        if lo <= v <= hi:
            return min(v - lo, hi - v)
        return max(lo - v, v - hi)


#: A criterion's body as connectives over leaves: ("and"|"or", parts), ("not", part),
#: ("leaf", index into the leaves, node) or ("other", node).
Skeleton = tuple[Any, ...]


def skeleton(body: ir.Node, defines: Mapping[str, ir.Node]) -> tuple[Skeleton, list[Leaf]]:
    """The connective skeleton of a criterion's body, and its comparison leaves.

    A define is opened once: used again in the same criterion it is a plain value, so that
    defines that each use the previous one twice do not double the skeleton at every link.
    """
    leaves: list[Leaf] = []
    opened: set[str] = set()

    def walk(node: ir.Node) -> Skeleton:
        match node:
            case ir.Logic(op=op, operands=operands):
                return (op.value, tuple(walk(o) for o in operands))
            case ir.Not(operand=operand):
                return ("not", walk(operand))
            case ir.DefineRef(name=name) if name in defines and name not in opened:
                opened.add(name)
                return walk(defines[name])
        leaf = _leaf(node)
        if leaf is None:
            return ("other", node)
        leaves.append(leaf)
        return ("leaf", len(leaves) - 1, leaf.node)

    return walk(body), leaves


def criterion_leaves(body: ir.Node, defines: Mapping[str, ir.Node]) -> list[Leaf]:
    return skeleton(body, defines)[1]


def _numeric(node: ir.Node) -> bool:
    return isinstance(node.type, NumT | QtyT)


def _leaf(node: ir.Node) -> Leaf | None:
    match node:
        case ir.Compare(op=op, left=left, right=right) if op in _MIRROR:
            if isinstance(left, ir.Const) and not isinstance(right, ir.Const):
                left, right, op = right, left, _MIRROR[op]
            if isinstance(left, ir.Const) or not isinstance(right, ir.Const):
                return None
            if not _numeric(left) or isinstance(right.value, bool):
                return None
            return _make(node, left, right, right, False)
        case ir.Between(operand=x, low=low, high=high):
            if not (isinstance(low, ir.Const) and isinstance(high, ir.Const)):
                return None
            if isinstance(x, ir.Const) or not _numeric(x):
                return None
            return _make(node, x, low, high, True)
    return None


def _make(node: ir.Node, x: ir.Node, low: ir.Const, high: ir.Const, between: bool) -> Leaf:
    own = x.type.unit if isinstance(x.type, QtyT) else None
    unit = _literal_unit(low.source) or own
    factor, offset = 1.0, 0.0
    if own is not None and unit is not None and unit != own:
        molar_mass = x.type.molar_mass if isinstance(x.type, QtyT) else None
        try:
            conversion = units.conversion(own, unit, molar_mass)
            factor, offset = conversion.factor, conversion.offset
        except units.UnitError:  # pragma: no cover - the checker converted it the other way
            unit = own
    span = node.source.span
    text = " ".join(span.text.split())
    threshold = " ".join(low.source.span.text.split())
    if between:
        threshold += " and " + " ".join(high.source.span.text.split())
    return Leaf(
        node, x, float(low.value), float(high.value), between, factor, offset, unit, text,
        threshold,
    )  # fmt: skip


def _literal_unit(node: ast.Expr) -> str | None:
    match node:
        case ast.QuantityLit(unit=unit):
            return unit
        case ast.DurationLit():
            return node.unit
        case ast.Negate(operand=operand):
            return _literal_unit(operand)
    return None


def skeleton_value(shape: Skeleton, value: Callable[[Any], Any], flip: int | None) -> Any:
    """The Kleene value of a skeleton (True, False or UNKNOWN), with leaf `flip` negated."""
    kind = shape[0]
    if kind == "leaf":
        x = value(shape[2])
        if shape[1] == flip and x is not UNKNOWN:
            return not x
        return x
    if kind == "other":
        return value(shape[1])
    if kind == "not":
        x = skeleton_value(shape[1], value, flip)
        return UNKNOWN if x is UNKNOWN else not x
    is_and = kind == "and"
    result: Any = is_and
    for part in shape[1]:
        x = skeleton_value(part, value, flip)
        if x is UNKNOWN:
            result = UNKNOWN
        elif x is not is_and:
            return x
    return result


def near_misses_of(
    criterion: str,
    excluding: bool,
    shape: Skeleton,
    leaves: list[Leaf],
    value: Callable[[Any], Any],
) -> tuple[NearMiss, ...]:
    """The leaves that alone keep the patient out of this criterion, nearest first.

    `value(node)` is the value an IR node took (UNKNOWN when unknown); `excluding` is the
    criterion's value that excludes (true for an exclusion).
    """
    if skeleton_value(shape, value, None) is not excluding:
        return ()
    found = []
    for index, leaf in enumerate(leaves):
        x = value(leaf.operand)
        if x is UNKNOWN or value(leaf.node) is UNKNOWN:
            continue
        shown, distance = leaf.shown(x), leaf.distance(x)
        if shown - shown != 0 or distance - distance != 0:  # overflowed: not a number to show
            continue
        if skeleton_value(shape, value, index) is (not excluding):
            found.append(
                NearMiss(
                    criterion,
                    leaf.text,
                    shown,
                    leaf.threshold_text,
                    leaf.unit,
                    distance,
                )
            )
    return tuple(sorted(found, key=lambda m: m.distance))


def near_miss_dict(miss: NearMiss) -> dict[str, Any]:
    """A near miss as JSON data (the ``near_misses`` of a criterion in a JSON result)."""
    return {
        "expr": miss.expr,
        "value": miss.value,
        "threshold": miss.threshold,
        "unit": miss.unit,
        "distance": miss.distance,
    }


def near_miss_text(miss: NearMiss) -> str:
    """One line: ``platelet_count < 25000 '/uL'`` with 20000 /uL, 5000 /uL from passing."""
    unit = f" {miss.unit}" if miss.unit else ""
    return (
        f"`{printable(miss.expr, newlines=False)}` with {miss.value:g}{unit}: "
        f"{miss.distance:g}{unit} from changing"
    )


def for_result(program: Any, F: list[Any], V: list[Any], index: int) -> tuple[NearMiss, ...]:
    """The near misses of criterion `index` of one evaluated patient (see `Program`).

    A sub-expression that a decided ``and`` / ``or`` did not evaluate is evaluated here, on a
    copy of the patient's record, so that what a flip would change is known.
    """
    from .evaluate import NOTRUN

    table = program.__dict__.get("_near_miss")
    if table is None:
        defines = {d.name: d.body for d in program.checked.defines}
        shapes = [skeleton(c.body, defines) for c in program.checked.criteria]
        slots: dict[int, int] = {}
        for slot, node in enumerate(program.nodes):
            slots.setdefault(id(node), slot)
        table = program.__dict__["_near_miss"] = (shapes, slots)
    shapes, slots = table
    shape, leaves = shapes[index]
    if not leaves:
        return ()
    copy: list[Any] = []

    def value(node: Any) -> Any:
        slot = slots[id(node)]
        x = V[slot]
        if x is NOTRUN:
            if not copy:
                copy.extend(V)
            x = copy[slot]
            if x is NOTRUN:
                x = program.fns[slot](F, copy)
        return x

    criterion = program.checked.criteria[index]
    return near_misses_of(criterion.id, program.excluding[index], shape, leaves, value)


__all__ = [
    "Leaf",
    "NearMiss",
    "criterion_leaves",
    "for_result",
    "near_miss_dict",
    "near_miss_text",
    "near_misses_of",
    "skeleton",
    "skeleton_value",
]
