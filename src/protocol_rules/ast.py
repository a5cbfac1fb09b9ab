"""Stage 2 of the pipeline: the syntax tree of a rules file, as written.

Frozen, slotted attrs classes and nothing else. Every node carries its `Span`, kept out of
equality, so two trees compare equal whatever their layout. Names are not resolved here: that
is the checker's job (`protocol_rules.check`).
"""

from __future__ import annotations

import enum
from typing import TypeAlias

from attrs import field

from ._frozen import frozen
from .source import Span

# --------------------------------------------------------------------------- operators


class CompareOp(enum.StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "="
    NE = "!="


class ArithOp(enum.StrEnum):
    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"


class LogicOp(enum.StrEnum):
    AND = "and"
    OR = "or"


class Quantifier(enum.StrEnum):
    ANY = "any"
    ALL = "all"


class CountOp(enum.StrEnum):
    AT_LEAST = "at least"
    AT_MOST = "at most"


class ContainsMode(enum.StrEnum):
    ONE = "contains"
    ANY = "contains any of"
    ALL = "contains all of"


class CriterionKind(enum.StrEnum):
    INCLUSION = "inclusion"
    EXCLUSION = "exclusion"


#: Time-unit words and the UCUM unit each stands for.
TIME_WORDS: dict[str, str] = {
    "year": "a",
    "years": "a",
    "month": "mo",
    "months": "mo",
    "week": "wk",
    "weeks": "wk",
    "day": "d",
    "days": "d",
    "hour": "h",
    "hours": "h",
    "minute": "min",
    "minutes": "min",
}


# --------------------------------------------------------------------------- expressions


@frozen
class NumberLit:
    """`25000`, `0.5`."""

    value: float
    is_integer: bool
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class QuantityLit:
    """`25000 '/uL'`: a number and a quoted UCUM unit."""

    value: float
    unit: str
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)
    unit_span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class DurationLit:
    """`48 hours`: a quantity of time written with a time-unit word."""

    value: float
    word: str
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)

    @property
    def unit(self) -> str:
        return TIME_WORDS[self.word]


@frozen
class DateLit:
    """`@2026-03-01` or `@2026-03-01T08:00`."""

    value: str
    has_time: bool
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class TextLit:
    """`"text"`."""

    value: str
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class BoolLit:
    """`true`, `false`."""

    value: bool
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Name:
    """`age`: a fact, a define or a choice, resolved by the checker."""

    name: str
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Each:
    """The observation a quantified comparison tests: stands for `any(W)` / `all(W)`."""

    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Call:
    """`max(W)`, `time_since(d)`: a built-in function applied to arguments."""

    function: str
    args: tuple[Expr, ...]
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)
    name_span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Not:
    """`not X`."""

    operand: Expr
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Logic:
    """`A and B and C`, `A or B`: flat, two or more operands."""

    op: LogicOp
    operands: tuple[Expr, ...]
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Comparison:
    """`age < 65 years`."""

    op: CompareOp
    left: Expr
    right: Expr
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Between:
    """`age between 18 years and 65 years`, inclusive at both ends."""

    operand: Expr
    low: Expr
    high: Expr
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class InSet:
    """`aki_cause in {septic, prerenal}`, `x not in {…}`."""

    operand: Expr
    items: tuple[Expr, ...]
    negated: bool
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class IsKnown:
    """`lvef is known`, `lvef is unknown` (negated)."""

    operand: Expr
    negated: bool
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Contains:
    """`drugs contains insulin`, `drugs contains any of {…}`, `… contains all of {…}`."""

    collection: Expr
    mode: ContainsMode
    items: tuple[Expr, ...]
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Window:
    """`serum_creatinine over last 48 hours`, `… over last 48 hours before icu_admission`."""

    series: Expr
    duration: Expr
    before: Expr | None = None
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Quantified:
    """`any(W) > 15 'mg/d'`, `all(W) < 0.5 'mL/kg/h'`: `condition` tests an `Each`."""

    quantifier: Quantifier
    window: Expr
    condition: Expr
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Count:
    """`at least 2 of (A, B, C)`, `at most 1 of (…)`."""

    op: CountOp
    n: int
    conditions: tuple[Expr, ...]
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Arithmetic:
    """`2 * baseline_creatinine`, `a + b`."""

    op: ArithOp
    left: Expr
    right: Expr
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Negate:
    """`-x`."""

    operand: Expr
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


