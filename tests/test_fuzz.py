"""A seeded, bounded fuzz suite: mutated rules files and mutated patients never crash anything.

The laws, for every input:

- loading, checking and formatting a rules text raise nothing but `ProtocolError`, and
  evaluating and reading a patient nothing but `PatientDataError` (both `RulesError`s);
- every result renders in every format — text (plain, colour, brief, narrow), Markdown, JSON —
  and `to_json` is strict JSON (no `NaN`, no `Infinity`) that validates against the packaged
  schema and carries no raw control or bidi character.

Inputs are drawn from a seeded `random.Random`, so a run is reproducible: a failure message
names the seed and the case. The default profile takes a few seconds. A longer profile for CI or
before a release: ``PROTOCOL_RULES_FUZZ=long`` (about 25 times the cases), or a number
(``PROTOCOL_RULES_FUZZ=100`` for 100 times), and ``PROTOCOL_RULES_FUZZ_SEED`` for other seeds.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import types
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from protocol_rules import (
    PatientDataError,
    ProtocolError,
    Result,
    check_text,
    load_protocol,
    parse_protocol,
    read_patient_json,
)
from protocol_rules.format import format_text

ROOT = Path(__file__).resolve().parents[1]
NCT_FILE = ROOT / "protocols" / "nct04194671.rules"
NCT = load_protocol(NCT_FILE)
SCHEMA = json.loads(
    (ROOT / "src" / "protocol_rules" / "schemas" / "result.schema.json").read_text("utf-8")
)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
EXAMPLES = [
    json.loads(p.read_text(encoding="utf-8"))
    for p in sorted((ROOT / "examples" / "patients").glob("*.json"))
    if p.name != "expected.json"
]


def _scale() -> int:
    value = os.environ.get("PROTOCOL_RULES_FUZZ", "1").strip().lower()
    if value == "long":
        return 25
    return max(1, int(value)) if value.isdigit() else 1


SCALE = _scale()
SEED = int(os.environ.get("PROTOCOL_RULES_FUZZ_SEED", "20260310"))
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# --------------------------------------------------------------------------- the laws


def _refuse_constant(name: str) -> Any:
    raise AssertionError(f"to_json wrote {name}, which is not JSON")


def render_everything(result: Result) -> None:
    """Every renderer on `result`; strict, schema-valid, printable JSON."""
    for text in (
        result.explain(brief=True, width=40),
        ANSI.sub("", result.explain(color=True)),
        result.to_markdown(),
        result.to_json(),
    ):
        assert not UNSAFE.search(text), repr(UNSAFE.search(text))
    data = json.loads(result.to_json(), parse_constant=_refuse_constant)
    VALIDATOR.validate(data)
    assert result.outcomes == {c.id: c.outcome for c in result.criteria}


def evaluate_or_refuse(protocol: Any, patient: Any, as_of: Any = None) -> Result | None:
    try:
        result = protocol.evaluate(patient, as_of=as_of)
    except PatientDataError as exc:
        assert exc.errors, "refused without an error"
        for d in exc.diagnostics:
            assert not UNSAFE.search(d.message + (d.path or "") + (d.help or "")), d
        return None
    render_everything(result)
    return result


def load_or_refuse(text: str) -> Any:
    try:
        protocol = parse_protocol(text, "fuzz.rules")
    except ProtocolError as exc:
        assert exc.errors, "refused without an error"
        protocol = None
    check_text(text, "fuzz.rules")
    with contextlib.suppress(ProtocolError):
        format_text(text, "fuzz.rules")
    return protocol


def cases(salt: str, count: int) -> Iterator[tuple[int, random.Random]]:
    """`count * SCALE` seeded generators, one per case, each reproducible on its own."""
    for case in range(count * SCALE):
        yield case, random.Random(f"{SEED}:{salt}:{case}")


def run_cases(salt: str, count: int, body: Callable[[random.Random], None]) -> None:
    for case, rng in cases(salt, count):
        try:
            body(rng)
        except Exception as exc:
            message = f"{salt} case {case} (seed {SEED}) failed: {type(exc).__name__}: {exc}"
            raise AssertionError(message) from exc


# --------------------------------------------------------------------------- rules inputs

NCT_TEXT = NCT_FILE.read_text(encoding="utf-8")
_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|\w+|\S')

#: Fragments that once crashed something, or stress a limit: spliced into rules texts.
SNIPPETS = (
    "not not not not not not not not not not",
    "(((((((((((( b ))))))))))))",
    " and age > 2 * age",
    " or baseline_creatinine < 500 'mL' / 24 hours",
    " or baseline_creatinine < 100 'mg/(6.dL)' * 6 hours",
    " or count(serum_creatinine over last time_since(immunosuppression_last_change)) > 0",
    " or immunosuppression_last_change - 1e300 days < @2026-01-01",
    " or immunosuppression_last_change + 1e15 'h' > @2026-01-01",
    " or platelet_count * 1e300 * 1e300 > 1 '/uL'",
    " or platelet_count > 1e300 'Mg/L'",
    " or age > 1e300 * 1e300 'a'",
    '"\x1b[2J\u202e<img src=x onerror=alert(1)>"',
    "define d1 = d0\ndefine d0 = d1\n",
    "define deep = " + "not " * 110 + "pregnant\ndefine deeper = " + "not " * 110 + "deep\n",
    "@0001-01-01",
    "@9999-12-31",
    "9" * 350,
    "1e-320",
    "'\u202e'",
    "''",
)


def mutate_rules(rng: random.Random, text: str) -> str:
    tokens = [m.span() for m in _TOKEN.finditer(text)]
    for _ in range(rng.randint(1, 4)):
        action = rng.choice(("delete", "duplicate", "insert", "splice", "char"))
        start, end = rng.choice(tokens) if tokens else (0, 0)
        start, end = min(start, len(text)), min(end, len(text))
        if action == "delete":
            text = text[:start] + text[end:]
        elif action == "duplicate":
            text = text[:end] + text[start:end] + text[end:]
        elif action == "insert":
            word = rng.choice(("(", ")", "not", "and", "or", ":", "=", "{", "}", "'", '"', "\n"))
            text = f"{text[:start]}{word} {text[start:]}"
        elif action == "splice":
            text = f"{text[:end]}{rng.choice(SNIPPETS)}{text[end:]}"
        else:
            i = rng.randrange(len(text)) if text else 0
            odd = chr(rng.choice((0, 0x1B, 0x85, 0x202E, 0xFEFF, 0x0D, 0x2028)))
            text = text[:i] + odd + text[i:]
    return text


def patients_for(protocol: Any, rng: random.Random) -> Iterator[dict[str, Any]]:
    """An empty record, an example patient, and a random mutation of one."""
    yield {}
    base = rng.choice(EXAMPLES)
    yield dict(base)
    yield mutate_patient(rng, base, [f.name for f in protocol.facts])


def test_mutated_rules_files_load_or_are_refused_and_always_render():
    def body(rng: random.Random) -> None:
        text = mutate_rules(rng, NCT_TEXT)
        protocol = load_or_refuse(text)
        if protocol is not None:
            for patient in patients_for(protocol, rng):
                evaluate_or_refuse(protocol, patient, as_of="2026-03-02T08:00:00Z")

    run_cases("rules", 25, body)


def test_snippets_alone_load_or_are_refused_and_always_render():
    facts = (
        "fact b: boolean\nfact pregnant: boolean\nfact age: quantity 'a' range 0 to 130\n"
        "fact baseline_creatinine: quantity 'mg/dL' range 0 to 40\n"
        "fact platelet_count: quantity '/uL' range 0 to 5000000\n"
        "fact immunosuppression_last_change: date\n"
        "fact serum_creatinine: series of quantity 'mg/dL' range 0 to 40\n"
    )
    for snippet in SNIPPETS:
        body = snippet.strip().removeprefix("or ").removeprefix("and ")
        for text in (
            f'protocol S\n{facts}inclusion I1 "x": b or {body}\n',
            f'protocol S\n{facts}{snippet}\ninclusion I1 "x": b\n',
        ):
            protocol = load_or_refuse(text)
            if protocol is not None:
                for patient in ({}, {"b": False, "immunosuppression_last_change": "0001-01-01"}):
                    evaluate_or_refuse(protocol, patient, as_of="2026-03-02T08:00:00Z")


# --------------------------------------------------------------------------- patients


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A JSON-ish value, odd on purpose: huge, tiny, deep, hostile, or not JSON at all."""
    kind = rng.randrange(16 if depth < 4 else 10)
    match kind:
        case 0:
            return None
        case 1:
            return rng.choice((True, False))
        case 2:
            return rng.choice((0, -1, 1, 17, 65, 25000, 10**15, -(10**20), 10**300))
        case 3:
            return rng.choice((0.5, 1e308, -1e308, 1e-320, 2.5e-5, float("nan"), float("inf")))
        case 4:
            return rng.choice(("", "septic", "mg/dL", "umol/L", "10*9/L", "\x1b[31m", "\u202e"))
        case 5:
            return rng.choice(("2026-03-01", "2026-03-01T08:00:00Z", "0001-01-01", "9999-12-31"))
        case 6:
            return rng.choice((date(2026, 1, 1), datetime(2026, 3, 1, 8, tzinfo=UTC)))
        case 7:
            return {"value": random_json(rng, depth + 1), "unit": random_unit(rng)}
        case 8:
            return types.MappingProxyType({"value": rng.choice((1, 2.5, 1e308)), "unit": "mg/dL"})
        case 9:
            return "x" * rng.choice((1, 100, 5000))
        case 10 | 11:
            return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
        case 12:
            return tuple(observation(rng) for _ in range(rng.randint(0, 3)))
        case 13:
            return [observation(rng) for _ in range(rng.randint(0, 5))]
        case 14:
            nested: Any = 1
            for _ in range(rng.choice((10, 100, 1000))):
                nested = [nested]
            return nested
        case _:
            return {random_key(rng): random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def random_unit(rng: random.Random) -> Any:
    return rng.choice(
        (
            None, "mg/dL", "umol/L", "10*9/L", "10*3/uL", "/uL", "mo", "wk", "a", "d", "h", "%",
            "g/d", "mL/kg/h", "L/kg/h", "mL/min/{1.73_m2}", "'", "", "x10^9/L", "kg", 7,
            f"mg{{n{rng.randrange(10**6)}}}/dL",  # a new spelling every time
            "\u202emg/dL",
        )
    )  # fmt: skip


def random_key(rng: random.Random) -> str:
    return rng.choice(("value", "unit", "at", "age", "x", "\x1b[2J", "\u202ekey", "\ud800"))


def observation(rng: random.Random) -> dict[str, Any]:
    at = datetime(2026, 3, 2, 8, tzinfo=UTC) + timedelta(hours=rng.randint(-2000, 200))
    item: dict[str, Any] = {"value": rng.choice((0.5, 1.2, 2.7, 15, 40, 1e308)), "at": at}
    if rng.random() < 0.7:
        item["at"] = at.isoformat().replace("+00:00", "Z")
    if rng.random() < 0.5:
        item["unit"] = random_unit(rng)
    if rng.random() < 0.1:
        item[random_key(rng)] = random_json(rng, 3)
    return item


def mutate_patient(rng: random.Random, patient: dict[str, Any], names: list[str]) -> Any:
    out: dict[str, Any] = dict(patient)
    for _ in range(rng.randint(1, 4)):
        action = rng.randrange(8)
        if action <= 2 and names:
            out[rng.choice(names)] = random_json(rng)
        elif action == 3 and out:
            del out[rng.choice(list(out))]
        elif action == 4:
            out[random_key(rng)] = random_json(rng)
        elif action == 5:
            out["as_of"] = random_json(rng) if rng.random() < 0.5 else "2026-03-01T00:00:00Z"
        elif action == 6 and names:
            out[rng.choice(names)] = [observation(rng) for _ in range(rng.randint(0, 6))]
        else:
            out = rng.choice((out, types.MappingProxyType(out), [out], "patient"))  # type: ignore[assignment]
            if not isinstance(out, dict):
                return out
    return out


NCT_NAMES = [f.name for f in NCT.facts]
_AS_OF = datetime(2026, 3, 2, 8, tzinfo=UTC)


def tweak_patient(rng: random.Random, patient: dict[str, Any]) -> Any:
    """A patient that stays valid: facts dropped or null, values on thresholds, other Python
    types for the same data, observations after `as_of`, another `as_of`."""
    out: dict[str, Any] = dict(patient)
    for _ in range(rng.randint(1, 5)):
        name = rng.choice(NCT_NAMES)
        action = rng.randrange(7)
        if action == 0:
            out.pop(name, None)
        elif action == 1:
            out[name] = None
        elif action == 2:
            out.update(rng.choice(_THRESHOLDS))
        elif action == 3 and isinstance(out.get(name), dict):
            out[name] = types.MappingProxyType(out[name])
        elif action == 4 and isinstance(out.get(name), list):
            late = {"value": 1.0, "at": _AS_OF + timedelta(hours=rng.randint(1, 10**5))}
            out[name] = (*out[name], late) if name != "prednisone_equivalent_dose" else ()
        elif action == 5:
            out["as_of"] = (_AS_OF + timedelta(hours=rng.randint(-100, 100))).isoformat()
        else:
            out["immunosuppression_last_change"] = rng.choice(
                # a `past` fact: never after `as_of`, which may move 100 hours back
                (date(2025, 11, 1), "0001-01-01", date(2026, 2, 25))
            )
    return types.MappingProxyType(out) if rng.random() < 0.2 else out


_THRESHOLDS = (
    {"age": 18},
    {"age": {"value": 65 * 12, "unit": "mo"}},
    {"platelet_count": {"value": 25, "unit": "10*9/L"}},
    {"platelet_count": 0},
    {"lvef": 40},
    {"baseline_egfr": 60},
    {"life_expectancy": {"value": 3, "unit": "mo"}},
    {"non_renal_organ_failures": 3},
    {"baseline_creatinine": {"value": 1e-300, "unit": "mg/dL"}},
)


def test_mutated_patients_are_evaluated_or_refused_and_always_render():
    def body(rng: random.Random) -> None:
        base = rng.choice(EXAMPLES)
        patient = tweak_patient(rng, base)
        assert evaluate_or_refuse(NCT, patient) is not None, "a valid record was refused"
        patient = mutate_patient(rng, base, NCT_NAMES)
        evaluate_or_refuse(NCT, patient, as_of=rng.choice((None, "2026-03-02T08:00:00Z")))
        for outcome in NCT.evaluate_many([patient, rng.choice(EXAMPLES)]):
            assert isinstance(outcome, Result | PatientDataError)

    run_cases("patients", 100, body)


def mutate_json_text(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(text) + 1)
        piece = rng.choice(
            (
                "[" * rng.choice((3, 70, 10_000)), "]", "{", "}", ",", ":", '"', "\\", "NaN",
                "Infinity", "1e999", "9" * rng.choice((10, 500, 5000)), '"age": 1, "age": 2, ',
                "\ufeff", "\x00", "\\ud800", "\\u001b[2J", "\\u202e", "\u0085",
            )
        )  # fmt: skip
        text = text[:i] + piece + text[i:] if rng.random() < 0.7 else text[:i] + text[i + 1 :]
    return text


def test_mutated_patient_files_are_read_or_refused_and_always_render():
    texts = [json.dumps(p) for p in EXAMPLES]

    def body(rng: random.Random) -> None:
        text = mutate_json_text(rng, rng.choice(texts))
        for content in (text, text.encode("utf-8", "surrogatepass")):
            try:
                patient = read_patient_json(content, "fuzz.json")
            except PatientDataError as exc:
                assert exc.errors
                continue
            evaluate_or_refuse(NCT, patient)

    run_cases("files", 100, body)


@pytest.mark.parametrize("name", ["indeterminate.json", "eligible-umol.json"])
def test_the_command_line_survives_mutated_patient_files(tmp_path, name):
    from click.testing import CliRunner

    from protocol_rules.cli import cli

    text = (ROOT / "examples" / "patients" / name).read_text(encoding="utf-8")
    for case, rng in cases(f"cli:{name}", 8):
        path = tmp_path / f"p{case}.json"
        path.write_bytes(mutate_json_text(rng, text).encode("utf-8", "surrogatepass"))
        for fmt in ("text", "markdown", "json"):
            done = CliRunner().invoke(
                cli, ["eval", str(NCT_FILE), str(path), "--format", fmt], catch_exceptions=False
            )
            assert done.exit_code in (0, 1), (case, fmt, done.output[-500:])
            assert not UNSAFE.search(ANSI.sub("", done.output))
            if fmt == "json" and done.exit_code == 0:
                json.loads(done.output, parse_constant=_refuse_constant)
