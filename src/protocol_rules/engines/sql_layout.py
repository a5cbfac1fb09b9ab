"""Back end, SQL: the columnar layout read in SQL — checked, converted, normalised.

The query reads two tables (docs/screening.md#the-columnar-layout): **patients**, wide (one
row per patient: ``patient_id``, an optional ``as_of``, a column per scalar fact and an
optional ``<fact>.unit`` column per quantity), and **observations**, long (``patient_id, fact,
at, value, unit``). `LayoutSchema` says which columns exist and what SQL type each has (the
engines read it from the data; `LayoutSchema.typed` is the documented default for a warehouse).

Each value becomes the interpreter's representation: quantities in the declared unit, through
the **unit table** (`UnitTable`: one row per (fact, unit) pair, with the factor and offset
`units.conversion` gives, derived from the pairs the data holds — never written by hand)
and rounded as the interpreter rounds (`sql_numeric.clean`); instants as seconds since the
epoch; `never` as `sql_time.NEVER`.

A value the SQL cannot vouch for — text that is not a plain number or ISO 8601 instant, a unit
missing from the table, a value outside the declared range, a choice not declared, an
observation without time or value — is a *problem* of its patient, with the diagnostic code
`evaluate` would most likely give and a short message. The engines give such patients to the
interpreter's own reader, which has the last word (and the exact message); the SQL printed
for a warehouse reports them with status ``error``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
from sqlglot import exp

from .. import units
from ..check import CheckedProtocol, FactInfo
from ..check.types import BoolT, ChoiceT, NumT, QtyT, SeriesT, SetT, TextT, TimeT, Type
from .sql_build import (
    Dialect,
    Expr,
    alias,
    and_,
    case,
    coalesce,
    col,
    compare,
    div,
    double,
    floor,
    ident,
    in_,
    is_null,
    mul,
    not_,
    not_null,
    num,
    or_,
    text,
    to_double,
)
from .sql_numeric import clean
from .sql_stages import Names, Relation
from .sql_time import DAY, NEVER, day_of, parse_instant

NUMBER, BOOLEAN, TEXT, DATE, TIMESTAMP, SECONDS, OTHER = (
    "number",
    "boolean",
    "text",
    "date",
    "timestamp",
    "seconds",
    "other",
)
#: `SECONDS` is an instant already normalised (`sources.population`): seconds since the epoch
#: as a DOUBLE, minus infinity for `never` — what the engines hand over from a `Population`.
KINDS = (NUMBER, BOOLEAN, TEXT, DATE, TIMESTAMP, SECONDS, OTHER)
PATIENT_ID, AS_OF, UNIT_SUFFIX = "patient_id", "as_of", ".unit"
FACT, AT, VALUE, UNIT = "fact", "at", "value", "unit"

#: Plain decimal notation, as every engine and Python's float() read it alike.
NUMBER_PATTERN = "^ *[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)? *$"


def element(type_: Type) -> Type:
    return type_.element if isinstance(type_, SeriesT | SetT) else type_


def is_collection(fact: FactInfo) -> bool:
    return isinstance(fact.type, SeriesT | SetT)


@attrs.frozen
class LayoutSchema:
    """The columns of the two layout tables and the kind of each (`KINDS`).

    `patient_order` / `observation_order` name a column holding the input order (the engines
    add one); without it patients come out ordered by ``patient_id`` and observations at the
    same time are taken in the order of their values.
    """

    patients: tuple[tuple[str, str], ...]
    observations: tuple[tuple[str, str], ...] | None = None
    patient_order: str | None = None
    observation_order: str | None = None

    def patient_kind(self, column: str) -> str | None:
        return dict(self.patients).get(column)

    def observation_kind(self, column: str) -> str | None:
        return dict(self.observations or ()).get(column)

    @classmethod
    def typed(cls, checked: CheckedProtocol, *, as_of_column: bool = True) -> LayoutSchema:
        """The documented default: a typed column per scalar fact (DOUBLE, BOOLEAN, text, DATE,
        TIMESTAMP), a ``<fact>.unit`` column per quantity, and an observations table whose
        ``at`` is a TIMESTAMP and whose ``value`` is a DOUBLE when every series and set holds
        numbers, else text."""
        columns: list[tuple[str, str]] = [(PATIENT_ID, TEXT)]
        if as_of_column:
            columns.append((AS_OF, TIMESTAMP))
        collections = []
        for fact in checked.facts:
            if is_collection(fact):
                collections.append(fact)
                continue
            columns.append((fact.name, _natural_kind(fact.type)))
            if isinstance(fact.type, QtyT):
                columns.append((fact.name + UNIT_SUFFIX, TEXT))
        observations = None
        if collections:
            numeric = all(isinstance(element(f.type), NumT | QtyT) for f in collections)
            observations = (
                (PATIENT_ID, TEXT),
                (FACT, TEXT),
                (AT, TIMESTAMP),
                (VALUE, NUMBER if numeric else TEXT),
                (UNIT, TEXT),
            )
        return cls(tuple(columns), observations)


def _natural_kind(type_: Type) -> str:
    match type_:
        case BoolT():
            return BOOLEAN
        case NumT() | QtyT():
            return NUMBER
        case TimeT(has_time=has_time):
            return TIMESTAMP if has_time else DATE
    return TEXT


# --------------------------------------------------------------------------- the unit table


@attrs.frozen
class UnitRow:
    fact: str
    unit: str
    factor: float
    offset: float


@attrs.frozen
class UnitTable:
    """(fact, unit) -> ``value * factor + offset`` in the fact's declared unit."""

    rows: tuple[UnitRow, ...] = ()

    @classmethod
    def derive(cls, checked: CheckedProtocol, pairs: Iterable[tuple[str, Any]]) -> UnitTable:
        """The conversions of the distinct (fact, unit) pairs of the data, by `units`; pairs
        that do not convert (an unknown unit, another dimension) are left out, so their values
        are problems (PR406)."""
        facts = {f.name: f for f in checked.facts}
        rows: dict[tuple[str, str], UnitRow] = {}
        for name, unit in pairs:
            fact = facts.get(name)
            if fact is None or not isinstance(unit, str):
                continue
            target = element(fact.type)
            if not isinstance(target, QtyT) or unit == target.unit:
                continue
            try:
                conversion = units.conversion(unit, target.unit, target.molar_mass)
            except units.UnitError:
                continue
            rows[(name, unit)] = UnitRow(name, unit, conversion.factor, conversion.offset)
        return cls(tuple(rows[k] for k in sorted(rows)))

    @classmethod
    def of_protocol(
        cls, checked: CheckedProtocol, extra: Iterable[tuple[str, str]] = ()
    ) -> UnitTable:
        """Without data: for each quantity fact, the units the rules file itself writes that
        convert to its unit, and the `extra` (fact, unit) pairs."""
        written = _written_units(checked)
        pairs = [
            (f.name, u) for f in checked.facts if isinstance(element(f.type), QtyT) for u in written
        ]
        return cls.derive(checked, [*pairs, *extra])

    def select(self, dialect: Dialect) -> exp.Select:
        """The table as a query (one SELECT per row, UNION ALL: every dialect reads it)."""
        text_type = exp.DataType.build(dialect.text_type, dialect=dialect.sqlglot())

        def row(r: UnitRow | None) -> exp.Select:
            values = (
                [text(r.fact), text(r.unit), double(r.factor), double(r.offset)]
                if r
                else [exp.Null(), exp.Null(), exp.Null(), exp.Null()]
            )
            if r is None:
                values = [
                    exp.Cast(this=v, to=t)
                    for v, t in zip(
                        values,
                        [
                            text_type,
                            text_type,
                            exp.DataType.build("DOUBLE"),
                            exp.DataType.build("DOUBLE"),
                        ],
                        strict=True,
                    )
                ]
            names = (FACT, UNIT, "factor", "offset")
            return exp.select(*(alias(v, n) for v, n in zip(values, names, strict=True)))

        if not self.rows:
            return row(None).where(compare("=", num(1), num(0)))
        query: exp.Select | exp.Union = row(self.rows[0])
        for r in self.rows[1:]:
            query = exp.union(query, row(r), distinct=False)
        return query  # type: ignore[return-value]


