"""Engines benchmark: NCT04194671 screened by polars, DuckDB (in place) and Spark, 1M and 10M.

    python benchmarks/engines.py                          # 1,000,000 patients: polars, DuckDB
    python benchmarks/engines.py --patients 1000000 10000000 --spark
    python benchmarks/engines.py --patients 10000000 --only "spark local[2]"   # and polars

1. Writes each population once in the Parquet layout (cached in ``benchmarks/.data/``, the
   generator of `benchmarks/screen.py`: lab units, windows, absent facts).
2. Screens it with each engine in a fresh child process: ``polars`` (`Protocol.screen` on the
   folder), ``duckdb`` (DuckDB reads the Parquet files in place), ``duckdb, memory limit``
   (the same with DuckDB's ``memory_limit`` set to half the data's decoded size, so
   it must spill to disk: out of core) and, with ``--spark``, ``spark local[2]`` (Spark reads
   the Parquet files itself). Each child loads the protocol first (outside the timing), then
   times the screen until the result frame is in Python, and reports the peak resident memory
   of its own Python process (``VmHWM``; for Spark the JVM is a separate process, not counted).
3. Checks that every engine gives every patient the same status as the polars engine (a digest
   of the statuses in patient order; exit 1 if not) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from screen import AS_OF, DATA, RULES, _peak_mb, write_population  # noqa: E402

ENGINES = ("polars", "duckdb", "duckdb, memory limit", "spark local[2]")


def child(engine: str, folder: str, limit_mb: int) -> None:
    """Screen `folder` with `engine` in this (fresh) process; print the figures as JSON."""
    import polars as pl

    import protocol_rules

    start_mb = _peak_mb()
    protocol = protocol_rules.load_protocol(RULES)
    options: dict[str, Any] = {}
    if engine.startswith("duckdb"):
        name = "duckdb"
        if engine == "duckdb, memory limit":
            spill = tempfile.mkdtemp(prefix="protocol-rules-spill-")
            options = {"memory_limit": f"{limit_mb}MB", "temp_directory": spill}
    elif engine.startswith("spark"):
        from pyspark.sql import SparkSession

        name = "spark"
        session = (
            SparkSession.builder.master("local[2]")
            .appName("protocol-rules benchmark")
            .config("spark.driver.memory", "8g")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.ansi.enabled", "false")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        options = {"session": session}
    else:
        name = "polars"
    began = time.perf_counter()
    frame = protocol.screen(folder, as_of=AS_OF, engine=name, engine_options=options).frame
    seconds = time.perf_counter() - began
    statuses = frame.select("patient_id", pl.col("status").cast(pl.String)).sort("patient_id")
    print(json.dumps({
        "seconds": seconds,
        "rows": frame.height,
        "peak_mb": _peak_mb(),
        "start_mb": start_mb,
        "digest": int(statuses.hash_rows(seed=1).sum()),
        "counts": dict(statuses.get_column("status").value_counts().iter_rows()),
    }))  # fmt: skip


def run_child(engine: str, folder: Path, limit_mb: int, timeout: float) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--child", engine, str(folder), str(limit_mb)],
            capture_output=True, text=True, env=env, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"failed": f"not finished within {timeout:,.0f} s (stopped)"}
    if done.returncode != 0:
        return {"failed": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def decoded_mb(folder: Path) -> float:
    import polars as pl

    return sum(
        pl.read_parquet(folder / f"{table}.parquet").estimated_size("mb")
        for table in ("patients", "observations")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--spark", action="store_true", help="also Spark on local[2]")
    parser.add_argument(
        "--limited", type=int, nargs="*", default=None,
        help="the sizes to also screen under a DuckDB memory limit (default: the smallest)",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per screen")
    parser.add_argument(
        "--only", nargs="+", choices=ENGINES[1:], default=None,
        help="screen with these engines only (polars always runs: it is the reference)",
    )  # fmt: skip
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    engines = [e for e in ENGINES if args.spark or not e.startswith("spark")]
    if args.only:
        engines = ["polars", *args.only]
    rows = []
    failed = False
    limited = set(args.limited if args.limited is not None else [min(args.patients)])
    for n in args.patients:
        folder = DATA / f"nct04194671-{n}"
        if not (folder / "observations.parquet").exists():
            began = time.perf_counter()
            write_population(n, folder)
            print(f"wrote {folder} in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        size = decoded_mb(folder)
        on_disk = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
        limit = max(64, int(size / 2))
        reference = None
        for engine in engines:
            if engine.endswith("limit") and n not in limited:
                continue
            print(f"{n:,} patients: {engine} …", file=sys.stderr)
            got = run_child(engine, folder, limit, args.timeout)
            if "failed" in got:
                failed = True
                rows.append((f"{n:,}", engine, "failed", "", "", got["failed"][:80]))
                continue
            reference = reference if reference is not None else got["digest"]
            same = got["digest"] == reference
            failed = failed or not same
            note = f"memory limit {limit:,} MB; " if engine.endswith("limit") else ""
            note += "same statuses as polars" if same else "STATUSES DIFFER from polars"
            rows.append((
                f"{n:,}", engine, f"{got['seconds']:.1f} s", f"{n / got['seconds']:,.0f}",
                f"{got['peak_mb']:,.0f} MB", note,
            ))  # fmt: skip
        rows.append((f"{n:,}", "(the data)", "", "", f"{size:,.0f} MB decoded",
                     f"{on_disk:,.0f} MB of Parquet on disk"))  # fmt: skip
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| patients | engine | screen | rows/s | peak memory (Python) | notes |")
    print("| ---: | --- | ---: | ---: | ---: | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
