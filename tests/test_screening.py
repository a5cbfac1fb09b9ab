"""Screening on polars against the interpreter: the same status, outcomes and missing facts.

The interpreter (`Protocol.evaluate`) is the reference. Every shipped protocol is screened on
more than 10,000 patients drawn from the project's strategies (`protocol_rules.testing`) —
through records and through the columnar layout — and every row must agree with `evaluate`;
so must random protocols from `testing.protocols()`. Malformed rows get the diagnostic
`evaluate` raises and never stop a screen.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from protocol_rules import PatientDataError, ProtocolError, load_protocol, parse_protocol
from protocol_rules.engines import ScreeningError
from protocol_rules.engines.polars import compile_protocol
from protocol_rules.sources import Layout, to_layout, write_layout
from protocol_rules.testing import patients, protocols

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = sorted((ROOT / "protocols").glob("*.rules"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from patients import generate  # noqa: E402

CI = settings().max_examples >= 300
DRAWN = 1000 if CI else 250  # patients drawn by Hypothesis per protocol
MIXED = 20_000 if CI else 10_000  # patients recombined from them, fact by fact


# --------------------------------------------------------------------------- helpers


def draws(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """The first `n` values `strategy` draws, derandomized: the same every run (and, since
    conftest imports every module, whatever tests ran before)."""
    found: list[Any] = []

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


def drawn(protocol: Any, n: int, **options: Any) -> list[dict[str, Any]]:
    """`n` patients from `patients(protocol, **options)`, derandomized (the same every run)."""
    return draws(patients(protocol, **options), n)


def recombined(protocol: Any, pool: list[dict[str, Any]], n: int, seed: int) -> list[Any]:
    """`n` patients whose facts each come from a patient of `pool` (absences included).

    Time-related facts (series, dates) come with their patient's `as_of`, so window edges
    and `time_since` boundaries drawn by the strategy stay where they were drawn.
    """
    rng = random.Random(seed)
    timed = {f.name for f in protocol.facts if "Series" in type(f.type).__name__}
    timed |= {f.name for f in protocol.facts if "TimeT" in type(f.type).__name__}
    out = []
    for _ in range(n):
        base = rng.choice(pool)
        patient = {"as_of": base["as_of"]}
        for fact in protocol.facts:
            source = base if fact.name in timed else rng.choice(pool)
            if fact.name in source:
                patient[fact.name] = source[fact.name]
        out.append(patient)
    return out


def expected(protocol: Any, record: dict[str, Any]) -> tuple[Any, ...]:
    """What `evaluate` says of a record: (status, outcomes, missing facts, error code, message)."""
    record = {k: v for k, v in record.items() if k != "id"}
    try:
        result = protocol.evaluate(record)
    except PatientDataError as exc:
        first = exc.diagnostics[0]
        return ("error", None, (), first.code, first.message)
    outcomes = {c.id: c.outcome.value for c in result.criteria}
    missing = tuple(m.name for m in result.missing_facts)
    return (result.status.value, outcomes, missing, None, None)


def screened(protocol: Any, frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    """Each row of a screening's frame in the shape of `expected`."""
    ids = [c.id for c in protocol.criteria]
    columns = {name: frame.get_column(name).cast(pl.String).to_list() for name in ids}
    statuses = frame.get_column("status").cast(pl.String).to_list()
    missing = frame.get_column("missing_facts").to_list()
    codes = frame.get_column("error_code").to_list()
    messages = frame.get_column("error_message").to_list()
    return [
        (
            status,
            None if status == "error" else {i: columns[i][row] for i in ids},
            tuple(missing[row]),
            codes[row],
            messages[row],
        )
        for row, status in enumerate(statuses)
    ]


def assert_agree(
    protocol: Any,
    records: list[dict[str, Any]],
    data: Any = None,
    want: list[tuple[Any, ...]] | None = None,
) -> None:
    """Screen `data` (default: the records) and compare every row with `evaluate` (`want`:
    what it says of each record, if already known)."""
    screening = protocol.screen(records if data is None else data)
    frame = screening.frame
    assert frame.height == len(records), "rows in = rows out"
    if want is None:
        want = [expected(protocol, record) for record in records]
    got = screened(protocol, frame)
    wrong = [
        (row, w, g, record)
        for row, (w, g, record) in enumerate(zip(want, got, records, strict=True))
        if w != g
    ]
    shown = "\n".join(
        f"row {r}:\n  evaluate {w}\n  screen   {g}\n  record   {json.dumps(rec)}"
        for r, w, g, rec in wrong[:3]
    )
    assert not wrong, f"{len(wrong)} of {len(records)} rows disagree:\n{shown}"


