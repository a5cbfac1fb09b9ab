"""The checked, typed form of an expression: what the evaluator compiles.

Every name is resolved, every literal is already in the unit it is compared in, and every
runtime unit conversion is an explicit `Convert`. Each node keeps the `ast` node it came from,
so traces show expressions as written in the file.

Instants (dates and datetimes) are seconds since 1970-01-01T00:00Z; a date is its 00:00 UTC.
Calendar semantics (month-end clamping, day precision, `NEVER`) are the pure functions of
`protocol_rules.calendar`, which every back end mirrors. Where a date meets a datetime the
checker inserts a `DayOf`, so comparisons of instants are plain comparisons, except that a
`NEVER` operand (a `date or never` fact known not to have happened) makes `Compare` and
`Between` false, whatever the operator.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from attrs import field

from .. import ast
from .._frozen import frozen
from ..calendar import CalendarDuration
from ..codes import ValueSet
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
    """Observations of `series` with ``start <= at <= end`` (docs/language/time.md#windows).

    `end` is an instant node, or None for `as_of`. `start` is an instant node (`S from A to B`),
    or None: then the window is `length` long and ends at `end` (`S over last D [before T]`):
    it starts at ``calendar.shift(end, duration, -1)`` when `duration` (the `CalendarDuration`
    of a duration word) is given, else at ``end - length`` with `length` a node in seconds.
    A bound of date type covers its whole day: ``day_of(at) >= start``, ``day_of(at) <= end``.
    A `NEVER` bound makes the window empty; an unknown series, bound or length makes it unknown.
    """

    series: Node
    length: Node | None
    type: Type
    end: Node | None = None
    start: Node | None = None
    duration: CalendarDuration | None = None
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
    """`time_since(d)`: days from `d` to `as_of` (`calendar.days_since`).

    Whole days when `d` is a date (`as_of` counts as its UTC date); infinite for `NEVER`.
    """

    operand: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class DateShift:
    """`date + duration` or `date - duration` by a definite duration; `seconds` is in seconds.

    Duration words are `CalendarShift`s; this is for UCUM durations (`3 'mo'`) and computed
    ones (`time_since(x)`). `NEVER` stays `NEVER`.
    """

    sign: int
    date: Node
    seconds: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class DateDiff:
    """`date - date`: a duration in days.

    A `NEVER` on the left gives minus infinity, on the right infinity, on both unknown.
    """

    left: Node
    right: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


# --------------------------------------------------------------------------- time, second edition


@frozen
class AsOf:
    """`as_of`: the evaluation time, a datetime."""

    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class DayOf:
    """The UTC date (00:00 UTC) of a datetime, where it meets a date (inserted, not written).

    `NEVER` stays `NEVER`.
    """

    operand: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class CalendarShift:
    """`x + 3 months`, `as_of - 48 hours`: ``calendar.shift(instant, duration, sign)``.

    `amount` is the duration as written (a `Const`, shown in traces), `duration` its calendar
    value. The result is a date when `instant` is a date and `duration` has no part shorter
    than a day, else a datetime. `NEVER` stays `NEVER`.
    """

    sign: int
    instant: Node
    amount: Node
    duration: CalendarDuration
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class CalendarCompare:
    """`time_since(x) >= 18 years`, `time_since(x) between 1 year and 5 years`, by calendar.

    `since` is the `TimeSince` of x. True when for every ``(op, duration)`` of `ops` and
    `durations`: ``as_of OP calendar.shift(x, duration)``, with `as_of` at day precision
    (`day_of`) when ``x + D`` is a date (x a date, D without a part shorter than a day). So
    `time_since(x) >= D` holds exactly when ``x + D <= as_of`` (compared as instants are).
    When x is `NEVER` its time since is longer than any duration: `>`, `>=` and `!=` hold, `<`,
    `<=` and `=` do not. `amounts` are the durations as written (`Const`s, for traces).
    """

    since: Node
    ops: tuple[ast.CompareOp, ...]
    amounts: tuple[Node, ...]
    durations: tuple[CalendarDuration, ...]
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class ObservationValue:
    """`value` in a `where` condition: the value of the observation the filter tests."""

    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class IsNever:
    """`x is never`: true for `NEVER`, false for a date, unknown when x is."""

    operand: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Filter:
    """`W where C`: the observations of window `W` for which `C` (reading `Each`) is true.

    Unknown when W is, or when C is unknown for some observation: which observations the filter
    keeps is then not known, so no aggregate over it can be trusted.
    """

    window: Node
    condition: Node
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class Consecutive:
    """`consecutive(W where C)`: the longest run of consecutive observations of W (in time
    order) for which C holds, 0 if none.

    Three-valued and conservative: an observation whose C is unknown may or may not extend a
    run, so the result is the run length counting it as false when that equals the length
    counting it as true, else unknown. Unknown when W is.
    """

    window: Node
    condition: Node
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


# --------------------------------------------------------------------------- terminology
# docs/language/codes.md. A code value is its canonical text ``SYSTEM#code`` (a string), so
# `Const`, `FactRef`, `Compare` (`=`, `!=`: exact equality) carry codes unchanged; membership
# in a value set, which knows descendants, is one of the two nodes below.


@frozen
class InCodes:
    """`x in aki`, `x not in {ICD10CM#N17*, SNOMED#14669001}`, `value in aki`: a code tested
    against a value set.

    True when `operand` (a code) matches a member of `codes` (`codes.ValueSet`): it equals the
    member's code, or the member has `*` and the code is below it — it starts with the member's
    code for a ``prefix`` system (ICD-10-CM, ICD-10, ICD-9-CM, ICD-10-PCS, ATC), or a
    terminology listed it (`ValueSet.expanded`); otherwise false. `negated` (`not in`) negates a
    known result. Unknown when the operand is unknown. ``codes.matcher().match(x)`` is the
    reference. SQL: ``x IN (<exact codes>) OR x LIKE '<prefix>%' OR …`` (NULL when x is NULL).
    """

    operand: Node
    codes: ValueSet
    negated: bool
    type: Type
    source: ast.Expr = field(eq=False, repr=False, kw_only=True)


@frozen
class ContainsCodes:
    """`dx contains any of aki`, `dx contains all of {…}`, `dx contains ICD10CM#N17*`: a set of
    codes (a `set of code` fact) tested against the members of a value set.

    With mode `ONE` (a single member) or `ANY`: true when some code of the set matches some
    member (as `InCodes` matches), false otherwise (an empty set included). With `ALL`: true when
    every member is matched by some code of the set (`ValueSet.member_matchers`), false
    otherwise. Unknown when `collection` is unknown; a known set holds only known codes.
    SQL: ``EXISTS (SELECT … WHERE <InCodes test>)``, one per member for `ALL`.
    """

    collection: Node
    mode: ast.ContainsMode
    codes: ValueSet
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
    | AsOf
    | DayOf
    | ObservationValue
    | CalendarShift
    | CalendarCompare
    | IsNever
    | Filter
    | Consecutive
    | If
    | FirstKnown
    | Unknown
    | Power
    | Math
    | Param
    | FunctionCall
    | InCodes
    | ContainsCodes
)


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-nodes of a node, in source order."""
    match node:
        case Const() | FactRef() | DefineRef() | Each() | AsOf() | ObservationValue():
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
        case Window(series=series, start=start, length=length, end=end):
            return (series, *(n for n in (start, length, end) if n is not None))
        case DateShift(date=a, seconds=b) | CalendarShift(instant=a, amount=b):
            return (a, b)
        case DayOf(operand=o) | IsNever(operand=o):
            return (o,)
        case CalendarCompare(since=since, amounts=amounts):
            return (since, *amounts)
        case Filter(window=w, condition=c) | Consecutive(window=w, condition=c):
            return (w, c)
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
        case InCodes(operand=o) | ContainsCodes(collection=o):
            return (o,)
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
