"""The protocol's SQL in Spark's dialect, run on a local Spark session, against the interpreter.

Every Spark test shares the one session of the `spark` fixture (tests/conftest.py); the tests
skip when pyspark or Java is missing, and CI installs both. Spark's cost is per query, not per
patient (it plans and compiles each stage of the query, then runs it on a few thousand rows in
no time), so each protocol is ONE Spark run over thousands of patients:

- NCT04194671: more than 5,000 patients drawn from `protocol_rules.testing` and recombined
  (unknowns, unit variety, window edges), plus one malformed record of each kind;
- the Kleene edge cases (every combination of true, false, unknown and the numbers' edges);
- the calculation protocol (`if`, `unknown`, `first_known`, `^`, math functions, the kidney
  library): its grid of knots plus drawn and recombined patients, more than 5,000;
- the second edition's windows (anchored windows, `from … to`, computed lengths, `where` with
  `value`, nested and defined filters, `consecutive`, `first_time`/`last_time`, date or never,
  `if`/`then`/`else`): more than 5,000 drawn and recombined patients, and the edge records of
  tests/test_screening_windows.py's `RULES`, run as one protocol;
- a fixed handful of random protocols (`testing.protocols`, derandomized), each one run.

Every row must agree with `evaluate`: status, every criterion outcome, missing facts, the
error code of a malformed record.

Measured (``pytest -p no:cacheprovider --durations=0 tests/test_sql_spark.py``) on the 2-core
machine shared with other jobs (load about 5): about 3 minutes, session start included — session
17 s, NCT04194671 41 s, the calculations 39 s, the second edition 50 s, window edges 12 s,
Kleene 2 s, a random protocol 8-70 s.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

pytest.importorskip("sqlglot")

from protocol_rules import ProtocolError, parse_protocol
from protocol_rules.engines import ScreeningError
from protocol_rules.engines.spark import compile_protocol
from protocol_rules.sources import read
from protocol_rules.testing import protocols

from .test_screening import (
    KLEENE,
    drawn,
    draws,
    expected,
    kleene_records,
    malformed,
    recombined,
    with_ids,
)
from .test_screening_calculation import CALC, grid
from .test_screening_windows import AS_OF, EDITION2, RICH, RULES, series

pytestmark = pytest.mark.spark

#: Patients per protocol (drawn by Hypothesis, then recombined fact by fact to this many).
PATIENTS = 5000
POOL = 250
RANDOM = 1  # random protocols, each one Spark run of 1,000 patients (30-70 s each)
REFUSALS = {"PR520", "PR521", "PR522"}


def assert_agree_on_spark(protocol: Any, records: list[dict[str, Any]], spark: Any) -> None:
    """Run the Spark engine once over every record and compare each row with `evaluate`."""
    from protocol_rules.screening import Screening

    population = read(with_ids(records), protocol, None)
    compiled = compile_protocol(protocol.checked)
    raw = compiled.run(population, spark)
    frame = Screening(protocol, population, raw, None, "spark", compiled).frame
    assert frame.height == len(records), "rows in = rows out"
    ids = [c.id for c in protocol.criteria]
    wrong = []
    for row, (record, got) in enumerate(zip(records, frame.iter_rows(named=True), strict=True)):
        status = got["status"]
        outcomes = None if status == "error" else {i: got[i] for i in ids}
        mine = (status, outcomes, tuple(got["missing_facts"]), got["error_code"])
        want = expected(protocol, record)[:4]
        if mine != want:
            wrong.append((row, want, mine, record))
    shown = "\n".join(
        f"row {r}:\n  evaluate {w}\n  spark    {g}\n  record   {rec}" for r, w, g, rec in wrong[:3]
    )
    assert not wrong, f"{len(wrong)} of {len(records)} rows disagree:\n{shown}"


def many(protocol: Any, first: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """`first`, then `POOL` drawn patients, then their recombinations: `PATIENTS` or more."""
    pool = drawn(protocol, POOL)
    records = first + pool
    return records + recombined(protocol, pool, max(PATIENTS - len(records), 0), seed=seed)


# --------------------------------------------------------------------------- shipped protocol


def test_nct04194671_agrees_with_evaluate_on_spark(nct: Any, spark: Any) -> None:
    bad = [{"as_of": "2026-03-01T08:00:00Z", **record} for record in malformed()]
    records = many(nct, bad, seed=13)
    assert len(records) >= PATIENTS
    assert_agree_on_spark(nct, records, spark)


def test_the_users_views_are_left_alone(nct: Any, spark: Any) -> None:
    """The session is the caller's: the engine's views have names of their own, so a user's
    views called ``patients`` or ``unit_conversions`` are neither replaced nor dropped."""
    mine = ("patients", "observations", "unit_conversions")
    for name in mine:
        spark.sql(f"SELECT '{name}' AS mine").createOrReplaceTempView(name)
    try:
        assert_agree_on_spark(nct, drawn(nct, 20), spark)
        for name in mine:
            assert spark.table(name).collect()[0]["mine"] == name
    finally:
        for name in mine:
            spark.catalog.dropTempView(name)


def test_a_result_larger_than_the_drivers_limit_comes_in_slices(
    nct: Any, spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spark refuses to send the driver more than ``spark.driver.maxResultSize`` at once (1 GB
    by default: ten million patients' results are about 2 GB); the result then comes in
    slices, each well under the limit, and reads the same."""
    import protocol_rules.engines.spark as engine

    slices = []
    real = engine.collect

    def counted(session: Any, frame: Any) -> Any:
        out = real(session, frame)
        slices.append(out.height)
        return out

    monkeypatch.setattr(engine, "result_limit", lambda session: 50_000)
    monkeypatch.setattr(engine, "collect", counted)
    seen = []
    filter_ = type(spark.range(1)).filter

    def spy(self: Any, condition: Any) -> Any:
        seen.append(condition)
        return filter_(self, condition)

    monkeypatch.setattr(type(spark.range(1)), "filter", spy)
    assert_agree_on_spark(nct, drawn(nct, 300), spark)
    assert slices == [300] and len(seen) > 1