def with_ids(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": i, **r} for i, r in enumerate(records)]


# --------------------------------------------------------------------------- differential


Population = tuple[Any, list[dict[str, Any]], list[tuple[Any, ...]]]


@pytest.fixture(scope="module", params=PROTOCOLS, ids=lambda p: p.name)
def population(request: pytest.FixtureRequest) -> Population:
    """(protocol, records, what `evaluate` says of each): evaluated once for every test."""
    protocol = load_protocol(request.param)
    pool = drawn(protocol, DRAWN)
    records = pool + recombined(protocol, pool, MIXED, seed=12)
    return protocol, records, [expected(protocol, record) for record in records]


def test_records_agree_with_evaluate(population: Population) -> None:
    protocol, records, want = population
    assert len(records) >= 10_000
    assert_agree(protocol, with_ids(records), want=want)


def test_layout_agrees_with_evaluate(population: Population) -> None:
    protocol, records, want = population
    assert_agree(protocol, records, to_layout(with_ids(records)), want=want)


def test_parquet_and_csv_files_agree(population: Population, tmp_path: Path) -> None:
    protocol, records, want = population
    sample = records[:2000]
    layout = to_layout(with_ids(sample))
    for fmt in ("parquet", "csv"):
        write_layout(layout, str(tmp_path / fmt), fmt)
        assert_agree(protocol, sample, str(tmp_path / fmt), want=want[:2000])


def test_benchmark_patients_agree(nct: Any) -> None:
    """Realistic records: lab units, UTC offsets, values on boundaries, results after as_of."""
    records = generate(3000, seed=7)
    assert_agree(nct, with_ids(records))
    assert_agree(nct, records, to_layout(with_ids(records)))


@settings(max_examples=20 if CI else 6, suppress_health_check=list(HealthCheck), deadline=None)
@given(protocols(), st.data())
def test_random_protocols_agree(text: str, data: st.DataObject) -> None:
    try:
        protocol = parse_protocol(text)
    except ProtocolError:
        return
    compile_protocol(protocol.checked)  # every construct is screened: a PR503 is a failure
    records = [data.draw(patients(protocol, absent=0.3)) for _ in range(12)]
    assert_agree(protocol, with_ids(records))
    assert_agree(protocol, records, to_layout(with_ids(records)))


# --------------------------------------------------------------------------- Kleene edges

KLEENE = """\
protocol K
fact a: boolean
fact b: boolean
fact c: boolean
fact x: number
fact y: number
inclusion AND "and": a and b
inclusion OR "or": a or b
inclusion NOT "not": not a
inclusion CMP "compare": x < y
inclusion BTW "between": x between 1 and y
inclusion LEAST "at least": at least 2 of (a, b, c)
inclusion MOST "at most": at most 1 of (a, b, c)
inclusion KNOWN "known": x is known and y is unknown
inclusion DIV "division": x / y > 1
"""


def kleene_records() -> list[dict[str, Any]]:
    """Every combination of true, false and unknown for `KLEENE`'s booleans, and of its
    numbers' edges (unknown, zero, between, one, above)."""
    values = [True, False, None]
    numbers = [None, 0, 0.5, 1, 2]
    return [
        {"a": a, "b": b, "c": c, "x": x, "y": y}
        for a in values
        for b in values
        for c in values
        for x in numbers
        for y in numbers
    ]


def test_kleene_edge_cases_agree_with_evaluate() -> None:
    protocol = parse_protocol(KLEENE)
    records = kleene_records()
    assert_agree(protocol, with_ids(records))
    assert_agree(protocol, records, to_layout(with_ids(records)))


# --------------------------------------------------------------------------- malformed rows


def malformed() -> list[Any]:
    """Bad records of every kind `evaluate` refuses, one code each."""
    stamp = "2026-03-01T08:00:00Z"
    return [
        {"age": "fifty"},  # PR403
        {"age": math.nan},  # PR404
        {"lvef": 150},  # PR405
        {"platelet_count": {"value": 20, "unit": "furlongs"}},  # PR406
        {"as_of": "yesterday"},  # PR407
        {"serum_creatinine": [{"value": 1.2}]},  # PR408
        {"aki_cause": "flu"},  # PR409
        {"agee": 54},  # PR402
        {"prednisone_equivalent_dose": [{"value": 5, "unit": "mg/d", "at": stamp, "x": 1}]},
        {"immunosuppression_last_change": "2026-02-30"},  # PR407
    ]


def test_one_percent_malformed_rows(nct: Any, tmp_path: Path) -> None:
    good = generate(990, seed=3)
    bad = malformed()
    records: list[Any] = list(good)
    spots = sorted(random.Random(5).sample(range(1000), len(bad)))
    for spot, record in zip(spots, bad, strict=True):
        records.insert(spot, {"as_of": "2026-03-01T08:00:00Z", **record})
    path = tmp_path / "population.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    screening = nct.screen(str(path))
    frame = screening.frame
    assert frame.height == len(records)
    errors = frame.filter(pl.col("status") == "error")
    assert errors.get_column("patient_id").to_list() == [s + 1 for s in spots]
    rows = screened(nct, frame)
    for spot in spots:
        assert rows[spot] == expected(nct, records[spot])
    assert set(screening.errors().get_column("patient_id")) == {s + 1 for s in spots}
    ok = [r for i, r in enumerate(records) if i not in spots]
    assert (frame.filter(pl.col("status") != "error").height) == len(ok)


def test_malformed_cells_in_the_layout(nct: Any, tmp_path: Path) -> None:
    """Bad cells of a CSV layout: each row gets the diagnostic `evaluate` gives its record."""
    records = generate(200, seed=4)
    for i, record in enumerate(malformed()):
        if "agee" in record or "as_of" in record:
            continue  # an unknown column refuses the whole file (PR510); as_of is tested above
        records[i * 10] = {**records[i * 10], **record}
    write_layout(to_layout(with_ids(records)), str(tmp_path), "csv")
    screening = nct.screen(str(tmp_path))
    frame = screening.frame
    errors = frame.filter(pl.col("status") == "error")
    assert errors.height >= 7
    for pid in errors.get_column("patient_id").to_list():
        with pytest.raises(PatientDataError) as caught:
            nct.evaluate(screening.record(pid))
        got = frame.row(screening.row(pid), named=True)
        assert (got["error_code"], got["error_message"]) == (
            caught.value.diagnostics[0].code,
            caught.value.diagnostics[0].message,
        )


def test_a_line_that_is_not_json(nct: Any, tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "A", "age": 40}\n{not json\n{"id": "C", "age": 70}\n', "utf-8")
    frame = nct.screen(str(path), as_of="2026-03-01").frame
    assert frame.get_column("status").to_list()[1] == "error"
    assert frame.get_column("error_code").to_list() == [None, "PR401", None]


# --------------------------------------------------------------------------- layout errors


def test_layout_refusals_have_codes(nct: Any) -> None:
    wide = pl.DataFrame({"patient_id": [1, 2], "age": [40, 50]})
    cases = {
        "PR509": Layout(pl.DataFrame({"age": [40]})),
        "PR510": Layout(wide.with_columns(pl.lit(1).alias("agee"))),
        "PR511": Layout(wide.with_columns(pl.lit(1.0).alias("serum_creatinine"))),
        "PR512": Layout(pl.DataFrame({"patient_id": [1, 1], "age": [40, 50]})),
        "PR513": Layout(
            wide,
            pl.DataFrame(
                {"patient_id": [3], "fact": ["urine_output"], "at": ["2026-03-01"], "value": [1.0]}
            ),
        ),
    }
    for code, layout in cases.items():
        with pytest.raises(ScreeningError) as caught:
            nct.screen(layout, as_of="2026-03-01")
        assert caught.value.diagnostics[0].code == code


def test_unsupported_construct_is_refused_at_compile_time(nct: Any) -> None:
    import attrs

    from protocol_rules.engines.polars import compile_protocol

    class Novel:  # a node of a later edition the engine does not know
        def __init__(self, source: Any) -> None:
            self.source = source
            self.type = None

    body = nct.checked.criteria[1].body
    criterion = attrs.evolve(nct.checked.criteria[1], body=Novel(body.source))
    checked = attrs.evolve(nct.checked, criteria=(criterion,))
    with pytest.raises(ScreeningError) as caught:
        compile_protocol(checked)
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "PR503"
    assert "age between 18 years and 65 years" in diagnostic.message
    assert "Novel" in diagnostic.message
    assert diagnostic.span is not None and diagnostic.span.line > 1


# --------------------------------------------------------------------------- the API


def small() -> list[dict[str, Any]]:
    base = {
        "as_of": "2026-03-02T08:00:00Z",
        "age": 40,
        "serum_creatinine": [{"value": 2.5, "at": "2026-03-02T06:00:00Z"}],
        "baseline_creatinine": 1.0,
        "informed_consent": True,
        "able_to_comply": True,
        "aki_cause": "septic",
        "platelet_count": 150000,
        "life_expectancy": 24,
        "baseline_egfr": 90,
        "lvef": 55,
        "non_renal_organ_failures": 0,
        "on_systemic_immunosuppression": False,
        "prednisone_equivalent_dose": [],
    }
    for name in [
        "pregnant",
        "lactating",
        "allergic",
        "organ_transplant",
        "hematopoietic_stem_cell_transplant",
        "malignant_tumor",
        "cancer_history",
        "end_stage_liver_disease",
        "uncontrolled_infection",
        "severe_pulmonary_dysfunction",
        "severe_arrhythmia",
        "hemodynamically_unstable",
        "vasculitis",
        "chronic_systemic_infection_history",
        "vasopressor_escalation_expected",
        "severe_hematologic_abnormality",
        "mechanical_ventilation",
        "in_other_trial",
    ]:
        base[name] = False
    return [
        {"id": "P1", **base},
        {"id": "P2", **base, "platelet_count": 20000},
        {"id": "P3", **base, "platelet_count": 24000, "baseline_egfr": 50},
        {"id": "P4", **{k: v for k, v in base.items() if k != "lvef"}},
        {"id": "P5", **base, "age": 70},
    ]


def test_counts_attrition_and_what_if(nct: Any) -> None:
    screening = nct.screen(small())
    assert screening.frame.get_column("status").to_list() == [
        "eligible", "ineligible", "ineligible", "indeterminate", "ineligible",
    ]  # fmt: skip
    counts = {r["criterion"]: r for r in screening.counts().iter_rows(named=True)}
    assert counts["E18"]["met"] == 2 and counts["E11"]["unknown"] == 1
    attrition = screening.attrition()
    assert attrition.get_column("criterion").to_list()[:3] == ["", "I1", "I2"]
    assert attrition.row(0, named=True)["remaining"] == 5
    assert attrition.row(2, named=True)["removed"] == 1  # I2 removes P5
    assert attrition.get_column("remaining").to_list()[-1] == 2
    what_if = screening.what_if(["E18"])
    after = dict(zip(what_if.counts["status"], what_if.counts["after"], strict=True))
    assert after["eligible"] == 2  # P2 becomes eligible; P3 is still out by E9
    gains = {r["criterion"]: r["keeps_out"] for r in what_if.gains.iter_rows(named=True)}
    assert gains["E9"] == 1 and gains["I2"] == 1
    with pytest.raises(ScreeningError) as caught:
        screening.what_if(["E99"])
    assert caught.value.diagnostics[0].code == "PR505"


def test_near_misses(nct: Any) -> None:
    screening = nct.screen(small())
    near = screening.near_misses()
    assert near.get_column("patient_id").to_list() == ["P5", "P2"]
    p2 = near.filter(pl.col("patient_id") == "P2").row(0, named=True)
    assert (p2["criterion"], p2["value"], p2["distance"], p2["unit"]) == (
        "E18", 20000.0, 5000.0, "/uL",
    )  # fmt: skip
    assert p2["would_be"] == "eligible"
    two = screening.near_misses(max_criteria=2)
    assert set(two.get_column("patient_id")) == {"P2", "P3", "P5"}
    # the interpreter shows the same near miss
    result = screening.explain("P2")
    (miss,) = result.criterion("E18").near_misses
    assert (miss.value, miss.distance, miss.unit) == (20000.0, 5000.0, "/uL")
    entry = next(c for c in result.to_dict()["criteria"] if c["id"] == "E18")
    assert entry["near_misses"][0]["distance"] == 5000.0


def test_explain_is_the_interpreter_trace(nct: Any) -> None:
    records = small()
    layout = to_layout(records)
    for data in (records, layout):
        result = nct.screen(data).explain("P2")
        assert result.status.value == "ineligible"
        assert [c.id for c in result.deciding] == ["E18"]
        assert result.criterion("E18").trace.children


def test_writers_round_trip(nct: Any, tmp_path: Path) -> None:
    screening = nct.screen(small())
    for name in ("r.parquet", "r.csv", "r.json", "r.jsonl"):
        screening.write(tmp_path / name)
        assert (tmp_path / name).stat().st_size > 0
    back = pl.read_parquet(tmp_path / "r.parquet")
    assert back.get_column("status").cast(str).to_list() == (
        screening.frame.get_column("status").cast(str).to_list()
    )
    with pytest.raises(ScreeningError):
        screening.write(tmp_path / "r.xlsx")


def test_as_of_argument_and_per_patient_column(nct: Any) -> None:
    records = small()
    by_column = nct.screen(to_layout(records)).frame
    by_argument = nct.screen(
        to_layout([{k: v for k, v in r.items() if k != "as_of"} for r in records]),
        as_of="2026-03-02T08:00:00Z",
    ).frame
    assert by_column.equals(by_argument)
    missing = nct.screen([{k: v for k, v in records[0].items() if k != "as_of"}]).frame
    assert missing.get_column("error_code").to_list() == ["PR410"]


def test_importing_the_package_does_not_import_polars() -> None:
    code = "import sys, protocol_rules; print('polars' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_without_polars_the_error_says_to_install_the_extra() -> None:
    code = (
        "import sys; sys.modules['polars'] = None\n"
        "import protocol_rules\n"
        "p = protocol_rules.load_protocol('protocols/nct04194671.rules')\n"
        "try:\n    p.screen([])\nexcept protocol_rules.RulesError as e:\n"
        "    print(e.diagnostics[0].code, e.diagnostics[0].help)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.startswith("PR501")
    assert "protocol-rules[screen]" in done.stdout
