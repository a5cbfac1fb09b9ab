"""Benchmarks of protocol-rules on NCT04194671 against the hand-written baseline.

    python benchmarks/run.py            # 2,000 patients, 15 interleaved rounds
    python benchmarks/run.py --quick    # 300 patients, 5 rounds
    python benchmarks/run.py --peers    # also rule-engine / json-logic, when installed

First it checks that the engine and `baseline.evaluate_baseline` agree on the status and on
every criterion's outcome for every generated patient, and stops (exit 1) printing the
patient if they do not: the baseline is an independent oracle. Then it times, in one process,
`Protocol.evaluate` and `evaluate_baseline` on the same raw patient dicts in alternating
rounds, and the costs around them: loading a protocol, the first use in a fresh interpreter,
traces and renderers, and `evaluate_many`. The output is a Markdown table.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROTOCOL = ROOT / "protocols" / "nct04194671.rules"
sys.path.insert(0, str(HERE))

from baseline import EXCLUDED_CAUSES, evaluate_baseline  # noqa: E402
from patients import SEED, generate  # noqa: E402

Row = tuple[str, str, str]  # what, median, notes
SHOWN = 5  # disagreements printed in full


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer patients and rounds")
    parser.add_argument("--peers", action="store_true", help="also time rule-engine/json-logic")
    parser.add_argument(
        "--patients", type=int, help="number of patients (default 2000; 300 with --quick)"
    )
    args = parser.parse_args(argv)
    n = args.patients or (300 if args.quick else 2000)
    rounds = 5 if args.quick else 15

    cold = first_use(1 if args.quick else 3)  # before this process imports the engine
    import protocol_rules

    protocol = protocol_rules.load_protocol(PROTOCOL)
    patients = generate(n)
    print(machine())
    print(f"\n{n} patients (seed {SEED}), {rounds} rounds\n")
    if not agree(protocol, patients):
        return 1
    rows = speed(protocol, patients, rounds)
    rows += renderers(protocol, patients[: min(n, 300)], max(3, rounds // 3))
    rows += throughput(protocol, patients, max(3, rounds // 3))
    rows += loading(protocol_rules, 5 if args.quick else 20)
    rows += cold
    if args.peers:
        rows += peers(protocol, patients, rounds)
    print(table(rows))
    return 0


# --------------------------------------------------------------------------- agreement


def agree(protocol: Any, patients: list[dict[str, Any]]) -> bool:
    """True when engine and baseline agree on status and every outcome for every patient.

    Missing facts are defined differently: the baseline lists every absent fact that an
    unknown criterion reads, the engine only those that can still change it (an absent fact
    under a decided `and`/`or` is not listed) and also series with no observation in a
    window. So the engine's absent facts must be a subset of the baseline's.
    """
    disagreements = narrower = 0
    statuses: dict[str, int] = {}
    for number, patient in enumerate(patients):
        result = protocol.evaluate(patient)
        oracle = evaluate_baseline(patient)
        outcomes = {cid: outcome.value for cid, outcome in result.outcomes.items()}
        statuses[result.status.value] = statuses.get(result.status.value, 0) + 1
        absent = {m.name for m in result.missing_facts if m.reason == "absent"}
        if (result.status.value, outcomes) != (oracle["status"], oracle["outcomes"]) or not (
            absent <= set(oracle["missing_facts"])
        ):
            disagreements += 1
            if disagreements <= SHOWN:
                report(number, patient, result, oracle)
        elif absent != set(oracle["missing_facts"]):
            narrower += 1
    print(f"agreement: {len(patients) - disagreements}/{len(patients)} patients agree", end="")
    print(f" ({', '.join(f'{v} {k}' for k, v in sorted(statuses.items()))})")
    if narrower:
        print(
            f"  {narrower} with fewer missing facts than the baseline lists: absent facts"
            " that cannot change the verdict (as intended)"
        )
    if disagreements:
        shown = f" (the first {SHOWN} shown above)" if disagreements > SHOWN else ""
        print(f"\nFAILED: {disagreements} disagreement(s) between engine and baseline{shown}")
    return disagreements == 0


def report(number: int, patient: dict[str, Any], result: Any, oracle: dict[str, Any]) -> None:
    print(f"\nDISAGREEMENT on patient #{number}:")
    print(f"  status: engine {result.status.value}, baseline {oracle['status']}")
    for cid, outcome in result.outcomes.items():
        if outcome.value != oracle["outcomes"][cid]:
            print(f"  {cid}: engine {outcome.value}, baseline {oracle['outcomes'][cid]}")
    missing = [m.name for m in result.missing_facts]
    print(f"  missing facts: engine {missing}, baseline {oracle['missing_facts']}")
    print("  patient: " + json.dumps(patient))


# --------------------------------------------------------------------------- timing


def per_item_us(fn: Callable[[Any], Any], items: list[Any]) -> float:
    """Mean µs per item of one pass of `fn` over `items`."""
    start = time.perf_counter_ns()
    for item in items:
        fn(item)
    return (time.perf_counter_ns() - start) / len(items) / 1000


def speed(protocol: Any, patients: list[dict[str, Any]], rounds: int) -> list[Row]:
    """Engine and baseline in alternating rounds over the same patients."""
    contenders: dict[str, Callable[[Any], Any]] = {
        "engine": protocol.evaluate,
        "baseline": evaluate_baseline,
        "outcomes": lambda p: protocol.evaluate(p).outcomes,
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # warm up
        per_item_us(fn, patients[:50])
    for r in range(rounds):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in order:
            times[name].append(per_item_us(contenders[name], patients))
    engine, baseline = (statistics.median(times[k]) for k in ("engine", "baseline"))
    ratios = [e / b for e, b in zip(times["engine"], times["baseline"], strict=True)]
    return [
        ("`protocol.evaluate(patient)`", f"{engine:.1f} µs", spread(times["engine"], "µs")),
        ("`evaluate_baseline(patient)`", f"{baseline:.1f} µs", spread(times["baseline"], "µs")),
        (
            "**ratio engine / baseline**",
            f"**{engine / baseline:.2f}x**",
            f"per-round ratios {min(ratios):.2f}–{max(ratios):.2f}; the goal is 5x or less",
        ),
        (
            "`evaluate` + `result.outcomes`",
            f"{statistics.median(times['outcomes']):.1f} µs",
            "outcomes are one string: no per-criterion object is built",
        ),
    ]


def renderers(protocol: Any, patients: list[dict[str, Any]], rounds: int) -> list[Row]:
    """What a caller pays after `evaluate`, each on fresh results (nothing cached)."""
    jobs: dict[str, Callable[[Any], Any]] = {
        "all 24 traces of a result": lambda r: [c.trace for c in r.criteria],
        "`result.to_dict()`": lambda r: r.to_dict(),
        "`result.to_json()`": lambda r: r.to_json(),
        "`result.explain()`": lambda r: r.explain(),
    }
    rows = []
    for what, job in jobs.items():
        samples = []
        for _ in range(rounds):
            results = [protocol.evaluate(p) for p in patients]
            samples.append(per_item_us(job, results))
        rows.append((what, f"{statistics.median(samples):.0f} µs", "per result, traces built"))
    return rows


def throughput(protocol: Any, patients: list[dict[str, Any]], rounds: int) -> list[Row]:
    """`evaluate_many` streamed and with every result kept alive (the GC's worst case), and
    `evaluate` + `.outcomes` with every result kept (a screening job's loop)."""
    many = patients * 10  # the same records again: only the results add to the heap

    def streamed(batch: list[dict[str, Any]]) -> None:
        for _ in protocol.evaluate_many(batch):
            pass

    def kept(batch: list[dict[str, Any]]) -> None:
        results = list(protocol.evaluate_many(batch))
        assert len(results) == len(batch)

    def outcomes_kept(batch: list[dict[str, Any]]) -> None:
        """What a screening job does: read each patient's outcomes, keep every result."""
        results = []
        for patient in batch:
            result = protocol.evaluate(patient)
            result.outcomes  # noqa: B018 - the cost measured
            results.append(result)

    jobs = (
        ("`evaluate_many`, streamed", streamed, patients),
        ("`evaluate_many`, all results kept in a list", kept, patients),
        (f"`evaluate_many`, {len(many):,} results kept", kept, many),
        (f"`evaluate` + `.outcomes`, {len(many):,} results kept", outcomes_kept, many),
    )
    rows = []
    for what, job, batch in jobs:
        rates, gc_shares = [], []
        for _ in range(rounds):
            gc.collect()
            with GcClock() as clock:
                job(batch)
            rates.append(len(batch) / clock.elapsed)
            gc_shares.append(clock.in_gc / clock.elapsed)
        rate, share = statistics.median(rates), statistics.median(gc_shares)
        rows.append(
            (
                what,
                f"{rate:,.0f} patients/s",
                f"garbage collector: {share:.0%} of the time",
            )
        )
    return rows


class GcClock:
    """Wall time of a block, and how much of it the garbage collector took."""

    def __enter__(self) -> GcClock:
        self.in_gc = 0.0
        self._gc_start = 0.0
        gc.callbacks.append(self._callback)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.perf_counter() - self._start
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.in_gc += time.perf_counter() - self._gc_start


def loading(protocol_rules: Any, rounds: int) -> list[Row]:
    """Parse + check + compile of the protocol text, warm (parser built, units cached)."""
    text = PROTOCOL.read_text(encoding="utf-8")
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        protocol_rules.parse_protocol(text, str(PROTOCOL))
        samples.append((time.perf_counter() - start) * 1000)
    return [
        (
            "protocol load (parse+check+compile), warm",
            f"{statistics.median(samples):.1f} ms",
            spread(samples, "ms"),
        )
    ]


COLD = """
import json, sys, time
t0 = time.perf_counter()
import protocol_rules
t1 = time.perf_counter()
if sys.argv[1] == "registry":
    from protocol_rules import units
    units.registry()
    t2 = time.perf_counter()
    print(json.dumps({"import": t1 - t0, "registry": t2 - t1}))
else:
    protocol = protocol_rules.load_protocol(sys.argv[2])
    t2 = time.perf_counter()
    protocol.evaluate(json.loads(sys.argv[3]))
    t3 = time.perf_counter()
    protocol.evaluate(json.loads(sys.argv[3]))
    t4 = time.perf_counter()
    print(json.dumps({"import": t1 - t0, "load": t2 - t1, "first": t3 - t2, "second": t4 - t3}))
"""


def first_use(runs: int) -> list[Row]:
    """Cold costs, each measured in a fresh interpreter (median of `runs`)."""
    patient = json.dumps(foreign_units_patient())
    load = [_cold("load", str(PROTOCOL), patient) for _ in range(runs)]
    registry = [_cold("registry") for _ in range(runs)]

    def ms(samples: list[dict[str, float]], key: str) -> str:
        return f"{statistics.median(s[key] for s in samples) * 1000:.0f} ms"

    def us(samples: list[dict[str, float]], key: str) -> str:
        return f"{statistics.median(s[key] for s in samples) * 1e6:.0f} µs"

    return [
        ("`import protocol_rules`, cold", ms(load, "import"), "fresh interpreter"),
        (
            "UCUM registry (pint + ucumvert), first use",
            ms(registry, "registry"),
            "`units.registry()` alone, after the import",
        ),
        (
            "first `load_protocol`, cold",
            ms(load, "load"),
            "parser, registry and the protocol's units",
        ),
        (
            "first `evaluate`, cold",
            ms(load, "first"),
            "parses the patient's units (umol/L, 10*9/L, ...) once",
        ),
        ("second `evaluate`, same interpreter", us(load, "second"), ""),
    ]


def _cold(*args: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run(
        [sys.executable, "-c", COLD, *args], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def foreign_units_patient() -> dict[str, Any]:
    """The generated patient with the most distinct units (so the first evaluation converts)."""

    def units(patient: dict[str, Any]) -> int:
        return len(set(re_units(patient)))

    return max(generate(200), key=units)


def re_units(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        if isinstance(value.get("unit"), str):
            yield value["unit"]
        for v in value.values():
            yield from re_units(v)
    elif isinstance(value, list):
        for v in value:
            yield from re_units(v)


# --------------------------------------------------------------------------- peers
#
# rule-engine and json-logic have no units, no time windows and two-valued logic, so they get
# what a careful user would hand them: a flat record made by plain Python (the baseline's unit
# tables and window code), and the 24 criteria written over it. Only patients whose flat record
# is complete are used, where two-valued logic gives the same outcomes as three-valued.

# The 24 criteria over the flat record, as small tuples rendered into each peer's syntax.
PEER_RULES: dict[str, Any] = {
    "I1": (
        "or",
        (">", "creatinine_peak_48h", ("*", 2, "baseline_creatinine")),
        ("<", "urine_max_12h", 0.5),
    ),
    "I2": ("between", "age", 18, 65),
    "I3": "informed_consent",
    "I4": "able_to_comply",
    "E1": ("in", "aki_cause", tuple(sorted(EXCLUDED_CAUSES))),
    "E2": ("or", "pregnant", "lactating"),
    "E3": "allergic",
    "E4": ("or", "organ_transplant", "hematopoietic_stem_cell_transplant"),
    "E5": ("or", "malignant_tumor", "cancer_history"),
    "E6": ("<", "life_expectancy", 3),
    "E7": "end_stage_liver_disease",
    "E8": "uncontrolled_infection",
    "E9": ("and", ("<", "age", 65), ("<", "baseline_egfr", 60)),
    "E10": "severe_pulmonary_dysfunction",
    "E11": ("or", ("<", "lvef", 40), "severe_arrhythmia"),
    "E12": "hemodynamically_unstable",
    "E13": (">", "non_renal_organ_failures", 2),
    "E14": "vasculitis",
    "E15": "chronic_systemic_infection_history",
    "E16": "vasopressor_escalation_expected",
    "E17": (
        "or",
        (
            "and",
            "on_systemic_immunosuppression",
            "immunosuppression_changed_within_4_months",
        ),
        (">", "prednisone_max_30d", 15),
    ),
    "E18": ("or", ("<", "platelet_count", 25000), "severe_hematologic_abnormality"),
    "E19": "mechanical_ventilation",
    "E20": "in_other_trial",
}


def flat_record(patient: dict[str, Any]) -> dict[str, Any] | None:
    """The patient as a flat record in the declared units; None if any value is unknown."""
    import baseline as b

    now = b._timestamp(patient["as_of"])
    flat = {name: patient.get(name) for name in b.FACTS}
    creatinine = b._window(patient, "serum_creatinine", b._CREATININE, now, 48 * b.HOUR)
    urine = b._window(patient, "urine_output", b._URINE, now, 12 * b.HOUR)
    doses = b._window(patient, "prednisone_equivalent_dose", b._DOSE, now, 30 * b.DAY)
    last_change = patient.get("immunosuppression_last_change")
    flat.update(
        creatinine_peak_48h=max(creatinine) if creatinine else None,
        urine_max_12h=max(urine) if urine else None,
        prednisone_max_30d=None if doses is None else max(doses, default=0.0),
        immunosuppression_changed_within_4_months=None
        if last_change is None
        else b.changed_within_months(last_change, now, 4),
        age=b._number("age", patient.get("age"), b._AGE_A),
        baseline_creatinine=b._number(
            "baseline_creatinine", patient.get("baseline_creatinine"), b._CREATININE
        ),
        life_expectancy=b._number(
            "life_expectancy", patient.get("life_expectancy"), b._DURATION_MO
        ),
        baseline_egfr=b._number("baseline_egfr", patient.get("baseline_egfr"), b._EGFR),
        lvef=b._number("lvef", patient.get("lvef"), b._LVEF),
        platelet_count=b._number("platelet_count", patient.get("platelet_count"), b._PLATELETS),
    )
    for series in ("serum_creatinine", "urine_output", "prednisone_equivalent_dose"):
        del flat[series]
    return None if any(v is None for v in flat.values()) else flat


def rule_engine_text(expr: Any) -> str:
    if isinstance(expr, str):
        return expr
    if not isinstance(expr, tuple):
        return repr(expr)
    op, *args = expr
    if op == "between":
        name, low, high = args
        return f"({name} >= {low} and {name} <= {high})"
    if op == "in":
        name, items = args
        return f"{name} in [{', '.join(repr(i) for i in items)}]"
    return "(" + f" {op} ".join(rule_engine_text(a) for a in args) + ")"


def json_logic_rule(expr: Any) -> Any:
    if isinstance(expr, str):
        return {"var": expr}
    if not isinstance(expr, tuple):
        return expr
    op, *args = expr
    if op == "between":
        name, low, high = args
        return {"<=": [low, {"var": name}, high]}
    if op == "in":
        name, items = args
        return {"in": [{"var": name}, list(items)]}
    return {op: [json_logic_rule(a) for a in args]}


def peer_engines() -> tuple[dict[str, Callable[[dict[str, Any]], dict[str, bool]]], list[Row]]:
    """The peers that are installed and work, as ``flat record -> {id: bool}``; and notes."""
    import importlib.util

    engines: dict[str, Callable[[dict[str, Any]], dict[str, bool]]] = {}
    notes: list[Row] = []
    if importlib.util.find_spec("rule_engine"):
        import rule_engine

        context = rule_engine.Context(default_value=None)
        rules = {
            c: rule_engine.Rule(rule_engine_text(e), context=context) for c, e in PEER_RULES.items()
        }
        engines["rule-engine"] = lambda flat: {c: r.matches(flat) for c, r in rules.items()}
    else:
        notes.append(("rule-engine", "skipped", "not installed"))
    if importlib.util.find_spec("json_logic"):
        from json_logic import jsonLogic

        logic = {c: json_logic_rule(e) for c, e in PEER_RULES.items()}
        try:
            jsonLogic(logic["E9"], {"age": 1, "baseline_egfr": 1})
            engines["json-logic"] = lambda flat: {c: jsonLogic(r, flat) for c, r in logic.items()}
        except Exception as exc:  # json-logic 0.6.3 is Python 2 code
            notes.append(("json-logic", "skipped", f"installed but fails: {exc}"))
    else:
        notes.append(("json-logic", "skipped", "not installed"))
    return engines, notes


def peers(protocol: Any, patients: list[dict[str, Any]], rounds: int) -> list[Row]:
    """rule-engine and json-logic (when installed) against the engine, on complete patients."""
    engines, rows = peer_engines()
    complete = [p for p in patients if flat_record(p) is not None]
    if not engines or not complete:
        return rows
    wrong = {name: peer_disagreements(name, engine, complete) for name, engine in engines.items()}
    contenders = {"engine": protocol.evaluate, "baseline": evaluate_baseline}
    for name, engine in engines.items():
        contenders[name] = lambda p, engine=engine: engine(flat_record(p))  # type: ignore[misc]
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for r in range(rounds):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in order:
            times[name].append(per_item_us(contenders[name], complete))
    engine_us = statistics.median(times["engine"])
    for name, samples in times.items():
        us = statistics.median(samples)
        note = f"{us / engine_us:.2f}x the engine; {len(complete)} complete patients"
        if wrong.get(name):
            note += f"; judges {wrong[name]} of them unlike the baseline"
        rows.append((f"peer: {name}", f"{us:.1f} µs", note))
    return rows


def peer_disagreements(name: str, engine: Any, patients: list[dict[str, Any]]) -> int:
    """How many patients a peer judges differently from the baseline (the first is printed).

    Peers see the baseline's flat record, so a difference is the peer's own arithmetic, not a
    finding about protocol-rules: rule-engine computes in 28-digit `Decimal`, where creatinine
    exactly doubled in mg/L (``28 * 0.1 > 2 * (14 * 0.1)``) comes out true; in floats, false.
    """
    count = 0
    for patient in patients:
        oracle = evaluate_baseline(patient)["outcomes"]
        got = {c: "met" if v else "not_met" for c, v in engine(flat_record(patient)).items()}
        differ = {c: (got[c], oracle[c]) for c in got if got[c] != oracle[c]}
        if differ and not count:
            print(f"{name} differs from the baseline (peer, baseline): {differ} on")
            print("  " + json.dumps(patient))
        count += bool(differ)
    return count


# --------------------------------------------------------------------------- output


def spread(samples: list[float], unit: str) -> str:
    return f"min {min(samples):.1f}, max {max(samples):.1f} {unit}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if "model name" in line]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (
        f"machine: {platform.system()} {platform.release()} {platform.machine()}, {cpu}, "
        f"{os.cpu_count()} CPUs\n"
        f"python:  {platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable})"
    )


def table(rows: list[Row]) -> str:
    widths = [max(len(r[k]) for r in [*rows, ("what", "median", "notes")]) for k in range(3)]
    line = "| {:<{}} | {:>{}} | {:<{}} |"
    out = [line.format("what", widths[0], "median", widths[1], "notes", widths[2])]
    out.append(f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 1)}:|{'-' * (widths[2] + 2)}|")
    out += [line.format(a, widths[0], b, widths[1], c, widths[2]) for a, b, c in rows]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