# --------------------------------------------------------------------------- Kleene edges


def test_kleene_edge_cases_agree_on_spark(spark: Any) -> None:
    protocol = parse_protocol(KLEENE)
    records = kleene_records()
    assert_agree_on_spark(protocol, records, spark)


# --------------------------------------------------------------------------- calculations


def test_calculations_agree_on_spark(spark: Any) -> None:
    """`if`, `unknown`, `first_known`, `^`, math functions and the kidney library."""
    protocol = parse_protocol(CALC)
    records = many(protocol, grid(), seed=14)
    assert len(records) >= PATIENTS
    assert_agree_on_spark(protocol, records, spark)


# --------------------------------------------------------------------------- second edition


def test_second_edition_windows_agree_on_spark(spark: Any) -> None:
    protocol = parse_protocol(EDITION2)
    records = many(protocol, [], seed=15)
    assert len(records) >= PATIENTS
    assert_agree_on_spark(protocol, records, spark)


def edges() -> list[dict[str, Any]]:
    """The window edges of tests/test_screening_windows.py: a date end covers its day, a
    never bound, `time_since` of never, runs broken or unknown."""
    edge = [{"at": "2026-03-05T23:59:59Z", "value": 1}, {"at": "2026-03-04T00:00:00Z", "value": 1}]
    records: list[dict[str, Any]] = [
        {"as_of": AS_OF, "s": edge, "d": "2026-03-05", "t": "2026-03-04T00:00:00Z", "x": 2},
        {"as_of": AS_OF, "s": edge, "d": "2026-03-04", "t": "2026-03-04T00:00:01Z", "x": 2},
        {"as_of": AS_OF, "s": edge, "d": "never", "t": AS_OF, "x": 2},
        {"as_of": AS_OF, "s": edge, "t": AS_OF, "x": 2},
        {"as_of": AS_OF, "s": [], "d": "never", "t": AS_OF, "x": 2},
    ]
    for values in ((14, 13), (14, 16, 13), (), (14, 13, 12, 16, 11)):
        for x in (15, None):
            record = {"as_of": AS_OF, "s": series(*values), "d": "2026-03-05", "t": AS_OF}
            records.append(record if x is None else {**record, "x": x})
    return records


def test_window_edges_agree_on_spark(spark: Any) -> None:
    protocol = parse_protocol(RULES)
    records = many(protocol, edges(), seed=16)
    assert len(records) >= PATIENTS
    assert_agree_on_spark(protocol, records, spark)


# --------------------------------------------------------------------------- random protocols


@functools.cache
def random_protocols(n: int) -> list[str]:
    """The first `n` protocols over facts of every kind that `testing.protocols` draws,
    derandomized (the same every run)."""
    return draws(protocols(RICH, max_criteria=4), n)


@pytest.mark.parametrize("number", range(RANDOM))
def test_random_protocols_agree_or_are_refused_on_spark(number: int, spark: Any) -> None:
    text = random_protocols(RANDOM)[number]
    try:
        protocol = parse_protocol(text)
    except ProtocolError:
        return
    try:
        compile_protocol(protocol.checked)
    except ScreeningError as exc:  # a construct the SQL compiler refuses, as it says
        assert {d.code for d in exc.diagnostics} <= REFUSALS
        return
    records = drawn(protocol, 1000, absent=0.25)
    assert_agree_on_spark(protocol, records, spark)