# ---- time, second edition (docs/language/time.md)


@frozen
class WindowFromTo:
    """`serum_creatinine from admission to discharge`: a window between two instants."""

    series: Expr
    start: Expr
    end: Expr
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Where:
    """`serum_creatinine over last 7 days where value > 4 'mg/dL'`: a filtered window."""

    window: Expr
    condition: Expr
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class ObservationValue:
    """`value`: the value of the observation a `where` condition tests."""

    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class AsOf:
    """`as_of`: the evaluation time, a datetime."""

    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class IsNever:
    """`last_dialysis is never`: a `date or never` fact known not to have happened."""

    operand: Expr
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


# --------------------------------------------------------------------------- calculation
# docs/language/calculation.md, docs/language/functions.md


@frozen
class If:
    """`if count(w) >= 6 then all(w) < 0.5 'mL/kg/h' else unknown`."""

    condition: Expr
    then: Expr
    otherwise: Expr
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class UnknownLit:
    """`unknown`: the unknown value of whatever type the context gives it."""

    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Power:
    """`height ^ 2`, `0.9938 ^ (age / 1 'a')`: binds tighter than unary minus."""

    base: Expr
    exponent: Expr
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


# ---- terminology (docs/language/codes.md)


@frozen
class CodeLit:
    """`LOINC#2160-0`; in a set or a `codes` declaration also `ICD10CM#N17*` (and descendants).

    `system` and `code` are as written (the checker resolves the system); `display` is the name
    written after a code in a `codes` declaration (`SNOMED#14669001 "Acute renal failure"`).
    """

    system: str
    code: str
    descendants: bool = False
    display: str | None = None
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class ValueSetRef:
    """`aki` in `x in aki`, `dx contains any of aki`: a value set named by a `codes` item."""

    name: str
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


Expr: TypeAlias = (
    NumberLit
    | QuantityLit
    | DurationLit
    | DateLit
    | TextLit
    | BoolLit
    | Name
    | Each
    | Call
    | Not
    | Logic
    | Comparison
    | Between
    | InSet
    | IsKnown
    | Contains
    | Window
    | Quantified
    | Count
    | Arithmetic
    | Negate
    | WindowFromTo
    | Where
    | ObservationValue
    | AsOf
    | IsNever
    | If
    | UnknownLit
    | Power
    | CodeLit
    | ValueSetRef
)


# --------------------------------------------------------------------------- declared types


@frozen
class BooleanType:
    """`boolean`."""

    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class IntegerType:
    """`integer`."""

    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class NumberType:
    """`number`."""

    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class QuantityType:
    """`quantity 'mg/dL'`."""

    unit: str
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)
    unit_span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class DateType:
    """`date`, `date or never`."""

    never: bool = False
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class DateTimeType:
    """`datetime`, `datetime or never`."""

    never: bool = False
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class TextType:
    """`text`."""

    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class ChoiceType:
    """`one of prerenal, septic, other`."""

    choices: tuple[str, ...]
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)
    choice_spans: tuple[Span, ...] = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class SeriesType:
    """`series of quantity 'mg/dL'`: timestamped observations."""

    element: TypeExpr
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class SetType:
    """`set of one of insulin, metformin`: a collection read with `contains`."""

    element: TypeExpr
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class CodeType:
    """`code`: a code of a code system (docs/language/codes.md)."""

    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


TypeExpr: TypeAlias = (
    BooleanType
    | IntegerType
    | NumberType
    | QuantityType
    | DateType
    | DateTimeType
    | TextType
    | ChoiceType
    | SeriesType
    | SetType
    | CodeType
)


# --------------------------------------------------------------------------- declarations


