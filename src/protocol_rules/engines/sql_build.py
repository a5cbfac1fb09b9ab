"""Back end, SQL: small constructors of sqlglot expressions, and what differs between dialects.

Everything the SQL compiler emits is a sqlglot expression tree, never text pasted together:
user text (criterion ids, fact names, choices, units) only ever enters as quoted identifiers and
string literals, which sqlglot escapes for each dialect.

sqlglot does not parenthesise a tree by operator precedence, so the arithmetic and logic
constructors here wrap compound operands in parentheses themselves.

`Dialect` holds the few things that differ between the SQL engines the compiler writes for:
how a boolean is a value (SQL Server has no boolean type: there a boolean is the integer 1, 0
or NULL, and a condition is ``x = 1``), how to take a timestamp apart, how to add calendar
months to a date, how to match a regular expression, how to sum in time order.
"""

from __future__ import annotations

from typing import Any, ClassVar

import sqlglot
from sqlglot import exp

Expr = exp.Expression

_ATOMS = (
    exp.Column,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Func,
    exp.Cast,
    exp.TryCast,
    exp.Case,
    exp.Identifier,
    exp.Star,
)


def paren(e: Expr) -> Expr:
    """`e`, in parentheses unless it is atomic (a column, a literal, a call, a CASE)."""
    if isinstance(e, _ATOMS) and not isinstance(e, exp.Binary | exp.Not | exp.Neg):
        return e
    return exp.Paren(this=e)


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted column reference (quoted: names keep their case and cannot be keywords)."""
    return exp.column(name, table=table, quoted=True)


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def num(value: float | int) -> Expr:
    """A numeric literal written so that every engine reads back the same double."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 2**53):
        text = str(int(value))
    else:
        text = repr(float(value))
    if text.startswith("-"):
        return exp.Neg(this=exp.Literal.number(text[1:]))
    return exp.Literal.number(text)


def double(value: float | int) -> Expr:
    """A literal typed DOUBLE: where no other operand gives the type (a CASE branch, COALESCE),
    a plain literal would be a DECIMAL or an INTEGER in some engines, with other arithmetic."""
    return exp.Cast(this=num(value), to=exp.DataType.build("DOUBLE"))


def to_double(e: Expr) -> Expr:
    return exp.Cast(this=e, to=exp.DataType.build("DOUBLE"))


def exact(value: float) -> Expr:
    """A numeric literal with an exponent: every engine reads it as exactly this DOUBLE (without
    one, Spark reads ``12.5`` as a DECIMAL)."""
    text_ = repr(float(value))
    if "e" not in text_ and "inf" not in text_ and "nan" not in text_:
        text_ += "e0"
    if text_.startswith("-"):
        return exp.Neg(this=exp.Literal.number(text_[1:]))
    return exp.Literal.number(text_)


def literal_value(e: Expr) -> float | None:
    """The number a numeric literal (typed DOUBLE or not, negated or not) stands for; None for
    anything else."""
    if isinstance(e, exp.Paren | exp.Neg) or (
        isinstance(e, exp.Cast) and e.to.this == exp.DataType.Type.DOUBLE
    ):
        inner = literal_value(e.this)
        if inner is None:
            return None
        return -inner if isinstance(e, exp.Neg) else inner
    if isinstance(e, exp.Literal) and e.is_number:
        return float(e.this)
    return None


def is_cheap(e: Expr) -> bool:
    """Whether `e` is as cheap to write twice as a column reference: a column, a literal, a
    typed NULL, a stored boolean read as a condition (``"x" = 1``)."""
    return sum(1 for _ in e.walk()) <= 4


