"""Cold start: `protocol-rules check` of NCT04194671 against a bare `python -c pass`.

    python benchmarks/cold_start.py              # 15 interleaved rounds
    python benchmarks/cold_start.py --rounds 5

Every run is a fresh interpreter, started the way the console script starts it, with the
package's bytecode compiled (as `pip install` leaves it; ``PYTHONDONTWRITEBYTECODE`` is unset
for the runs). The rounds
interleave the commands, so that a machine busy with something else slows them alike, and
each figure is the median (and the fastest) of its rounds. The cases:

- ``python -c pass``: the floor, an interpreter that does nothing;
- ``check``, warm cache: the usual run, with the unit facts and the parser's tables already
  in the cache folder (any run after the first);
- ``check``, first run: an empty cache folder each time (a new install, or a new version);
- ``check``, cache off: ``PROTOCOL_RULES_CACHE_DIR=`` (the UCUM registry and the parser are
  built in every run, as before the cache existed);
- ``--version``: the command line alone (click and the package's import).

The goal (issue 10) is a warm ``check`` within 15 times ``python -c pass``. The output is a
Markdown table; docs/performance.md shows one.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "protocols" / "nct04194671.rules"
GOAL = 15.0
CLI = "import sys; from protocol_rules.cli import main; main(sys.argv[1:])"


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) one fresh interpreter takes to run `argv`.

    CPU time is what the process itself spent; on a machine shared with other work it varies
    much less than wall-clock time, so the ratios are given for both.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def cases(cache: Path) -> dict[str, tuple[list[str], dict[str, str] | None]]:
    """Each case: the command, and its environment (None: a new empty cache folder per run)."""
    base = dict(os.environ)
    base.setdefault("PYTHONPATH", str(ROOT / "src"))
    # Compiled bytecode, as `pip install` leaves it (without it every run compiles the package).
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    warm = dict(base, PROTOCOL_RULES_CACHE_DIR=str(cache))
    off = dict(base, PROTOCOL_RULES_CACHE_DIR="")
    check = [sys.executable, "-c", CLI, "check", str(PROTOCOL)]
    return {
        "`python -c pass`": ([sys.executable, "-c", "pass"], base),
        "`protocol-rules --version`": ([sys.executable, "-c", CLI, "--version"], warm),
        "`protocol-rules check`, warm cache": (check, warm),
        "`protocol-rules check`, first run (empty cache)": (check, None),
        "`protocol-rules check`, cache off": (check, off),
    }


def measure(rounds: int) -> dict[str, list[tuple[float, float]]]:
    times: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder) / "warm"
        table = cases(cache)
        warm_argv, warm_env = table["`protocol-rules check`, warm cache"]
        assert warm_env is not None
        run(warm_argv, warm_env)  # fills the cache and writes the bytecode
        for n in range(rounds):
            for name, (argv, env) in table.items():
                if env is None:
                    env = dict(table["`python -c pass`"][1] or {})
                    env["PROTOCOL_RULES_CACHE_DIR"] = str(Path(folder) / f"empty-{n}")
                times.setdefault(name, []).append(run(argv, env))
    return times


def report(times: dict[str, list[tuple[float, float]]]) -> str:
    def median(name: str, which: int) -> float:
        return statistics.median(sample[which] for sample in times[name])

    floor = "`python -c pass`"
    lines = [
        "| command | wall time (median) | × `python -c pass` | CPU time (median) "
        "| × `python -c pass` |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in times:
        wall, cpu = median(name, 0), median(name, 1)
        lines.append(
            f"| {name} | {wall * 1000:.0f} ms | {wall / median(floor, 0):.1f}× "
            f"| {cpu * 1000:.0f} ms | {cpu / median(floor, 1):.1f}× |"
        )
    warm = "`protocol-rules check`, warm cache"
    wall_ratio = median(warm, 0) / median(floor, 0)
    cpu_ratio = median(warm, 1) / median(floor, 1)
    verdict = "within" if wall_ratio <= GOAL else "above"
    lines += [
        "",
        f"warm `check`: {wall_ratio:.1f}× `python -c pass` in wall time ({cpu_ratio:.1f}× in "
        f"CPU time), {verdict} the goal of {GOAL:.0f}×",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    args = parser.parse_args(argv)
    print(
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{args.rounds} rounds\n"
    )
    print(report(measure(args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