def _written_units(checked: CheckedProtocol) -> list[str]:
    from .. import ast

    found: dict[str, None] = {}
    stack: list[Any] = [checked.syntax]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.QuantityLit) and node.unit:
            found[node.unit] = None
        if isinstance(node, ast.ProtocolFile):
            stack.extend(reversed(node.items) if hasattr(node, "items") else ())
        stack.extend(_children(node))
    return list(found)


def _children(node: Any) -> list[Any]:
    out = []
    for value in getattr(node, "__attrs_attrs__", ()):
        item = getattr(node, value.name)
        if isinstance(item, tuple):
            out.extend(i for i in item if hasattr(i, "__attrs_attrs__"))
        elif hasattr(item, "__attrs_attrs__"):
            out.append(item)
    return out


# --------------------------------------------------------------------------- problems


@attrs.frozen
class Problem:
    """A patient's value the SQL does not vouch for: `when` holds (on the row), with `code`."""

    when: Expr
    code: str
    message: str


def first_problem(problems: list[Problem]) -> Expr:
    """``CODE message`` of the first problem that holds (text), NULL when none does."""
    if not problems:
        return exp.Cast(this=exp.Null(), to=exp.DataType.build("VARCHAR"))
    return case(*((p.when, text(f"{p.code} {p.message}")) for p in problems))


