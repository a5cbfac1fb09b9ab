"""The protocol's SQL in Spark's dialect, run on a local Spark session, against the interpreter.

Every Spark test shares the one session of the `spark` fixture (tests/conftest.py); the tests
skip when pyspark or Java is missing, and CI installs both. Spark plans the query slowly (a
long chain of stages over hundreds of columns), so these tests screen a few hundred patients:
the thousands are screened on DuckDB (test_sql.py), from the same compiler.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("sqlglot")

from protocol_rules import parse_protocol
from protocol_rules.engines.spark import compile_protocol
from protocol_rules.sources import read

from .test_screening import KLEENE, drawn, expected, with_ids

pytestmark = pytest.mark.spark


def assert_agree_on_spark(protocol: Any, records: list[dict[str, Any]], spark: Any) -> None:
    """Run the Spark engine on `spark` and compare every row with `evaluate`."""
    from protocol_rules.screening import Screening

    population = read(with_ids(records), protocol, None)
    compiled = compile_protocol(protocol.checked)
    raw = compiled.run(population, spark)
    frame = Screening(protocol, population, raw, None, "spark", compiled).frame
    assert frame.height == len(records)
    wrong = []
    for row, record in enumerate(records):
        got = frame.row(row, named=True)
        status = got["status"]
        outcomes = None if status == "error" else {c.id: got[c.id] for c in protocol.criteria}
        mine = (status, outcomes, tuple(got["missing_facts"]), got["error_code"])
        want = expected(protocol, record)[:4]
        if mine != want:
            wrong.append((row, want, mine))
    assert not wrong, f"{len(wrong)} of {len(records)} rows disagree, first: {wrong[0]}"


def test_nct04194671_agrees_with_evaluate_on_spark(nct: Any, spark: Any) -> None:
    assert_agree_on_spark(nct, drawn(nct, 100), spark)


def test_kleene_edge_cases_agree_on_spark(spark: Any) -> None:
    protocol = parse_protocol(KLEENE)
    values = [True, False, None]
    records = [
        {"a": a, "b": b, "c": c, "x": x, "y": y}
        for a in values
        for b in values
        for c in values
        for x in (None, 0, 1)
        for y in (None, 0.5, 2)
    ]
    assert_agree_on_spark(protocol, records, spark)
