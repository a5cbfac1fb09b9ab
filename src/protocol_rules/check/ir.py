"""The checked, typed form of an expression: what the evaluator compiles.

Every name is resolved, every literal is already in the unit it is compared in, and every
runtime unit conversion is an explicit `Convert`. Each node keeps the `ast` node it came from,
so traces show expressions as written in the file.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from attrs import field

from .. import ast
from .._frozen import frozen
from ..units import Conversion
from .types import Type


@frozen
class Const:
    """A literal; quantities in their target unit, dates in seconds since the epoch."""

    value: Any
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class FactRef:
    """A read of a fact; `index` is its slot in a normalised patient."""

    name: str
    index: int
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class DefineRef:
    name: str
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Each:
    """The observation under test inside a quantified comparison."""

    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Not:
    operand: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Logic:
    op: ast.LogicOp
    operands: tuple[Node, ...]
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Compare:
    op: ast.CompareOp
    left: Node
    right: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Between:
    operand: Node
    low: Node
    high: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class InSet:
    operand: Node
    items: tuple[Node, ...]
    negated: bool
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class IsKnown:
    operand: Node
    negated: bool
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Contains:
    collection: Node
    mode: ast.ContainsMode
    items: tuple[Node, ...]
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Convert:
    """A runtime unit conversion of `operand` (inserted by the checker, not written)."""

    operand: Node
    conversion: Conversion
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Arith:
    op: ast.ArithOp
    left: Node
    right: Node
    type: Type
    scale: float = 1.0  # e.g. a quotient of two quantities that is a plain number
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Negate:
    operand: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Window:
    """Observations of `series` with ``as_of - seconds <= at <= as_of``."""

    series: Node
    seconds: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Aggregate:
    function: str
    window: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Quantified:
    quantifier: ast.Quantifier
    window: Node
    condition: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Count:
    op: ast.CountOp
    n: int
    conditions: tuple[Node, ...]
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class TimeSince:
    """`time_since(d)`: days from `d` to `as_of`."""

    operand: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class DateShift:
    """`date + duration` or `date - duration`; `seconds` is the duration in seconds."""

    sign: int
    date: Node
    seconds: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class DateDiff:
    """`date - date`: a duration in days."""

    left: Node
    right: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


Node: TypeAlias = (
    Const
    | FactRef
    | DefineRef
    | Each
    | Not
    | Logic
    | Compare
    | Between
    | InSet
    | IsKnown
    | Contains
    | Convert
    | Arith
    | Negate
    | Window
    | Aggregate
    | Quantified
    | Count
    | TimeSince
    | DateShift
    | DateDiff
)


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-nodes of a node, in source order."""
    match node:
        case Const() | FactRef() | DefineRef() | Each():
            return ()
        case Not(operand=o) | IsKnown(operand=o) | Convert(operand=o) | Negate(operand=o):
            return (o,)
        case TimeSince(operand=o):
            return (o,)
        case Logic(operands=ops) | Count(conditions=ops):
            return ops
        case Compare(left=a, right=b) | Arith(left=a, right=b) | DateDiff(left=a, right=b):
            return (a, b)
        case Between(operand=a, low=b, high=c):
            return (a, b, c)
        case InSet(operand=a, items=items) | Contains(collection=a, items=items):
            return (a, *items)
        case Window(series=a, seconds=b) | DateShift(date=a, seconds=b):
            return (a, b)
        case Aggregate(window=w):
            return (w,)
        case Quantified(window=w, condition=c):
            return (w, c)
    raise AssertionError(f"unknown IR node {node!r}")