# --------------------------------------------------------------------------- values


class Reader:
    """Reads the layout's raw cells into normalised values, collecting problems (one per
    fact or observation kind) — shared by the patients and the observations relations."""

    def __init__(self, dialect: Dialect, checked: CheckedProtocol, units_cte: str) -> None:
        self.dialect = dialect
        self.checked = checked
        self.units_cte = units_cte

    def number(self, raw: Expr, kind: str) -> Expr | None:
        """A number from a cell of `kind` (NULL when it does not read as one)."""
        if kind == NUMBER:
            return to_double(raw)
        if kind == TEXT:
            matches = self.dialect.regex(raw, NUMBER_PATTERN)
            if matches is None:  # SQL Server: the characters of a plain number, then TRY_CAST
                bad = exp.Like(this=raw, expression=text("%[^0-9.eE+ -]%"))
                return case(
                    (
                        not_(bad),
                        exp.TryCast(this=exp.Trim(this=raw), to=exp.DataType.build("DOUBLE")),
                    )
                )
            return case((matches, to_double(exp.Trim(this=raw))))
        return None

    def value(
        self,
        rel: Relation,
        fact: FactInfo,
        type_: Type,
        raw: Expr,
        kind: str,
        hint: str,
        *,
        unit: Expr | None = None,
        conversion: tuple[Expr, Expr] | None = None,
        where: str = "",
    ) -> tuple[Expr, list[Problem]]:
        """(normalised value, problems) of one raw cell `raw` of `fact` (whose values have
        `type_`). `unit` is the cell's unit (a quantity), `conversion` its (factor, offset)
        from the unit table, NULL when the unit is not there."""
        name = fact.name
        present = not_null(raw)
        problems: list[Problem] = []
        say = f"fact `{name}`{where}: "

        def problem(when: Expr, code: str, message: str) -> None:
            problems.append(Problem(and_(present, when), code, say + message))

        match type_:
            case BoolT():
                if kind == BOOLEAN:
                    value = raw
                elif kind == TEXT:
                    value = case(
                        (compare("=", raw, text("true")), self.dialect.value(self.dialect.true())),
                        (
                            compare("=", raw, text("false")),
                            self.dialect.value(self.dialect.false()),
                        ),
                    )
                else:
                    value = self.dialect.null_bool()
                problem(is_null(value), "PR403", "expected `true` or `false`")
            case NumT() | QtyT() as numeric:
                integer = isinstance(numeric, NumT) and numeric.integer
                number = self.number(raw, kind)
                if number is None:
                    number = exp.Cast(this=exp.Null(), to=exp.DataType.build("DOUBLE"))
                x = rel.column(number, hint + "_number")
                if kind == TEXT:  # `NaN`, `inf`: numbers to Python, not finite ones (PR404)
                    lowered = exp.Lower(this=exp.Trim(this=raw))
                    special = self.dialect.regex(lowered, "^[+-]?(nan|inf|infinity)$")
                    if special is not None:
                        problem(special, "PR404", "expected a finite number")
                problem(is_null(x), "PR403", "expected a number")
                problem(
                    not_(compare("<=", exp.Abs(this=x), num(1.7976931348623157e308))),
                    "PR404",
                    "expected a finite number",
                )
                if integer:
                    problem(compare("!=", x, floor(x)), "PR403", "expected a whole number")
                value = x
                if isinstance(type_, QtyT) and unit is not None and conversion is not None:
                    factor, offset = conversion
                    declared = or_(is_null(unit), compare("=", unit, text(type_.unit)))
                    problem(
                        and_(not_(declared), is_null(factor)),
                        "PR406",
                        f"the unit is not one the unit table converts to `{type_.unit}`",
                    )
                    converted = clean(
                        rel,
                        case((not_(declared), exp.Add(this=mul(x, factor), expression=offset))),
                        hint + "_converted",
                    )
                    value = rel.column(case((declared, x), default=converted), hint + "_value")
                if fact.low is not None and fact.high is not None:
                    unit_text = f" '{type_.unit}'" if isinstance(type_, QtyT) else ""
                    problem(
                        or_(
                            compare("<", value, num(fact.low)), compare(">", value, num(fact.high))
                        ),
                        "PR405",
                        f"outside the declared range {fact.low:g} to {fact.high:g}{unit_text}",
                    )
            case TimeT(has_time=has_time):
                value, ok = self._instant(rel, fact, raw, kind, has_time, hint)
                problem(
                    not_(ok), "PR407", "not an ISO 8601 " + ("datetime" if has_time else "date")
                )
            case TextT():
                value = (
                    raw
                    if kind == TEXT
                    else exp.Cast(this=exp.Null(), to=exp.DataType.build("VARCHAR"))
                )
                problem(is_null(value), "PR403", "expected a string")
            case ChoiceT(choices=choices):
                value = (
                    raw
                    if kind == TEXT
                    else exp.Cast(this=exp.Null(), to=exp.DataType.build("VARCHAR"))
                )
                problem(is_null(value), "PR403", "expected one of the choices")
                problem(
                    not_(in_(value, [text(c) for c in choices])),
                    "PR409",
                    f"not a choice of `{name}`",
                )
            case _:  # pragma: no cover - every element type is listed
                raise AssertionError(type_)
        return value, problems

    def _instant(
        self, rel: Relation, fact: FactInfo, raw: Expr, kind: str, has_time: bool, hint: str
    ) -> tuple[Expr, Expr]:
        dialect = self.dialect
        if kind == SECONDS:
            seconds = case((compare("<", raw, num(-1e300)), num(NEVER)), default=to_double(raw))
            return rel.column(seconds, hint + "_seconds"), exp.true()
        if kind == DATE:
            days = dialect.epoch_days(raw)
            seconds = mul(to_double(days), num(DAY))
            return rel.column(seconds, hint + "_seconds"), exp.true()
        if kind == TIMESTAMP and has_time:
            micros = dialect.epoch_micros(raw)
            seconds = div(to_double(micros), num(1_000_000))
            return rel.column(seconds, hint + "_seconds"), exp.true()
        if kind == TEXT:
            parsed = parse_instant(rel, dialect, raw, has_time, hint)
            if parsed is None:
                raise _refuse_text_dates(dialect, fact)
            seconds, ok = parsed
            if fact.never:
                is_never_text = compare("=", raw, text("never"))
                seconds = rel.column(
                    case((is_never_text, num(NEVER)), default=seconds), hint + "_or_never"
                )
                ok = or_(is_never_text, ok)
            return seconds, ok
        # a date fact from a timestamp, or a cell of another type: never read here
        return exp.Cast(this=exp.Null(), to=exp.DataType.build("DOUBLE")), exp.false()


