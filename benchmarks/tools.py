"""Time of the authoring tools on NCT04194671: lint, diff and test --coverage.

    python benchmarks/tools.py              # 3 rounds each
    python benchmarks/tools.py --rounds 1

Each figure is the median wall time in one warm process (the protocol parsed, Z3 imported),
and its ratio to loading the protocol (parse + check + compile), the baseline every command
pays. The diff is the issue's amendment, E9 eGFR < 60 -> < 45, and the protocol against a
reformatted copy of itself (a proof that nothing changed). Output: a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "protocols" / "nct04194671.rules"
E9 = "baseline_egfr < 60 'mL/min/{1.73_m2}'"


def _median(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    import protocol_rules
    from protocol_rules.tools.coverage import coverage
    from protocol_rules.tools.diff import diff
    from protocol_rules.tools.lint import lint
    from protocol_rules.tools.runner import run_tests
    from protocol_rules.tools.testfile import load_tests, path_of_tests

    text = PROTOCOL.read_text(encoding="utf-8")
    protocol = protocol_rules.load_protocol(PROTOCOL)
    amended = protocol_rules.parse_protocol(text.replace(E9, E9.replace("60", "45")), "new.rules")
    reformatted = protocol_rules.parse_protocol(text.replace("\n\n", "\n\n\n"), "copy.rules")
    load = _median(lambda: protocol_rules.parse_protocol(text, "nct.rules"), max(args.rounds, 5))

    def test_coverage() -> None:
        results = run_tests(protocol, load_tests(path_of_tests(PROTOCOL), protocol))
        coverage(protocol._program, results, str(PROTOCOL))

    rows = [
        ("load the protocol (baseline)", load),
        ("lint", _median(lambda: lint(protocol), args.rounds)),
        ("diff, E9 < 60 -> < 45", _median(lambda: diff(protocol, amended), args.rounds)),
        ("diff, reformatted copy", _median(lambda: diff(protocol, reformatted), args.rounds)),
        ("test --coverage (35 cases)", _median(test_coverage, args.rounds)),
    ]
    print(f"NCT04194671, median of {args.rounds} rounds\n")
    print("| what | seconds | × loading |")
    print("| --- | ---: | ---: |")
    for what, seconds in rows:
        print(f"| {what} | {seconds:.2f} | {seconds / load:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
