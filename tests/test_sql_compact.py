"""The SQL says each computation once, and what it decides when compiling is what the engine
would have decided: overflow tests of an operation with a literal are one bound, exact to the
last double, and a value read many times is a column read many times."""

from __future__ import annotations

import math
from typing import Any

import pytest

pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

from protocol_rules import parse_protocol
from protocol_rules.engines.sql import compile_sql

from .test_screening import with_ids
from .test_screening_calculation import CALC
from .test_sql import assert_agree

EDGES = """protocol EDGES
fact x: number
fact q: quantity 'mg/dL'
inclusion M "x times a literal": x * 1e200 > 0
inclusion N "a literal times x": 0.001 * x > 0
inclusion D "x divided by a literal": x / 0.000001 > 0
inclusion O "x divided by one": x / 1 > 0
inclusion Q "a quantity divided by a quantity": q / 1 'g/L' > 0
inclusion S "a scaled sum": (q + 1 'g/L') / 2 > 0 'mg/dL'
inclusion P "x times x": x * x * 1e-300 > 0
inclusion Z "x times zero": x * 0 >= 0 and -x * -2 < 1e300
"""


def _around(bound: float, steps: int = 3) -> list[float]:
    """`bound` and its neighbouring doubles, both signs."""
    out, up, down = [bound], bound, bound
    for _ in range(steps):
        up, down = math.nextafter(up, math.inf), math.nextafter(down, 0)
        out += [up, down]
    return out + [-v for v in out]


def test_overflow_at_the_last_double_is_unknown_as_in_evaluate() -> None:
    """Each operation with a literal, at the doubles where its result passes 1e300."""
    protocol = parse_protocol(EDGES)
    values: list[Any] = [0.0, 5e-324, 1.0, 2.5, None]
    for bound in (1e100, 1e303, 1e294, 1e300, 1e302, 2e300, 1e150):
        values += _around(bound)
    records = [{"x": v, "q": v} if v is not None else {} for v in values]
    assert_agree(protocol, with_ids(records))


def test_the_calculation_protocol_says_each_computation_once() -> None:
    """Operands of overflow tests, function arguments and what the missing facts read are
    columns: the query was 338,000 characters with columns of 18,000, the missing facts
    repeating each criterion's whole expression."""
    query = compile_sql(parse_protocol(CALC).checked, "spark")
    text = query.sql()
    assert len(text) < 120_000
    columns = {
        e.alias_or_name: e.sql(dialect="spark")
        for cte in query.tree.args["with_"].expressions
        for e in cte.this.expressions
    }
    layout = {"problem", "obs_problem"}  # the record's checks, one test per fact
    assert max(len(sql) for name, sql in columns.items() if name not in layout) < 2_000
    assert "`CRCL`" in columns["creatinine_missing"]  # reads the criterion's column
    assert "/ CAST(1 AS DOUBLE)" not in text  # `x / 1 'mg/dL'` is x, tested once
