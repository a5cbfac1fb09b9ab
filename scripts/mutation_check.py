"""Mutation check: each single change of a threshold, a strictness or a window length in
protocols/nct04194671.rules must make some law of tests/test_properties.py fail.

Copies the checkout to a temporary folder, writes each mutant next to it, and runs the property
tests against it through PROTOCOL_RULES_FILE (two at a time), under the `ci` settings without
shrinking (a killed mutant needs one failure, not the smallest). Run from a checkout with the
dev extra installed: `python scripts/mutation_check.py` (about five minutes on two cores);
exit status 1 if any mutant survives.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MAIN = Path(__file__).resolve().parents[1]
WORK = Path(tempfile.mkdtemp(prefix="protocol-rules-mutation-"))
REPO = WORK / "repo"
PYTHON = sys.executable

MUTATIONS = [
    (
        "I2 lower bound 18 -> 19",
        "age between 18 years and 65 years",
        "age between 19 years and 65 years",
    ),
    (
        "I2 upper bound 65 -> 64",
        "age between 18 years and 65 years",
        "age between 18 years and 64 years",
    ),
    ("E9 age < -> <=", "age < 65 years and baseline_egfr", "age <= 65 years and baseline_egfr"),
    ("E9 eGFR < -> <=", "baseline_egfr < 60", "baseline_egfr <= 60"),
    ("E9 eGFR 60 -> 59", "baseline_egfr < 60", "baseline_egfr < 59"),
    ("E11 LVEF < -> <=", "lvef < 40 '%'", "lvef <= 40 '%'"),
    ("E11 LVEF 40 -> 45", "lvef < 40 '%'", "lvef < 45 '%'"),
    ("E13 > 2 -> >= 2", "non_renal_organ_failures > 2", "non_renal_organ_failures >= 2"),
    ("E18 platelets 25000 -> 20000", "platelet_count < 25000", "platelet_count < 20000"),
    ("E18 platelets < -> <=", "platelet_count < 25000", "platelet_count <= 25000"),
    ("E6 life expectancy < -> <=", "life_expectancy < 3 months", "life_expectancy <= 3 months"),
    ("E6 3 months -> 90 days", "life_expectancy < 3 months", "life_expectancy < 90 days"),
    ("E17 last change <= -> <", "<= 4 months)", "< 4 months)"),
    ("E17 4 months -> 120 days", "<= 4 months)", "<= 120 days)"),
    ("E17 calendar -> mean months", "<= 4 months)", "<= 4 'mo')"),
    ("E17 dose window 30 -> 29 days", "over last 30 days", "over last 29 days"),
    ("E17 dose > -> >=", "> 15 'mg/d'", ">= 15 'mg/d'"),
    ("I1 creatinine window 48 -> 47 h", "over last 48 hours", "over last 47 hours"),
    ("I1 ratio > -> >=", "> 2 * baseline_creatinine", ">= 2 * baseline_creatinine"),
    ("I1 multiplier 2 -> 1.9", "> 2 * baseline_creatinine", "> 1.9 * baseline_creatinine"),
    ("I1 urine window 12 -> 13 h", "over last 12 hours", "over last 13 hours"),
    ("I1 urine < -> <=", "< 0.5 'mL/kg/h'", "<= 0.5 'mL/kg/h'"),
    (
        "E1 drops glomerulonephritis",
        "{post_renal_obstruction, glomerulonephritis,",
        "{post_renal_obstruction,",
    ),
]

RUNNER = """
import sys
from hypothesis import HealthCheck, Phase, settings
settings.register_profile(
    "mutation", max_examples=300, derandomize=True, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


def prepare() -> str:
    if REPO.exists():
        shutil.rmtree(REPO)
    ignore = shutil.ignore_patterns(".git", ".hypothesis", "__pycache__", ".pytest_cache", "site")
    shutil.copytree(MAIN, REPO, ignore=ignore)
    (WORK / "runner.py").write_text(RUNNER)
    return (MAIN / "protocols" / "nct04194671.rules").read_text(encoding="utf-8")


def run(index: int, name: str, old: str, new: str, original: str) -> tuple[str, list[str]]:
    assert original.count(old) == 1, (name, original.count(old))
    mutant = WORK / f"mutant_{index:02d}.rules"
    mutant.write_text(original.replace(old, new), encoding="utf-8")
    env = dict(os.environ, PROTOCOL_RULES_FILE=str(mutant), HYPOTHESIS_PROFILE="mutation")
    out = subprocess.run(
        [
            PYTHON,
            str(WORK / "runner.py"),
            "tests/test_properties.py",
            "-q",
            "-rf",
            "-p",
            "no:cacheprovider",
            "--tb=no",
            "-o",
            "addopts=",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    killers = re.findall(r"^FAILED tests/test_properties.py::(\S+)", out.stdout, re.M)
    if out.returncode not in (0, 1):
        killers.append(f"<pytest exit {out.returncode}: {out.stdout[-300:]}>")
    return name, killers


def main() -> int:
    original = prepare()
    for name, old, _new in MUTATIONS:
        assert original.count(old) == 1, (name, original.count(old))
    baseline = run(0, "unmutated", original[:40], original[:40], original)
    print(f"unmutated: {'no failures' if not baseline[1] else baseline[1]}", flush=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(run, i, name, old, new, original)
            for i, (name, old, new) in enumerate(MUTATIONS, 1)
        ]
        survivors = 0
        for future in futures:
            name, killers = future.result()
            status = "KILLED" if killers else "SURVIVED"
            survivors += not killers
            print(f"{status:8} {name:34} by {', '.join(killers) or '-'}", flush=True)
    print(f"{len(MUTATIONS) - survivors}/{len(MUTATIONS)} mutants killed")
    return 1 if survivors or baseline[1] else 0


if __name__ == "__main__":
    sys.exit(main())
