"""SQL benchmark: NCT04194671 screened by the SQL back ends against the polars engine, same run.

    python benchmarks/sql.py                        # 20,000 patients, 2 rounds
    python benchmarks/sql.py --patients 200000 --rounds 3 --spark

1. Generates patients (`benchmarks/patients.generate`: lab units, UTC offsets, values on
   boundaries) and writes them once in the Parquet layout (a temporary folder).
2. Screens the folder with each engine — ``polars``, ``duckdb`` (`Protocol.screen`, the same
   data door), ``duckdb in place`` (`protocol-rules sql --run`: DuckDB reads the Parquet files
   itself, with the unit table derived from the data) and, with ``--spark``, ``spark`` on a
   ``local[2]`` session — and checks that every engine gives every patient the same status as
   the polars engine (exit 1 if not).
3. Prints a Markdown table: the best time of the rounds, rows/s, and the ratio to polars.
   The engines compile a protocol once, outside the timing; ``duckdb in place`` compiles in
   every run (its unit table is derived from the data it reads), which is inside its time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RULES = ROOT / "protocols" / "nct04194671.rules"
sys.path.insert(0, str(HERE))

from patients import generate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--spark", action="store_true", help="also Spark on local[2] (slow)")
    args = parser.parse_args()

    from protocol_rules import load_protocol
    from protocol_rules.engines.duckdb import connect_layout, run_layout
    from protocol_rules.sources import to_layout, write_layout

    protocol = load_protocol(RULES)
    records = [{"id": i, **r} for i, r in enumerate(generate(args.patients, seed=1))]
    folder = Path(tempfile.mkdtemp(prefix="protocol-rules-sql-")) / "population"
    write_layout(to_layout(records), str(folder), "parquet")

    def in_place() -> Any:
        connection = connect_layout(str(folder))
        try:
            return run_layout(protocol.checked, connection)[1]
        finally:
            connection.close()

    runs = {
        "polars": lambda: protocol.screen(str(folder)).frame,
        "duckdb": lambda: protocol.screen(str(folder), engine="duckdb").frame,
        "duckdb in place (sql --run)": in_place,
    }
    if args.spark:
        runs["spark local[2]"] = lambda: protocol.screen(str(folder), engine="spark").frame
    for run in runs.values():  # compile (cached per protocol) and warm up, outside the timing
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    statuses: dict[str, list[str]] = {}
    for _ in range(args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            frame = run()
            times[name].append(time.perf_counter() - start)
            statuses[name] = frame.get_column("status").to_list()
    wrong = [n for n in runs if statuses[n] != statuses["polars"]]
    base = min(times["polars"])
    print(f"NCT04194671, {args.patients:,} patients (Parquet layout), best of {args.rounds}\n")
    print("| engine | seconds | rows/s | time / polars |")
    print("| --- | ---: | ---: | ---: |")
    for name, measured in times.items():
        best = min(measured)
        spread = f" (median {statistics.median(measured):.2f})" if len(measured) > 2 else ""
        print(f"| {name} | {best:.2f}{spread} | {args.patients / best:,.0f} | {best / base:.2f} |")
    if wrong:
        print(f"\nstatuses differ from the polars engine: {', '.join(wrong)}", file=sys.stderr)
        return 1
    print("\nevery engine gave every patient the polars engine's status")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
