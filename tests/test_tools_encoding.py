"""Laws of the Z3 encoding that `lint` and `diff` rely on, checked against the interpreter.

- The explicit encoding (witnesses) is exact: with every fact pinned to a patient's values,
  each criterion's formulas give the outcome `Protocol.evaluate` gives (where it abstracts a
  construct, e.g. a calendar-month shift of a fact, the interpreter's outcomes are a model).
- The abstract encoding (proofs) is sound: the interpreter's outcomes, with the patient's
  scalar facts pinned, are always a model (so "no model" is a proof about every patient).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol_rules import parse_protocol
from protocol_rules.calendar import DAY, NEVER
from protocol_rules.check.types import BoolT, ChoiceT, SeriesT, SetT, TextT, TimeT
from protocol_rules.facts import UNKNOWN, parse_instant
from protocol_rules.testing import patients

z3 = pytest.importorskip("z3")

from protocol_rules.tools.smt import Encoder, real, solve  # noqa: E402

TIMEY = """protocol TIMEY
fact age: quantity 'a' range 0 to 130
fact admitted: datetime
fact last_dialysis: date or never past
fact started: date past
fact egfr: series of quantity 'mL/min/{1.73_m2}' range 0 to 200
fact events: series of one of mi, stroke, other
fact drugs: set of one of statin, insulin, metformin
fact sex: one of female, male
fact score: integer range 0 to 10

inclusion I1 "Recent low eGFR":
  min(egfr over last 30 days) < 60 'mL/min/{1.73_m2}' and count(egfr over last 90 days) >= 2
inclusion I2 "Adult, by calendar":
  time_since(started) >= 18 years or age between 18 years and 80 years
exclusion E1 "Dialysis within 3 months": time_since(last_dialysis) <= 3 months
exclusion E2 "Two low eGFR in a row":
  consecutive(egfr over last 90 days where value < 15 'mL/min/{1.73_m2}') >= 2
exclusion E3 "Stroke or MI before admission":
  any(events over last 6 months before admitted) in {mi, stroke}
exclusion E4 "Insulin without metformin": drugs contains insulin and not (drugs contains metformin)
exclusion E5 "eGFR falling":
  latest(egfr over last 90 days) < earliest(egfr over last 90 days) - 10 'mL/min/{1.73_m2}'
  and all(egfr over last 90 days) > 5 'mL/min/{1.73_m2}'
exclusion E6 "High mean": mean(egfr from started to admitted) > 150 'mL/min/{1.73_m2}'
exclusion E7 "Score": if sex = female then score >= 7 else first_known(score, 3) > 8
exclusion E8 "Admitted long after the start": admitted - started > 400 days
exclusion E9 "No eGFR after admission":
  exists(egfr over last 30 days) and last_time(egfr over last 30 days) < admitted
exclusion E10 "Never dialysed but old": last_dialysis is never and abs(age - 50 years) > 25 years
"""


def _pins(encoder: Encoder, protocol: Any, F: list[Any]) -> list[Any] | None:
    """Constraints fixing every fact of the encoding to the patient's values (None when a
    value cannot be pinned, e.g. a time with a fraction of a second)."""
    out = []
    for fact in protocol.facts:
        var = encoder.facts.vars.get(fact.name)
        if var is None:
            continue
        x = F[fact.index]
        if x is UNKNOWN:
            out.append(z3.Not(var.known))
            continue
        out.append(var.known)
        t = fact.type
        if isinstance(t, SeriesT):
            times, values = x
            if encoder.explicit and len(times) > len(var.observations):
                return None
            for j, o in enumerate(var.observations):
                if j >= len(times):
                    out.append(z3.Not(o.present))
                    continue
                if not float(times[j]).is_integer():
                    return None
                out += [o.present, o.at == real(times[j]), o.value == _value(t.element, values[j])]
        elif isinstance(t, SetT):
            out += [m == (item in x) for item, m in var.members.items()]
        elif isinstance(t, TimeT):
            if x is NEVER:
                out.append(var.never)
                continue
            out.append(z3.Not(var.never))
            if var.day is not None:
                out.append(var.day == int(x // DAY))
            elif encoder.explicit and not float(x).is_integer():
                return None
            else:
                out.append(var.value == real(x))
        else:
            out.append(var.value == _value(t, x))
    return out


def _value(t: Any, x: Any) -> Any:
    if isinstance(t, BoolT):
        return z3.BoolVal(bool(x))
    if isinstance(t, ChoiceT | TextT):
        return z3.StringVal(x)
    return real(x)


def _wanted(tris: dict[str, Any], expected: dict[str, str]) -> list[Any]:
    return [
        {"met": tri.t, "not_met": tri.f, "unknown": tri.unknown}[expected[cid]]
        for cid, tri in tris.items()
    ]


def _outcome(model: Any, tri: Any) -> str:
    if z3.is_true(model.eval(tri.t, model_completion=True)):
        return "met"
    if z3.is_true(model.eval(tri.f, model_completion=True)):
        return "not_met"
    return "unknown"


def _check(protocol: Any, patient: dict[str, Any]) -> None:
    program = protocol._program
    F, _, problems = program.reader.read(patient, extra=1)
    assert not problems
    as_of = parse_instant(patient["as_of"], "a datetime")
    result = protocol.evaluate(patient)
    expected = {c.id: c.outcome.value for c in result.criteria}
    longest = max([len(v[0]) for v, f in zip(F, protocol.facts, strict=False)
                   if isinstance(f.type, SeriesT) and v is not UNKNOWN] or [1])  # fmt: skip

    exact = Encoder(explicit=True, as_of=as_of, observations=max(longest, 1))
    tris = {c.id: exact.criterion(protocol.checked, c) for c in protocol.criteria}
    pins = _pins(exact, protocol, F)
    if pins is not None and not exact.abstracted:
        status, model = solve(exact, pins)
        assert status == "sat", patient
        got = {cid: _outcome(model, tri) for cid, tri in tris.items()}
        assert got == expected, patient
    elif pins is not None:  # a free value (a month shift of a fact): consistent, not forced
        status, _ = solve(exact, [*pins, *_wanted(tris, expected)])
        assert status == "sat", ("the explicit encoding excludes a patient", patient)

    sound = Encoder()
    tris = {c.id: sound.criterion(protocol.checked, c) for c in protocol.criteria}
    pins = _pins(sound, protocol, F)
    assert pins is not None
    status, _ = solve(sound, [*pins, sound.as_of == real(as_of), *_wanted(tris, expected)])
    assert status == "sat", ("the abstract encoding excludes a real patient", patient)


pytestmark = pytest.mark.slow  # long property runs against the solver

_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@_SETTINGS
@given(st.data())
def test_encodings_agree_with_the_interpreter_on_nct04194671(nct: Any, data: Any) -> None:
    _check(nct, data.draw(patients(nct)))


@_SETTINGS
@given(st.data())
def test_encodings_agree_with_the_interpreter_on_time_constructs(data: Any) -> None:
    protocol = _timey()
    _check(protocol, data.draw(patients(protocol)))


_CACHE: dict[str, Any] = {}


def _timey() -> Any:
    if "p" not in _CACHE:
        _CACHE["p"] = parse_protocol(TIMEY, "timey.rules")
    return _CACHE["p"]
