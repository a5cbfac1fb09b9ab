"""Keystroke to diagnostics: how long the language server takes to answer an edit.

    python benchmarks/lsp.py              # 60 keystrokes at each of two places of NCT04194671
    python benchmarks/lsp.py --keys 200

Starts `protocol-rules lsp` as an editor does (a child process, JSON-RPC over stdio), opens
protocols/nct04194671.rules, then types: each keystroke is one incremental `didChange`
(alternately inserting and deleting a digit inside a criterion, so the text stays valid; near
the end of the file, then in its first criteria),
and the time measured is from sending it to receiving the `publishDiagnostics` of that
version. Also reported: the time to answer `initialize` after the process starts, and the
time to the first diagnostics of the opened file (which includes loading the units library).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lsp_client import Client, position  # noqa: E402

PROTOCOL = ROOT / "protocols" / "nct04194671.rules"

#: Where the keystrokes go: late in the file (the items before it are not parsed again) and
#: early (every item after the edit is).
PLACES = [
    ("line 160 (E-criteria)", "platelet_count < 25000", len("platelet_count < 2")),
    ("line 86 (I2)", "age between 18 years and 65", len("age between 1")),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=60, help="keystrokes to time")
    args = parser.parse_args()
    text = PROTOCOL.read_text(encoding="utf-8")
    uri = PROTOCOL.as_uri()
    started = time.perf_counter()
    with Client() as client:
        client.initialize()
        initialized = time.perf_counter()
        client.open(uri, text)
        assert client.diagnostics(uri, 1) == [], "NCT04194671 should check clean"
        first = time.perf_counter()
        version = 1
        times: dict[str, list[float]] = {}
        for label, needle, delta in PLACES:
            where = position(text, needle, delta=delta)
            line, column = where["line"], where["character"]
            times[label] = []
            for key in range(args.keys):
                version += 1
                sent = time.perf_counter()
                if key % 2 == 0:  # type a digit: 25000 -> 250000
                    client.edit(uri, version, (line, column), (line, column), "5")
                else:  # and delete it again
                    client.edit(uri, version, (line, column), (line, column + 1), "")
                client.diagnostics(uri, version)
                times[label].append((time.perf_counter() - sent) * 1000)
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}")
    print(f"python:  {platform.python_implementation()} {platform.python_version()}")
    print(f"file:    {PROTOCOL.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    print()
    print("| what | time |")
    print("| --- | --- |")
    print(f"| start to `initialize` answered | {(initialized - started) * 1000:.0f} ms |")
    print(f"| open to first diagnostics (loads the units library) | "
          f"{(first - initialized) * 1000:.0f} ms |")  # fmt: skip
    for label, measured in times.items():
        measured.sort()
        print(f"| keystroke to diagnostics, {label}: median of {len(measured)} | "
              f"{statistics.median(measured):.1f} ms |")  # fmt: skip
        print(f"| keystroke to diagnostics, {label}: 90th percentile | "
              f"{measured[int(len(measured) * 0.9)]:.1f} ms |")  # fmt: skip
        print(f"| keystroke to diagnostics, {label}: slowest | {measured[-1]:.1f} ms |")


if __name__ == "__main__":
    main()