def _refuse_text_dates(dialect: Dialect, fact: FactInfo) -> Exception:
    from .sql import unsupported_dialect

    return unsupported_dialect(
        dialect,
        f"dates written as text (fact `{fact.name}`)",
        "store dates in DATE / DATETIME2 columns, or screen with another engine",
    )


# --------------------------------------------------------------------------- patients


@attrs.frozen
class PatientsRead:
    """The normalised patients: the relation, and what the rest of the query reads from it."""

    relation: Relation
    key: str  # the patient_id column
    order: str | None  # the input order column
    as_of: Expr  # seconds, or a literal
    facts: dict[str, str]  # scalar fact -> its normalised column
    problems: list[Problem]  # the facts' problems, in declaration order
    as_of_problems: list[Problem]


def read_patients(
    reader: Reader,
    names: Names,
    schema: LayoutSchema,
    table: str,
    as_of: float | None,
    needs_as_of: bool,
) -> PatientsRead:
    dialect, checked = reader.dialect, reader.checked
    raw: dict[str, str] = {}
    items: list[Expr] = []
    key = names.new("patient_id")
    items.append(alias(col(PATIENT_ID), key))
    order = None
    if schema.patient_order:
        order = names.new("input_row")
        items.append(alias(col(schema.patient_order), order))
    for column, _kind in schema.patients:
        if column in (PATIENT_ID, schema.patient_order):
            continue
        raw[column] = names.new(column.replace(".", "_") + "_raw")
        items.append(alias(col(column), raw[column]))
    base = exp.select(*items).from_(exp.Table(this=ident(table)))
    rel = Relation(names, "patients", base, [key, *([order] if order else []), *raw.values()])
    facts: dict[str, str] = {}
    problems: list[Problem] = []
    for fact in checked.facts:
        if is_collection(fact):
            continue
        column = names.claim(fact.name)
        kind = schema.patient_kind(fact.name)
        if kind is None:
            rel.add(column, exp.Cast(this=exp.Null(), to=_null_type(fact.type, dialect)))
            facts[fact.name] = column
            continue
        unit_column = raw.get(fact.name + UNIT_SUFFIX)
        cell = col(raw[fact.name])
        unit = conversion = None
        if unit_column is not None:
            unit = col(unit_column)
            if isinstance(fact.type, QtyT):
                conversion = _lookup(rel, reader.units_cte, names, fact.name, unit_column)
        value, found = reader.value(
            rel, fact, fact.type, cell, kind, fact.name, unit=unit, conversion=conversion
        )
        if unit is not None and not isinstance(fact.type, QtyT):
            found.append(
                Problem(
                    and_(not_null(cell), not_null(unit)),
                    "PR403",
                    f"fact `{fact.name}`: a unit on a value that has none",
                )
            )
        rel.add(column, value)
        facts[fact.name] = column
        problems += found
    as_of_expr, as_of_problems = _as_of(reader, rel, schema, raw, as_of, needs_as_of)
    return PatientsRead(rel, key, order, as_of_expr, facts, problems, as_of_problems)