def text(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def null() -> Expr:
    return exp.Null()


def add(a: Expr, b: Expr) -> Expr:
    return exp.Add(this=paren(a), expression=paren(b))


def sub(a: Expr, b: Expr) -> Expr:
    return exp.Sub(this=paren(a), expression=paren(b))


def mul(a: Expr, b: Expr) -> Expr:
    return exp.Mul(this=paren(a), expression=paren(b))


def div(a: Expr, b: Expr) -> Expr:
    """``a / b`` of doubles (never an integer division: the operands are doubles)."""
    return exp.Div(this=paren(a), expression=paren(b), typed=False, safe=False)


def neg(a: Expr) -> Expr:
    return exp.Neg(this=paren(a))


def floor(a: Expr) -> Expr:
    return exp.Floor(this=a)


def abs_(a: Expr) -> Expr:
    return exp.Abs(this=a)


def compare(op: str, a: Expr, b: Expr) -> Expr:
    cls = {"<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE, "=": exp.EQ, "!=": exp.NEQ}
    return cls[op](this=paren(a), expression=paren(b))


def and_(*parts: Expr) -> Expr:
    parts = tuple(p for p in parts if p is not None)
    if not parts:
        return exp.true()
    out = paren(parts[0])
    for p in parts[1:]:
        out = exp.And(this=out, expression=paren(p))
    return out


def or_(*parts: Expr) -> Expr:
    parts = tuple(p for p in parts if p is not None)
    if not parts:
        return exp.false()
    out = paren(parts[0])
    for p in parts[1:]:
        out = exp.Or(this=out, expression=paren(p))
    return out


def not_(a: Expr) -> Expr:
    return exp.Not(this=paren(a))


def is_null(a: Expr) -> Expr:
    return exp.Is(this=paren(a), expression=exp.Null())


def not_null(a: Expr) -> Expr:
    return exp.Not(this=is_null(a))


def case(*whens: tuple[Expr, Expr], default: Expr | None = None) -> Expr:
    """``CASE WHEN c1 THEN v1 … [ELSE default] END`` (NULL when no condition holds)."""
    ifs = [exp.If(this=c, true=v) for c, v in whens]
    return exp.Case(ifs=ifs, default=default)


def func(name: str, *args: Expr) -> Expr:
    """A call of a function by name, written as is in every dialect."""
    return exp.Anonymous(this=name, expressions=list(args))


def coalesce(*args: Expr) -> Expr:
    return exp.Coalesce(this=args[0], expressions=list(args[1:]))


def alias(e: Expr, name: str) -> Expr:
    return exp.alias_(e, ident(name))


def in_(a: Expr, items: list[Expr]) -> Expr:
    return exp.In(this=paren(a), expressions=items)


def sql_type(name: str) -> exp.DataType:
    return exp.DataType.build(name)


# --------------------------------------------------------------------------- dialects


class Dialect:
    """What the compiler needs that is written differently per SQL engine (the default is
    DuckDB's). A method returns None for what the engine cannot express; the compiler then
    refuses the construct with PR521."""

    name: ClassVar[str] = "duckdb"
    #: Whether booleans are values (False: SQL Server's bit encoding, see the module docstring).
    native_booleans: ClassVar[bool] = True
    #: Whether `sum` over a window adds in time order exactly as the interpreter does.
    ordered_sum: ClassVar[bool] = True
    #: ``WITH x AS NOT MATERIALIZED``: stages are pipelined rather than stored.
    not_materialized: ClassVar[bool] = True
    #: ``WITH x AS MATERIALIZED``: each stage computed once (measured fastest on DuckDB, where
    #: the window stages read a patients stage that the next stage reads too).
    materialized: ClassVar[bool] = False
    #: The type of text columns in CASTs.
    text_type: ClassVar[str] = "VARCHAR"
    #: Whether `render` writes a literal with a decimal point in exponent form (``0.5e0``):
    #: Spark reads ``0.5`` as a DECIMAL, and decimal arithmetic (a Java BigDecimal beyond 18
    #: digits) made its stages many times slower than the same arithmetic on doubles; every
    #: operand the compiler writes is a double (the values are the same: such a literal is
    #: always combined with a double, or with a whole number below 2**53).
    double_literals: ClassVar[bool] = False

    def sqlglot(self) -> str:
        return self.name

    # booleans ---------------------------------------------------------------

    def value(self, predicate: Expr) -> Expr:
        """A condition as a storable value (TRUE / FALSE / NULL)."""
        return predicate

    def predicate(self, value: Expr) -> Expr:
        """A stored boolean value as a condition."""
        return value

    def true(self) -> Expr:
        return exp.true()

    def false(self) -> Expr:
        return exp.false()

    def null_bool(self) -> Expr:
        return exp.Cast(this=exp.Null(), to=sql_type("BOOLEAN"))

    # text -------------------------------------------------------------------

    def regex(self, x: Expr, pattern: str) -> Expr | None:
        """Whether the whole of `x` matches `pattern` (RE2 syntax, anchored by the caller)."""
        return func("regexp_matches", x, text(pattern))

    def text_equal(self, a: Expr, b: Expr) -> Expr:
        return compare("=", a, b)

    def substring(self, x: Expr, start: int, length: int) -> Expr:
        return exp.Substring(
            this=x, start=exp.Literal.number(start), length=exp.Literal.number(length)
        )

    def length(self, x: Expr) -> Expr:
        return exp.Length(this=x)

    def substring_end(self, x: Expr, from_end: int, length: int | None = None) -> Expr:
        """The `length` characters starting `from_end` characters before the end of `x`."""
        start = add(sub(self.length(x), num(from_end)), num(1))
        return exp.Substring(this=x, start=start, length=exp.Literal.number(length or from_end))

    # time -------------------------------------------------------------------

    def epoch_micros(self, timestamp: Expr) -> Expr | None:
        """Microseconds since 1970-01-01T00:00Z of a TIMESTAMP (naive: UTC) or TIMESTAMPTZ."""
        return func("epoch_us", timestamp)

    def epoch_days(self, date: Expr) -> Expr | None:
        """Days since 1970-01-01 of a DATE."""
        return sub(date, exp.Cast(this=text("1970-01-01"), to=sql_type("DATE")))

    def add_months_days(self, days: Expr, months: int) -> Expr | None:
        """The day number (since 1970-01-01) `months` calendar months after day `days`, the
        day of the month clamped to the month's end (`calendar.shift`)."""
        epoch = exp.Cast(this=text("1970-01-01"), to=sql_type("DATE"))
        day = exp.Add(this=epoch, expression=paren(exp.Cast(this=days, to=sql_type("INTEGER"))))
        moved = exp.Add(
            this=paren(day),
            expression=exp.Interval(this=exp.Literal.number(months), unit=exp.var("MONTH")),
        )
        return sub(exp.Cast(this=paren(moved), to=sql_type("DATE")), epoch)

    # aggregates -------------------------------------------------------------

    def ordered_sum_of(self, value: Expr, order: list[Expr], where: Expr) -> Expr | None:
        """The sum of `value` over the rows of a group where `where` holds, added left to right
        in `order` (None: not expressible; the compiler then uses a running window sum)."""
        ordered: Expr = exp.ArrayAgg(
            this=exp.Order(this=value, expressions=[exp.Ordered(this=o) for o in order])
        )
        ordered = exp.Filter(this=ordered, expression=exp.Where(this=where))  # list() keeps NULLs
        a, b = exp.to_identifier("a"), exp.to_identifier("b")
        reducer = exp.Lambda(this=add(exp.column("a"), exp.column("b")), expressions=[a, b])
        return func("list_reduce", ordered, reducer)

    def describe(self) -> str:
        return self.name


class DuckDB(Dialect):
    name = "duckdb"
    not_materialized = False
    materialized = True

    def regex(self, x: Expr, pattern: str) -> Expr | None:
        return func("regexp_full_match", x, text(pattern))


class Spark(Dialect):
    name = "spark"
    not_materialized = False
    double_literals = True
    text_type = "STRING"

    def regex(self, x: Expr, pattern: str) -> Expr | None:
        return exp.RegexpLike(this=x, expression=text(pattern))

    def epoch_micros(self, timestamp: Expr) -> Expr | None:
        return func("unix_micros", exp.Cast(this=timestamp, to=sql_type("TIMESTAMP")))

    def epoch_days(self, date: Expr) -> Expr | None:
        return func("unix_date", date)

    def add_months_days(self, days: Expr, months: int) -> Expr | None:
        date = func("date_from_unix_date", exp.Cast(this=days, to=sql_type("INT")))
        return func("unix_date", func("add_months", date, exp.Literal.number(months)))

    def ordered_sum_of(self, value: Expr, order: list[Expr], where: Expr) -> Expr | None:
        # sort the (order..., value) structs of the rows where `where` holds (a NULL struct is
        # not collected), then add their values left to right
        fields = [*order, value]
        names = [f"k{i}" for i in range(len(order))] + ["v"]
        struct = func(
            "named_struct", *[p for n, f in zip(names, fields, strict=True) for p in (text(n), f)]
        )
        ordered = func("array_sort", func("collect_list", case((where, struct))))
        acc, x = exp.to_identifier("acc"), exp.to_identifier("x")
        step = exp.Lambda(
            this=add(
                exp.column("acc"), exp.Dot(this=exp.column("x"), expression=exp.to_identifier("v"))
            ),
            expressions=[acc, x],
        )
        return func("aggregate", ordered, double(0), step)


class Postgres(Dialect):
    name = "postgres"
    text_type = "TEXT"

    def regex(self, x: Expr, pattern: str) -> Expr | None:
        return exp.RegexpLike(this=x, expression=text(pattern))

    def epoch_micros(self, timestamp: Expr) -> Expr | None:
        seconds = exp.Extract(this=exp.var("EPOCH"), expression=timestamp)
        return exp.Cast(this=exp.Round(this=mul(seconds, num(1_000_000))), to=sql_type("BIGINT"))

    def add_months_days(self, days: Expr, months: int) -> Expr | None:
        epoch = exp.Cast(this=text("1970-01-01"), to=sql_type("DATE"))
        day = exp.Add(this=epoch, expression=paren(exp.Cast(this=days, to=sql_type("INTEGER"))))
        interval = exp.Interval(this=text(f"{months} month"))
        moved = exp.Cast(this=exp.Add(this=paren(day), expression=interval), to=sql_type("DATE"))
        return sub(moved, epoch)

    def ordered_sum_of(self, value: Expr, order: list[Expr], where: Expr) -> Expr | None:
        return None


class BigQuery(Dialect):
    name = "bigquery"
    ordered_sum = False
    not_materialized = False
    text_type = "STRING"

    def regex(self, x: Expr, pattern: str) -> Expr | None:
        return exp.RegexpLike(this=x, expression=text(pattern))

    def epoch_micros(self, timestamp: Expr) -> Expr | None:
        return func("UNIX_MICROS", exp.Cast(this=timestamp, to=sql_type("TIMESTAMP")))

    def epoch_days(self, date: Expr) -> Expr | None:
        return func("UNIX_DATE", date)

    def add_months_days(self, days: Expr, months: int) -> Expr | None:
        date = func("DATE_FROM_UNIX_DATE", exp.Cast(this=days, to=sql_type("BIGINT")))
        interval = exp.Interval(this=exp.Literal.number(months), unit=exp.var("MONTH"))
        return func("UNIX_DATE", func("DATE_ADD", date, interval))

    def ordered_sum_of(self, value: Expr, order: list[Expr], where: Expr) -> Expr | None:
        return None


class Snowflake(Dialect):
    name = "snowflake"
    ordered_sum = False
    not_materialized = False

    def regex(self, x: Expr, pattern: str) -> Expr | None:
        return func("REGEXP_LIKE", x, text(pattern))

    def epoch_micros(self, timestamp: Expr) -> Expr | None:
        return func("DATE_PART", exp.var("EPOCH_MICROSECOND"), timestamp)

    def epoch_days(self, date: Expr) -> Expr | None:
        epoch = exp.Cast(this=text("1970-01-01"), to=sql_type("DATE"))
        return func("DATEDIFF", exp.var("DAY"), epoch, date)

    def add_months_days(self, days: Expr, months: int) -> Expr | None:
        epoch = exp.Cast(this=text("1970-01-01"), to=sql_type("DATE"))
        date = func("DATEADD", exp.var("DAY"), exp.Cast(this=days, to=sql_type("BIGINT")), epoch)
        moved = func("DATEADD", exp.var("MONTH"), exp.Literal.number(months), date)
        return func("DATEDIFF", exp.var("DAY"), epoch, moved)

    def ordered_sum_of(self, value: Expr, order: list[Expr], where: Expr) -> Expr | None:
        return None


class TSQL(Dialect):
    """SQL Server: booleans are the integers 1 / 0 / NULL; no regular expressions (text numbers
    and dates are checked with LIKE patterns)."""

    name = "tsql"
    native_booleans = False
    ordered_sum = False
    not_materialized = False
    text_type = "NVARCHAR(MAX)"

    def value(self, predicate: Expr) -> Expr:
        if isinstance(predicate, exp.EQ) and isinstance(predicate.expression, exp.Literal):
            inner = predicate.this
            if predicate.expression.this == "1" and isinstance(inner, exp.Column):
                return inner  # a stored value read as a condition, stored back
        return case((predicate, num(1)), (not_(predicate), num(0)))

    def predicate(self, value: Expr) -> Expr:
        return compare("=", value, num(1))

    def true(self) -> Expr:
        return compare("=", num(1), num(1))

    def false(self) -> Expr:
        return compare("=", num(1), num(0))

    def null_bool(self) -> Expr:
        return exp.Cast(this=exp.Null(), to=sql_type("INT"))

    def regex(self, x: Expr, pattern: str) -> Expr | None:
        return None

    def text_equal(self, a: Expr, b: Expr) -> Expr:
        collated = exp.Collate(this=paren(a), expression=exp.var("Latin1_General_BIN2"))
        return exp.EQ(this=collated, expression=paren(b))

    def length(self, x: Expr) -> Expr:
        return func("LEN", x)

    def epoch_micros(self, timestamp: Expr) -> Expr | None:
        epoch = exp.Cast(
            this=text("1970-01-01"), to=exp.DataType.build("DATETIME2", dialect="tsql")
        )
        return func("DATEDIFF_BIG", exp.var("MICROSECOND"), epoch, timestamp)

    def epoch_days(self, date: Expr) -> Expr | None:
        epoch = exp.Cast(this=text("1970-01-01"), to=sql_type("DATE"))
        return func("DATEDIFF", exp.var("DAY"), epoch, date)

    def add_months_days(self, days: Expr, months: int) -> Expr | None:
        epoch = exp.Cast(this=text("1970-01-01"), to=sql_type("DATE"))
        date = func("DATEADD", exp.var("DAY"), exp.Cast(this=days, to=sql_type("INT")), epoch)
        moved = func("DATEADD", exp.var("MONTH"), exp.Literal.number(months), date)
        return func("DATEDIFF", exp.var("DAY"), epoch, moved)

    def ordered_sum_of(self, value: Expr, order: list[Expr], where: Expr) -> Expr | None:
        return None


#: The dialects `compile_sql` writes, by name.
DIALECTS: dict[str, type[Dialect]] = {
    "duckdb": DuckDB,
    "spark": Spark,
    "postgres": Postgres,
    "bigquery": BigQuery,
    "snowflake": Snowflake,
    "tsql": TSQL,
}


def render(tree: Expr, dialect: Dialect, pretty: bool = True) -> str:
    """The SQL text of `tree` in `dialect`."""
    if dialect.double_literals:
        tree = tree.transform(_exponent_form)
    return tree.sql(
        dialect=dialect.sqlglot(), pretty=pretty, unsupported_level=sqlglot.ErrorLevel.RAISE
    )


def parse(text_: str, dialect: Dialect) -> Any:
    return sqlglot.parse_one(text_, read=dialect.sqlglot())


def _exponent_form(node: exp.Expression) -> exp.Expression:
    """A number literal with a decimal point and no exponent, written with one (a DOUBLE)."""
    if isinstance(node, exp.Literal) and node.is_number:
        text_ = node.this
        if "." in text_ and "e" not in text_.lower():
            return exp.Literal.number(text_ + "e0")
    return node
