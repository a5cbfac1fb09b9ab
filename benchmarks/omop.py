"""OMOP benchmark: NCT04194671 screened on the Synthea27Nj OMOP CDM scaled up, through DuckDB.

    python benchmarks/omop.py --copies 1000        # 28,000 persons
    python benchmarks/omop.py --zip PATH/Synthea27Nj_5.4.zip --copies 36000   # ~1M persons

1. Builds (once, cached in ``benchmarks/.data/``) a DuckDB CDM of `copies` copies of the 28
   persons of the sample: copy k has person_id + 1000 k, row ids shifted, and every date
   (birth included) shifted back by k mod 365 days, so copies differ in age and in what falls inside
   a window. PERSON, MEASUREMENT and CONDITION_OCCURRENCE are copied whole; CONCEPT once.
2. Times, in this process: `omop_layout` (the DuckDB query of the rows the data map selects,
   into the columnar layout) and `Protocol.screen` on it; and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / ".data"
ZIP = Path("/work/shared/data/omop-synthea27nj/Synthea27Nj_5.4.zip")
TABLES = ("PERSON", "MEASUREMENT", "CONDITION_OCCURRENCE", "CONCEPT")
AS_OF = "2022-10-10"


def build(archive: Path, copies: int) -> Path:
    import duckdb

    target = DATA / f"synthea27nj-x{copies}.duckdb"
    if target.exists():
        return target
    started = time.perf_counter()
    csvs = DATA / "synthea27nj"
    csvs.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zipped:
        for table in TABLES:
            if not (csvs / f"{table}.csv").exists():
                zipped.extract(f"{table}.csv", csvs)
    partial = target.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    con = duckdb.connect(str(partial))
    # a shared 2-CPU machine: bounded memory (DuckDB spills to disk past it), no order to keep
    con.execute("set memory_limit = '6GB'")
    con.execute("set preserve_insertion_order = false")
    con.execute(f"create table copies as select range as k from range({copies})")

    def read(table: str) -> str:
        return f"read_csv_auto('{csvs / (table + '.csv')}', all_varchar=true)"

    con.execute(
        f"""create table person as select
            cast(person_id as bigint) + 1000 * k as person_id, gender_concept_id,
            year(cast(birth_datetime as timestamp) - to_days(cast(k % 365 as integer)))
              as year_of_birth,
            month(cast(birth_datetime as timestamp) - to_days(cast(k % 365 as integer)))
              as month_of_birth,
            day(cast(birth_datetime as timestamp) - to_days(cast(k % 365 as integer)))
              as day_of_birth,
            cast(birth_datetime as timestamp) - to_days(cast(k % 365 as integer))
              as birth_datetime
        from {read("PERSON")}, copies"""
    )
    con.execute(
        f"""create table measurement as select
            cast(measurement_id as bigint) + 100000000 * k as measurement_id,
            cast(person_id as bigint) + 1000 * k as person_id,
            cast(measurement_concept_id as bigint) as measurement_concept_id,
            cast(measurement_date as date) - cast(k % 365 as integer) as measurement_date,
            cast(measurement_datetime as timestamp) - to_days(cast(k % 365 as integer))
              as measurement_datetime,
            cast(value_as_number as double) as value_as_number,
            unit_source_value, cast(unit_concept_id as bigint) as unit_concept_id
        from {read("MEASUREMENT")}, copies"""
    )
    con.execute(
        f"""create table condition_occurrence as select
            cast(condition_occurrence_id as bigint) + 100000000 * k as condition_occurrence_id,
            cast(person_id as bigint) + 1000 * k as person_id,
            cast(condition_concept_id as bigint) as condition_concept_id,
            cast(condition_start_date as date) - cast(k % 365 as integer)
              as condition_start_date,
            cast(condition_start_datetime as timestamp) - to_days(cast(k % 365 as integer))
              as condition_start_datetime
        from {read("CONDITION_OCCURRENCE")}, copies"""
    )
    con.execute(f"create table concept as select * from {read('CONCEPT')}")
    con.close()
    partial.rename(target)
    seconds = time.perf_counter() - started
    target.with_suffix(".seconds").write_text(f"{seconds:.1f}\n")  # the build time, for the table
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--zip", type=Path, default=ZIP, help="the Synthea27Nj_5.4.zip")
    parser.add_argument("--copies", type=int, default=1000, help="copies of the 28 persons")
    args = parser.parse_args()
    if not args.zip.exists():
        sys.exit(f"{args.zip}: not found; pass --zip")
    sys.path.insert(0, str(ROOT / "src"))
    from protocol_rules import load_data_map, load_protocol
    from protocol_rules.sources import omop_layout

    started = time.perf_counter()
    database = build(args.zip, args.copies)
    built = time.perf_counter() - started
    protocol = load_protocol(ROOT / "protocols" / "nct04194671.rules")
    data_map = load_data_map(ROOT / "protocols" / "nct04194671.omop.toml", protocol)
    problems: list = []
    t0 = time.perf_counter()
    layout = omop_layout(database, data_map, as_of=AS_OF, problems=problems)
    t1 = time.perf_counter()
    screening = protocol.screen(layout)
    statuses = screening.status_counts()
    t2 = time.perf_counter()
    n = len(screening)
    print("| what | value | notes |\n| --- | --- | --- |")
    print(f"| persons | {n:,} | {args.copies:,} copies of Synthea27Nj's 28 |")
    memo = database.with_suffix(".seconds")
    if memo.exists() and built < float(memo.read_text()):  # cached: the time it took once
        built = float(memo.read_text())
    size = database.stat().st_size / 1024**3
    print(
        f"| build the DuckDB CDM | {built:.1f} s | once; cached in {database.name}, {size:.1f} GB |"
    )
    rate = f"{n / (t1 - t0):,.0f} persons/s"
    print(f"| `omop_layout` (DuckDB → columnar layout) | {t1 - t0:.2f} s | {rate} |")
    print(f"| `protocol.screen(layout)` | {t2 - t1:.2f} s | {n / (t2 - t1):,.0f} persons/s |")
    print(f"| **total** | **{t2 - t0:.2f} s** | {n / (t2 - t0):,.0f} persons/s |")
    print(f"| statuses | {statuses} | {len(problems)} rows skipped |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux
    note = "`ru_maxrss` of this run (the build too, when it ran)"
    print(f"| peak memory of the process | {peak:.1f} GB | {note} |")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"| load average (1, 5, 15 min) | {load} | at the end, on {os.cpu_count()} CPUs |")


if __name__ == "__main__":
    main()