def _null_type(type_: Type, dialect: Dialect) -> exp.DataType:
    match type_:
        case BoolT():
            return (
                exp.DataType.build("BOOLEAN")
                if dialect.native_booleans
                else exp.DataType.build("INT")
            )
        case TextT() | ChoiceT():
            return exp.DataType.build("VARCHAR")
    return exp.DataType.build("DOUBLE")


def _lookup(
    rel: Relation, units_cte: str, names: Names, fact: str, unit_column: str
) -> tuple[Expr, Expr]:
    """LEFT JOIN the unit table for `fact` on the unit column: (factor, offset) columns."""
    factor, offset = names.new(fact + "_factor"), names.new(fact + "_offset")
    rel.join(
        units_cte,
        [(col(unit_column, "s"), UNIT), (text(fact), FACT)],
        [("factor", factor), ("offset", offset)],
        after=rel.levels[unit_column.lower()],
    )
    return col(factor), col(offset)


def _as_of(
    reader: Reader,
    rel: Relation,
    schema: LayoutSchema,
    raw: dict[str, str],
    as_of: float | None,
    needs_as_of: bool,
) -> tuple[Expr, list[Problem]]:
    missing = Problem(
        exp.true(),
        "PR410",
        "this protocol reads time windows or `time_since`, so it needs `as_of`",
    )
    if as_of is not None:
        return num(as_of), []
    kind = schema.patient_kind(AS_OF)
    if kind is None:
        return exp.Cast(this=exp.Null(), to=exp.DataType.build("DOUBLE")), [
            missing
        ] if needs_as_of else []
    cell = col(raw[AS_OF])
    fake = FactInfo(AS_OF, -1, TimeT(True), None, None, None, None, None, None)  # type: ignore[arg-type]
    value, ok = reader._instant(rel, fake, cell, kind, True, "as_of")
    column = rel.column(value, "as_of_seconds")
    problems = [
        Problem(and_(not_null(cell), not_(ok)), "PR407", "`as_of`: not an ISO 8601 datetime")
    ]
    if needs_as_of:
        problems.append(Problem(is_null(cell), missing.code, missing.message))
    return column, problems


