"""The checked, typed form of an expression: what the evaluator compiles.

Every name is resolved, every literal is already in the unit it is compared in, and every
runtime unit conversion is an explicit `Convert`. Each node keeps the `ast` node it came from,
so traces show expressions as written in the file.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from attrs import field, frozen

from .. import ast
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


# --------------------------------------------------------------------------- calculation
# Each node below is a pure function of its children's values and says exactly what it does
# with an unknown operand, so that a polars or SQL back end can compile it: unknown is NULL,
# and a domain error (ln of 0, overflow, ...) is NULL too, never an exception, inf or NaN.


@frozen
class If:
    """`if C then A else B`.

    Unknown when `condition` is unknown (even if both branches agree); otherwise the value of
    `then` (C true) or `otherwise` (C false), evaluating only that branch. Both branches have
    `type` (the checker converted quantities to one unit). SQL: ``CASE WHEN C THEN A WHEN NOT C
    THEN B END`` (NULL when C is NULL).
    """

    condition: Node
    then: Node
    otherwise: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class FirstKnown:
    """`first_known(A, B, …)`: the first operand that is known, unknown if none is.

    Operands are evaluated left to right and evaluation stops at the first known one; all
    have `type`. SQL: ``COALESCE(A, B, …)``.
    """

    operands: tuple[Node, ...]
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Unknown:
    """The literal `unknown`: the unknown value of `type`. SQL: ``CAST(NULL AS …)``."""

    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Power:
    """`A ^ B`: ``A ** B`` on floats (an integer when both are integers and B >= 0).

    Unknown when either operand is unknown, and for the domain errors: 0 to a negative power,
    a negative number to a non-integer power, and a result beyond 1e300 in magnitude
    (overflow). When `base` is a quantity, `exponent` is an integer constant and `type` is in
    the base unit to that power (`m` -> `m2`); values are plain floats in those units. A float
    result is rounded to 12 significant digits (``units.clean``), as conversions are.
    SQL: ``POWER(A, B)`` guarded by the same conditions.
    """

    base: Node
    exponent: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


#: The functions a `Math` node applies.
MATH_FUNCTIONS = ("ln", "log10", "exp", "sqrt", "abs", "round", "min", "max")


@frozen
class Math:
    """A built-in function of scalars: `ln`, `log10`, `exp`, `sqrt`, `abs`, `round`, `min`, `max`.

    Strict: unknown when any argument is unknown. Per function, with x the first argument:

    - ``ln(x)``, ``log10(x)``: natural / decimal logarithm of a plain number; unknown for
      x <= 0.
    - ``exp(x)``: e to the x; unknown when the result passes 1e300 (x > 690.77...).
    - ``sqrt(x)``: square root; unknown for x < 0. For a quantity the checker converted x into
      a unit with even powers (`m2`) and `type` has the halved unit (`m`).
    - ``abs(x)``: absolute value, same type.
    - ``round(x, n)``: x rounded to n decimal places (n an integer constant, maybe negative),
      halves away from zero on the decimal value as written (2.675 -> 2.68, -0.5 -> -1).
    - ``min(a, b, …)``, ``max(a, b, …)``: the smallest / largest argument; all arguments were
      converted to one unit (or are all dates, or all numbers).

    The results of ``ln``, ``log10``, ``exp`` and ``sqrt`` (and of `Power`) are rounded to 12
    significant digits, as unit conversions are (``units.clean``), so that exact boundaries
    survive (``sqrt(2) ^ 2`` is 2); ``abs``, ``min``, ``max`` and ``round`` are exact.
    """

    function: str
    args: tuple[Node, ...]
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Param:
    """A parameter inside a function's body: the value of argument `index` of the call that is
    being evaluated (the innermost enclosing `FunctionCall`). Unknown when that argument is."""

    name: str
    index: int
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class FunctionCall:
    """`ckd_epi_2021(creatinine, age, female)`: a call of a function written in the language.

    `function` is the function's qualified name (`kidney.ckd_epi_2021` for a library's);
    `args` are already converted to the parameters' declared units; `body` is the function's
    checked body, in which `Param(i)` stands for ``args[i]``. Semantics: evaluate every argument
    (call by value), then `body`; unknown arguments flow into the body like any unknown (the
    body may test them). Functions are never recursive (refused statically), so a back end may
    simply inline `body` with each `Param` replaced by its argument.
    """

    function: str
    args: tuple[Node, ...]
    body: Node
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
    | If
    | FirstKnown
    | Unknown
    | Power
    | Math
    | Param
    | FunctionCall
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
        case If(condition=a, then=b, otherwise=c):
            return (a, b, c)
        case FirstKnown(operands=ops) | Math(args=ops):
            return ops
        case Unknown() | Param():
            return ()
        case Power(base=a, exponent=b):
            return (a, b)
        case FunctionCall(args=args, body=body):
            return (*args, body)
    raise AssertionError(f"unknown IR node {node!r}")
