"""Screening benchmark: NCT04194671 on a population in the Parquet layout, against a hand-written
polars query of the same criteria, in the same run.

    python benchmarks/screen.py                   # 1,000,000 patients, 3 rounds
    python benchmarks/screen.py --patients 100000 --rounds 1
    python benchmarks/screen.py --shuffled        # identifiers in no order: no sorted joins

1. Writes the population once (cached in ``benchmarks/.data/``): patients wide — ages, lab
   values with a unit column (platelets in ``/uL`` or ``10*9/L``), booleans, choices, dates,
   some facts absent — and three series long, with creatinine in ``mg/dL`` or ``umol/L`` and
   observations inside and outside their windows.
2. Checks, on the whole population, that `Protocol.screen` and the hand-written query give every
   patient the same status and outcomes (exit 1 if not): the query is an independent oracle.
3. Times each end to end — read the Parquet files, compute, have the statuses in memory — in
   fresh child processes, alternating, and records each child's peak memory (``VmHWM``, taken
   before the files are read again to measure them) against the size of the loaded data: as
   polars estimates it, and as held (the peak of a child that only reads the two files).
4. Times `evaluate_many` on records of the same kind, for the rows/s comparison.

Prints a Markdown table (docs/performance.md shows one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RULES = ROOT / "protocols" / "nct04194671.rules"
DATA = HERE / ".data"
AS_OF = "2026-03-02T08:00:00Z"
AS_OF_S = 1772438400.0  # AS_OF in seconds since the epoch
HOUR, DAY = 3600.0, 86400.0
CREATININE_MOLAR = 113.12  # g/mol: 1 mg/dL = 10000 / 113.12 umol/L
BOOLEANS = [
    "informed_consent",
    "able_to_comply",
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
    "on_systemic_immunosuppression",
    "severe_hematologic_abnormality",
    "mechanical_ventilation",
    "in_other_trial",
]
CAUSES = [
    "prerenal",
    "ischemic_atn",
    "toxic_atn",
    "septic",
    "post_renal_obstruction",
    "glomerulonephritis",
    "lupus_nephritis",
    "anca_nephritis",
    "anti_gbm_disease",
    "cryoglobulinemia",
    "thrombotic_microangiopathy",
    "purpura_nephritis",
    "other",
]
EXCLUDED_CAUSES = CAUSES[4:12]


# --------------------------------------------------------------------------- the population


def _uniform(pl: Any, seed: int) -> Any:
    """A deterministic uniform [0, 1) column, one value per row."""
    return (pl.int_range(pl.len(), dtype=pl.UInt64).hash(seed) % 1_000_003) / 1_000_003


def write_population(n: int, folder: Path) -> None:
    import polars as pl

    u = lambda seed: _uniform(pl, seed)  # noqa: E731
    absent = lambda expr, seed, share=0.04: pl.when(u(seed) < share).then(None).otherwise(expr)  # noqa: E731
    base = pl.DataFrame({"patient_id": pl.int_range(n, dtype=pl.Int64, eager=True)})
    columns = [
        absent((u(1) * 80 + 10).round(0), 2).alias("age"),
        absent((u(3) * 1.5 + 0.5).round(2), 4).alias("baseline_creatinine"),
        absent((u(5) * 100 + 20).round(0), 6).alias("baseline_egfr"),
        absent((u(7) * 75 + 10).round(0), 8).alias("lvef"),
        absent((u(9) * 24).round(1), 10).alias("life_expectancy"),
        absent((u(11) * 5).floor().cast(pl.Int64), 12).alias("non_renal_organ_failures"),
        absent(
            pl.lit(pl.Series(CAUSES)).gather((u(13) * len(CAUSES)).floor().cast(pl.UInt32)), 14
        ).alias("aki_cause"),
        absent(pl.lit(AS_OF_S) - (u(15) * 300).floor() * DAY, 16)
        .cast(pl.Int64)
        .mul(1000)
        .cast(pl.Datetime("ms"))
        .dt.date()
        .alias("immunosuppression_last_change"),
    ]
    in_units = u(17) < 0.3  # platelets in 10*9/L for 30% of the patients
    platelets = (u(18) * 400 + 5).round(0) * 1000
    columns += [
        absent(pl.when(in_units).then(platelets / 1000).otherwise(platelets), 19).alias(
            "platelet_count"
        ),
        pl.when(in_units).then(pl.lit("10*9/L")).otherwise(None).alias("platelet_count.unit"),
    ]
    for i, name in enumerate(BOOLEANS):
        share = 0.95 if name in ("informed_consent", "able_to_comply") else 0.03
        columns.append(absent(u(100 + i) < share, 200 + i, 0.02).alias(name))
    patients = base.with_columns(columns)
    observations = pl.concat(
        [
            _series(pl, n, "serum_creatinine", 4, 72 * HOUR, 0.5, 5.0, 300, "umol/L"),
            _series(pl, n, "urine_output", 4, 24 * HOUR, 0.05, 2.0, 400, None),
            _series(pl, n, "prednisone_equivalent_dose", 2, 40 * DAY, 0.0, 30.0, 500, None),
        ]
    )
    folder.mkdir(parents=True, exist_ok=True)
    patients.write_parquet(folder / "patients.parquet")
    observations.write_parquet(folder / "observations.parquet")


def _series(
    pl: Any, n: int, fact: str, most: int, span: float, low: float, high: float, seed: int,
    other_unit: str | None,
) -> Any:  # fmt: skip
    """Up to `most` observations per patient (some patients none), over `span` before as_of."""
    rows = pl.DataFrame({"patient_id": pl.int_range(n, dtype=pl.Int64, eager=True)})
    rows = rows.with_columns((_uniform(pl, seed) * (most + 1)).floor().cast(pl.Int64).alias("k"))
    rows = rows.filter(pl.col("k") > 0).with_columns(pl.int_ranges(0, pl.col("k")).alias("i"))
    rows = rows.explode("i").drop("k")
    u = lambda s: _uniform(pl, seed + s)  # noqa: E731
    seconds = (pl.lit(AS_OF_S) - (u(1) * span).round(0) + 3600).cast(pl.Int64)  # some after as_of
    value = (u(2) * (high - low) + low).round(2)
    if other_unit is not None:
        converted = u(3) < 0.25
        unit = pl.when(converted).then(pl.lit(other_unit)).otherwise(None)
        value = (
            pl.when(converted).then((value * 10000 / CREATININE_MOLAR).round(1)).otherwise(value)
        )
    else:
        unit = pl.lit(None, dtype=pl.String)
    return rows.select(
        "patient_id",
        pl.lit(fact).alias("fact"),
        (seconds * 1000).cast(pl.Datetime("ms", "UTC")).alias("at"),
        value.cast(pl.Float64).alias("value"),
        unit.cast(pl.String).alias("unit"),
    )


def shuffled(folder: Path) -> Path:
    """A copy of the population with its rows in a random order (written once, then cached)."""
    import polars as pl

    target = folder.with_name(folder.name + "-shuffled")
    if not (target / "observations.parquet").exists():
        target.mkdir(parents=True, exist_ok=True)
        for name in ("patients", "observations"):
            frame = pl.read_parquet(folder / f"{name}.parquet")
            frame.sample(fraction=1.0, shuffle=True, seed=3).write_parquet(
                target / f"{name}.parquet"
            )
    return target


# --------------------------------------------------------------------------- the contenders


def screen_statuses(folder: Path) -> Any:
    """The engine, end to end: load the protocol, read the layout, screen."""
    import protocol_rules

    start = time.perf_counter()
    protocol = protocol_rules.load_protocol(RULES)
    LOADING.append(time.perf_counter() - start)
    return protocol.screen(str(folder), as_of=AS_OF).frame


LOADING: list[float] = []  # seconds spent loading the protocol (the UCUM registry, mostly)


def hand_written(folder: Path) -> Any:
    """The same 24 criteria written directly in polars, as a careful data engineer would."""
    import polars as pl

    patients = pl.read_parquet(folder / "patients.parquet")
    obs = pl.read_parquet(folder / "observations.parquet")
    now = AS_OF_S
    at = pl.col("at").dt.epoch("ms") / 1000

    def window(fact: str, seconds: float) -> Any:
        return obs.lazy().filter((pl.col("fact") == fact) & (at >= now - seconds) & (at <= now))

    value = pl.col("value")
    creatinine = pl.when(pl.col("unit") == "umol/L").then(value * CREATININE_MOLAR / 10000)
    creatinine = creatinine.otherwise(value)
    known = obs.lazy().group_by("patient_id", "fact").agg(pl.len()).collect()
    has = {f: known.filter(pl.col("fact") == f).select("patient_id") for f in (
        "serum_creatinine", "urine_output", "prednisone_equivalent_dose")}  # fmt: skip
    max_cr = (
        window("serum_creatinine", 48 * HOUR)
        .group_by("patient_id")
        .agg(creatinine.max().alias("max_cr"))
    )
    max_uo = (
        window("urine_output", 12 * HOUR).group_by("patient_id").agg(value.max().alias("max_uo"))
    )
    steroid = (
        window("prednisone_equivalent_dose", 30 * DAY)
        .group_by("patient_id")
        .agg((value > 15).any().alias("steroid"))
    )
    frame = (
        patients.lazy()
        .join(max_cr, on="patient_id", how="left")
        .join(max_uo, on="patient_id", how="left")
        .join(steroid, on="patient_id", how="left")
        .join(
            has["prednisone_equivalent_dose"].lazy().with_columns(pl.lit(True).alias("p")),
            on="patient_id",
            how="left",
        )
        .with_columns(
            pl.when(pl.col("p")).then(pl.col("steroid").fill_null(False)).alias("steroid")
        )
    )
    platelets = (
        pl.when(pl.col("platelet_count.unit") == "10*9/L")
        .then(pl.col("platelet_count") * 1000)
        .otherwise(pl.col("platelet_count"))
    )
    c = pl.col
    # `time_since(x) <= 4 months`: calendar months, x + 4 months (clamped to the month's end)
    # on or after as_of's day
    as_of_day = pl.lit(now).mul(1000).cast(pl.Int64).cast(pl.Datetime("ms")).dt.date()
    recent = c("immunosuppression_last_change").dt.offset_by("4mo") >= as_of_day
    between = pl.when(c("age").is_null()).then(None).otherwise(c("age").is_between(18, 65))
    criteria = {
        "I1": (c("max_cr") > 2 * c("baseline_creatinine")) | (c("max_uo") < 0.5),
        "I2": between,
        "I3": c("informed_consent"),
        "I4": c("able_to_comply"),
        "E1": pl.when(c("aki_cause").is_null())
        .then(None)
        .otherwise(c("aki_cause").is_in(EXCLUDED_CAUSES)),
        "E2": c("pregnant") | c("lactating"),
        "E3": c("allergic"),
        "E4": c("organ_transplant") | c("hematopoietic_stem_cell_transplant"),
        "E5": c("malignant_tumor") | c("cancer_history"),
        "E6": c("life_expectancy") < 3,
        "E7": c("end_stage_liver_disease"),
        "E8": c("uncontrolled_infection"),
        "E9": (c("age") < 65) & (c("baseline_egfr") < 60),
        "E10": c("severe_pulmonary_dysfunction"),
        "E11": (c("lvef") < 40) | c("severe_arrhythmia"),
        "E12": c("hemodynamically_unstable"),
        "E13": c("non_renal_organ_failures") > 2,
        "E14": c("vasculitis"),
        "E15": c("chronic_systemic_infection_history"),
        "E16": c("vasopressor_escalation_expected"),
        "E17": (c("on_systemic_immunosuppression") & recent) | c("steroid"),
        "E18": (platelets < 25000) | c("severe_hematologic_abnormality"),
        "E19": c("mechanical_ventilation"),
        "E20": c("in_other_trial"),
    }
    excluded = [
        (e == cid.startswith("E")).fill_null(False) for cid, e in ((k, c(k)) for k in criteria)
    ]
    unknown = [c(k).is_null() for k in criteria]
    status = (
        pl.when(pl.any_horizontal(excluded))
        .then(pl.lit("ineligible"))
        .when(pl.any_horizontal(unknown))
        .then(pl.lit("indeterminate"))
        .otherwise(pl.lit("eligible"))
    )
    return (
        frame.with_columns(e.alias(k) for k, e in criteria.items())
        .select("patient_id", status.alias("status"), *criteria)
        .collect()
    )


def read_only(folder: Path) -> Any:
    """Only reading the two files (no contender): what holding the data costs in memory."""
    import polars as pl

    patients = pl.read_parquet(folder / "patients.parquet")
    pl.read_parquet(folder / "observations.parquet")
    return patients


CONTENDERS = {"screen": screen_statuses, "hand": hand_written}
CHILDREN = {**CONTENDERS, "read": read_only}


def child(name: str, folder: str) -> None:
    """Run one contender in this (fresh) process; print its time and peak memory as JSON."""
    import polars as pl

    before = _peak_mb()
    start = time.perf_counter()
    frame = CHILDREN[name](Path(folder))
    seconds = time.perf_counter() - start
    peak = _peak_mb()  # before the files are read again, below, to measure them
    loaded = pl.read_parquet(Path(folder) / "patients.parquet").estimated_size(
        "mb"
    ) + pl.read_parquet(Path(folder) / "observations.parquet").estimated_size("mb")
    print(json.dumps({
        "seconds": seconds, "rows": frame.height, "peak_mb": peak, "start_mb": before,
        "loaded_mb": loaded, "loading": sum(LOADING),
    }))  # fmt: skip


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: reset by exec, unlike ru_maxrss)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(name: str, folder: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, __file__, "--child", name, str(folder)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- checks and table


def agree(folder: Path) -> bool:
    import polars as pl

    engine = screen_statuses(folder)
    hand = hand_written(folder)
    ids = [c.id for c in __import__("protocol_rules").load_protocol(RULES).criteria]
    mine = engine.select(
        "patient_id", pl.col("status").cast(pl.String), *(pl.col(i).cast(pl.String) for i in ids)
    )
    theirs = hand.select(
        "patient_id",
        "status",
        *(
            pl.when(pl.col(i).is_null()).then(pl.lit("unknown"))
            .when(pl.col(i)).then(pl.lit("met")).otherwise(pl.lit("not_met")).alias(i)
            for i in ids
        ),
    )  # fmt: skip
    diff = mine.join(theirs, on="patient_id", suffix="_hand").filter(
        pl.any_horizontal(pl.col(k) != pl.col(f"{k}_hand") for k in ["status", *ids])
    )
    counts = dict(mine.get_column("status").value_counts().iter_rows())
    print(f"agreement: {mine.height - diff.height:,}/{mine.height:,} patients agree ({counts})")
    if diff.height:
        print(diff.head(5))
    return diff.height == 0 and mine.height == hand.height


def evaluate_many_rate(n: int = 20_000) -> float:
    import protocol_rules

    sys.path.insert(0, str(HERE))
    from patients import generate

    protocol = protocol_rules.load_protocol(RULES)
    records = generate(n, seed=11)
    start = time.perf_counter()
    for _ in protocol.evaluate_many(records):
        pass
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--shuffled",
        action="store_true",
        help="patients and observations in a random order (identifiers not sorted)",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    folder = DATA / f"nct04194671-{args.patients}"
    if not (folder / "observations.parquet").exists():
        start = time.perf_counter()
        write_population(args.patients, folder)
        print(f"wrote {folder} in {time.perf_counter() - start:.1f} s")
    if args.shuffled:
        folder = shuffled(folder)
    print(f"machine: {platform.system()} {platform.release()} {platform.machine()}, "
          f"{os.cpu_count()} CPUs; python {platform.python_version()}")  # fmt: skip
    import polars as pl

    print(f"polars {pl.__version__}; {args.patients:,} patients, {args.rounds} rounds\n")
    if not agree(folder):
        print("FAILED: the engine and the hand-written query disagree")
        return 1
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    for r in range(args.rounds):
        for name in CONTENDERS if r % 2 == 0 else reversed(list(CONTENDERS)):
            runs[name].append(run_child(name, folder))
    runs["read"] = [run_child("read", folder)]
    rate = evaluate_many_rate()
    print(table(runs, rate, args.patients))
    return 0


def table(runs: dict[str, list[dict[str, Any]]], rate: float, n: int) -> str:
    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    screen, hand = median("screen", "seconds"), median("hand", "seconds")
    loaded = runs["screen"][0]["loaded_mb"]

    def above(name: str) -> float:
        return median(name, "peak_mb") - median(name, "start_mb")

    resident = above("read")

    def times(name: str) -> str:
        return ", ".join(f"{r['seconds']:.2f}" for r in runs[name])

    rows = [
        ("what", "median", "notes"),
        ("`protocol.screen(folder)`, end to end", f"{screen:.2f} s",
         f"{n / screen:,.0f} patients/s; runs {times('screen')}"),
        ("hand-written polars query, end to end", f"{hand:.2f} s",
         f"{n / hand:,.0f} patients/s; runs {times('hand')}"),
        ("**ratio screen / hand-written**", f"**{screen / hand:.2f}x**", "the goal: 1.5x or less"),
        ("of which loading the protocol", f"{median('screen', 'loading'):.2f} s",
         "parse, check, UCUM registry: once per process"),
        ("ratio without loading the protocol",
         f"{(screen - median('screen', 'loading')) / hand:.2f}x", "read, check data, screen"),
        ("loaded data (patients + observations)", f"{loaded:,.0f} MB", "polars estimated size"),
        ("reading the two files alone", f"{median('read', 'seconds'):.2f} s",
         f"resident {resident:,.0f} MB above the interpreter at start: the data as held"),
        ("peak memory, screen", f"{median('screen', 'peak_mb'):,.0f} MB",
         f"{above('screen') / loaded:.2f}x the loaded data above the interpreter at start; "
         f"{above('screen') / resident:.2f}x the data as held"),
        ("peak memory, hand-written", f"{median('hand', 'peak_mb'):,.0f} MB",
         f"{above('hand') / loaded:.2f}x the loaded data; {above('hand') / resident:.2f}x the "
         "data as held"),
        ("`evaluate_many`, per record", f"{rate:,.0f} patients/s",
         f"screen is {n / screen / rate:,.0f}x faster per patient"),
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for i, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