def past_problems(rel: Relation, read: PatientsRead, checked: CheckedProtocol) -> list[Problem]:
    """PR421: a `past` date after `as_of` (checked by `evaluate` once nothing else is wrong)."""
    out = []
    for fact in checked.facts:
        if not fact.past:
            continue
        x = col(read.facts[fact.name])
        limit = read.as_of if fact.type.has_time else day_of(rel, read.as_of, "as_of_day")
        out.append(
            Problem(
                compare(">", x, limit),
                "PR421",
                f"fact `{fact.name}`: the date is after `as_of`, but this fact is declared `past`",
            )
        )
    return out


# --------------------------------------------------------------------------- observations


@attrs.frozen
class ObservationsRead:
    relation: Relation
    key: str
    fact: str  # the fact name column
    at: str  # seconds (NULL for a set member)
    seq: str | None  # input order
    values: dict[str, str]  # collection fact -> its normalised value column
    marker: str  # 1 for the row saying "known and empty", else 0
    problem: Expr  # ``CODE message`` of the row's problem, NULL when none


def read_observations(
    reader: Reader,
    names: Names,
    schema: LayoutSchema,
    table: str,
    ignore_unknown: bool,
) -> ObservationsRead | None:
    if schema.observations is None:
        return None
    checked = reader.checked
    key, fact_col = names.new("patient_id"), names.new("fact")
    items = [alias(col(PATIENT_ID), key), alias(col(FACT), fact_col)]
    raw = {}
    for column in (AT, VALUE, UNIT):
        if schema.observation_kind(column) is not None:
            raw[column] = names.new("obs_" + column + "_raw")
            items.append(alias(col(column), raw[column]))
    seq = None
    if schema.observation_order:
        seq = names.new("obs_seq")
        items.append(alias(col(schema.observation_order), seq))
    base = exp.select(*items).from_(exp.Table(this=ident(table)))
    rel = Relation(
        names, "observations", base, [key, fact_col, *raw.values(), *([seq] if seq else [])]
    )
    collections = [f for f in checked.facts if is_collection(f)]
    fact = col(fact_col)
    value_raw = col(raw[VALUE]) if VALUE in raw else exp.Null()
    at_raw = col(raw[AT]) if AT in raw else exp.Null()
    unit_raw = col(raw[UNIT]) if UNIT in raw else None
    is_marker = and_(is_null(value_raw), is_null(at_raw))
    marker = rel.column(case((is_marker, num(1)), default=num(0)), "obs_marker")
    problems: list[Problem] = []
    conversion = None
    if unit_raw is not None and any(isinstance(element(f.type), QtyT) for f in collections):
        factor, offset = names.new("obs_factor"), names.new("obs_offset")
        rel.join(
            reader.units_cte,
            [(col(raw[UNIT], "s"), UNIT), (col(fact_col, "s"), FACT)],
            [("factor", factor), ("offset", offset)],
            after=0,
        )
        conversion = (col(factor), col(offset))
    values: dict[str, str] = {}
    for f in collections:
        type_ = element(f.type)
        this = compare("=", fact, text(f.name))
        value_kind = schema.observation_kind(VALUE) or OTHER
        value, found = reader.value(
            rel,
            f,
            type_,
            case((this, value_raw)),
            value_kind,
            f.name,
            unit=case((this, unit_raw)) if unit_raw is not None else None,
            conversion=conversion,
            where=" (an observation)",
        )
        values[f.name] = rel.column(case((this, value)), f.name + "_value").name
        real = and_(this, compare("=", marker, num(0)))
        for p in found:
            problems.append(Problem(and_(real, p.when), p.code, p.message))
        if isinstance(f.type, SeriesT):
            problems.append(
                Problem(
                    and_(real, is_null(at_raw)),
                    "PR408",
                    f"fact `{f.name}`: an observation has no `at` time",
                )
            )
            problems.append(
                Problem(
                    and_(real, is_null(value_raw)),
                    "PR411",
                    f"fact `{f.name}`: an observation has no `value`",
                )
            )
        else:
            problems.append(
                Problem(
                    and_(this, is_null(value_raw), not_null(at_raw)),
                    "PR411",
                    f"fact `{f.name}`: a member has no value",
                )
            )
    at = names.new("obs_at")
    series = [f.name for f in collections if isinstance(f.type, SeriesT)]
    at_kind = schema.observation_kind(AT)
    if series and at_kind is not None:
        fake = FactInfo(AT, -1, TimeT(True), None, None, None, None, None, None)  # type: ignore[arg-type]
        seconds, ok = reader._instant(rel, fake, at_raw, at_kind, True, "obs_at")
        in_series = in_(fact, [text(s) for s in series])
        rel.add(at, case((in_series, seconds)))
        problems.append(
            Problem(
                and_(in_series, not_null(at_raw), not_(ok)),
                "PR407",
                "an observation's `at` is not an ISO 8601 datetime",
            )
        )
    else:
        rel.add(at, exp.Cast(this=exp.Null(), to=exp.DataType.build("DOUBLE")))
    declared = [f.name for f in collections]
    scalars = [f.name for f in checked.facts if not is_collection(f)]
    if scalars:
        problems.append(
            Problem(
                in_(fact, [text(s) for s in scalars]),
                "PR511",
                "a scalar fact in the observations table: its value goes in a column of patients",
            )
        )
    if not ignore_unknown:
        known = [*declared, *scalars]
        problems.append(
            Problem(
                not_(in_(fact, [text(s) for s in known])) if known else exp.true(),
                "PR402",
                "an observation of a fact this protocol does not declare",
            )
        )
    return ObservationsRead(
        rel, key, fact_col, at, seq, values, marker.name, first_problem(problems)
    )


def presence(
    read: ObservationsRead, names: Names, collections: list[FactInfo]
) -> tuple[str, exp.Select, dict[str, str], str]:
    """One row per patient with observations: for each collection fact, 1 when the patient has
    it (a row, or the marker row) and NULL otherwise; and a problem of its observations
    (``CODE message``, the least by code).

    Returns (CTE name, query, fact -> presence column, problem column).
    """
    name = names.new("observed")
    source = read.relation.last
    key = col(read.key)
    items: list[Expr] = [alias(key, read.key)]
    columns = {}
    for f in collections:
        column = names.new(f.name + "_known")
        columns[f.name] = column
        items.append(
            alias(exp.Max(this=case((compare("=", col(read.fact), text(f.name)), num(1)))), column)
        )
    problem = names.new("observation_problem")
    items.append(alias(exp.Min(this=read.problem), problem))
    query = exp.select(*items).from_(exp.Table(this=ident(source))).group_by(key)
    return name, query, columns, problem


def coalesced(*exprs: Expr) -> Expr:
    return coalesce(*exprs) if len(exprs) > 1 else exprs[0]