@frozen
class Meta:
    """`title "…"` in the protocol header."""

    key: str
    value: str
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Header:
    """`protocol NCT04194671` followed by metadata lines."""

    id: str
    meta: tuple[Meta, ...]
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Range:
    """`range 0 to 130`: bounds in the fact's declared unit."""

    low: float
    high: float
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class MolarMass:
    """`molar_mass 113.12 'g/mol'`."""

    value: float
    unit: str
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)
    unit_span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Past:
    """`past`: a date fact whose values may not be after `as_of`."""

    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Fact:
    """`fact age: quantity 'a' range 0 to 130 "Age at screening"`."""

    name: str
    type: TypeExpr
    range: Range | None
    molar_mass: MolarMass | None
    description: str | None
    past: Past | None = None
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)
    name_span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Parameter:
    """`weight: quantity 'kg'`: a typed parameter of a function."""

    name: str
    type: TypeExpr
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)
    name_span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Define:
    """`define creatinine_doubled = …`; with `params`, a function: `define bmi(w: …, h: …) = …`.

    `params` is None for a plain define (a value), a tuple for a function; `type` is the
    declared type written after the name or the parameters (`define f(x: number): number = …`);
    `note` records a source or a reading (`define bmi(…) note "WHO, 2000" = …`).
    """

    name: str
    expr: Expr
    params: tuple[Parameter, ...] | None = None
    type: TypeExpr | None = None
    note: str | None = None  # e.g. a formula's literature reference
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)
    name_span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Criterion:
    """`inclusion I2 "Age between 18 and 65 years" note "…": age between …`."""

    kind: CriterionKind
    id: str
    text: str
    note: str | None
    expr: Expr
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)
    id_span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Use:
    """`use kidney` (a library shipped in the package) or `use "egfr.rules"` (a file)."""

    name: str
    is_file: bool
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


@frozen
class Codes:
    """`codes aki = {ICD10CM#N17*, SNOMED#14669001 "Acute renal failure syndrome", ckd}`.

    A named value set: its members are codes (`CodeLit`, maybe with `*` and a display name) and
    names of other value sets (`Name`), in the order written.
    """

    name: str
    members: tuple[CodeLit | Name, ...]
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)
    name_span: Span = field(default=None, eq=False, repr=False, kw_only=True)


Item: TypeAlias = Fact | Define | Criterion | Use | Codes


@frozen
class ProtocolFile:
    """A whole rules file: an optional header and its items in file order."""

    header: Header | None
    items: tuple[Item, ...]
    span: Span = field(default=None, eq=False, repr=False, kw_only=True)


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of an expression, in source order."""
    match node:
        case NumberLit() | QuantityLit() | DurationLit() | DateLit() | TextLit() | BoolLit():
            return ()
        case Name() | Each() | ObservationValue() | AsOf():
            return ()
        case CodeLit() | ValueSetRef():
            return ()
        case Call(args=args):
            return args
        case Not(operand=o) | Negate(operand=o) | IsKnown(operand=o):
            return (o,)
        case Logic(operands=ops):
            return ops
        case Comparison(left=a, right=b) | Arithmetic(left=a, right=b):
            return (a, b)
        case Between(operand=a, low=b, high=c):
            return (a, b, c)
        case InSet(operand=a, items=items):
            return (a, *items)
        case Contains(collection=a, items=items):
            return (a, *items)
        case Window(series=a, duration=b, before=None):
            return (a, b)
        case Window(series=a, duration=b, before=c) | WindowFromTo(series=a, start=b, end=c):
            return (a, b, c)
        case Where(window=a, condition=b):
            return (a, b)
        case IsNever(operand=o):
            return (o,)
        case Quantified(window=w, condition=c):
            return (w, c)
        case Count(conditions=cs):
            return cs
        case If(condition=a, then=b, otherwise=c):
            return (a, b, c)
        case UnknownLit():
            return ()
        case Power(base=a, exponent=b):
            return (a, b)
        case If(condition=a, then=b, otherwise=c):
            return (a, b, c)
        case UnknownLit():
            return ()
        case Power(base=a, exponent=b):
            return (a, b)
    raise AssertionError(f"unknown node {node!r}")
