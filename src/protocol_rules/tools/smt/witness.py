"""Solving, and models as patient records: a witness is plain JSON that `eval` reads.

`solve` runs one query (the encoder's side constraints and the given formulas) with a time
limit. `find_witness` searches the explicit encoding for a model, turns it into a patient
record and hands it to a `confirm` function (which evaluates it with the interpreter); a
model that the interpreter does not confirm (floating point rounding at a boundary, an
abstracted construct) is blocked and the search tries again, first with round numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import z3

from ...calendar import DAY
from ...check.types import BoolT, ChoiceT, NumT, QtyT, SeriesT, SetT, TimeT
from .encode import Encoder
from .facts import FactVar

SAT, UNSAT, UNKNOWN = "sat", "unsat", "unknown"


def _constants(e: Any, memo: dict[int, tuple[Any, frozenset[str]]]) -> frozenset[str]:
    """The names of the uninterpreted constants (the variables) of a formula.

    The memo holds each formula beside its result, so that its id is not reused.
    """
    key = e.get_id()
    entry = memo.get(key)
    if entry is not None:
        return entry[1]
    if z3.is_const(e):
        kind = e.decl().kind()
        found = frozenset({e.decl().name()}) if kind == z3.Z3_OP_UNINTERPRETED else frozenset()
    else:
        found = frozenset().union(*(_constants(c, memo) for c in e.children()))
    memo[key] = (e, found)
    return found


def relevant(encoder: Encoder, formulas: list[Any]) -> list[Any]:
    """The side constraints that share variables with `formulas`, transitively: the others
    are about variables the query does not mention, and satisfiable on their own."""
    memo = encoder.__dict__.setdefault("_constants_memo", {})
    side = [(c, _constants(c, memo)) for c in encoder.side]
    wanted = frozenset().union(*(_constants(f, memo) for f in formulas))
    chosen: list[Any] = []
    remaining = side
    grew = True
    while grew:
        grew = False
        rest = []
        for c, names in remaining:
            if names & wanted or not names:
                chosen.append(c)
                wanted |= names
                grew = True
            else:
                rest.append((c, names))
        remaining = rest
    return chosen


def solve(encoder: Encoder, formulas: Iterable[Any], timeout_ms: int = 10000) -> tuple[str, Any]:
    """("sat", model), ("unsat", None) or ("unknown", None) when the solver gives up."""
    formulas = list(formulas)
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(*relevant(encoder, formulas))
    solver.add(*formulas)
    result = solver.check()
    if result == z3.sat:
        return SAT, solver.model()
    if result == z3.unsat:
        return UNSAT, None
    return UNKNOWN, None


def _number(value: Any) -> int | float:
    if z3.is_int_value(value):
        return value.as_long()
    if z3.is_rational_value(value):
        fraction = Fraction(value.numerator_as_long(), value.denominator_as_long())
        return int(fraction) if fraction.denominator == 1 else float(fraction)
    if z3.is_algebraic_value(value):
        return float(value.approx(20).as_decimal(17).rstrip("?"))
    raise ValueError(f"not a number: {value}")  # pragma: no cover


def _instant(seconds: float, has_time: bool) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    if not has_time:
        return moment.date().isoformat()
    return moment.isoformat().replace("+00:00", "Z")


def _scalar(model: Any, t: Any, value: Any) -> Any:
    v = model.eval(value, model_completion=True)
    if isinstance(t, BoolT):
        return z3.is_true(v)
    if isinstance(t, ChoiceT) or z3.is_string_value(v):
        return v.as_string()
    number = _number(v)
    if isinstance(t, NumT) and t.integer:
        return int(number)
    return number


def _fact_value(model: Any, var: FactVar, unit_object: bool) -> Any:
    t = var.info.type
    if isinstance(t, SeriesT):
        out = []
        for o in var.observations:
            if not z3.is_true(model.eval(o.present, model_completion=True)):
                continue
            at = _number(model.eval(o.at, model_completion=True))
            item: dict[str, Any] = {"value": _scalar(model, t.element, o.value)}
            if unit_object and var.unit is not None:
                item["unit"] = var.unit
            item["at"] = _instant(float(at), True)
            out.append(item)
        return out
    if isinstance(t, SetT):
        items = var.choices if var.choices is not None else tuple(var.members)
        return [i for i in items if i in var.members and _true(model, var.members[i])]
    if isinstance(t, TimeT):
        if _true(model, var.never):
            return "never"
        return _instant(float(_number(model.eval(var.value, model_completion=True))), t.has_time)
    value = _scalar(model, t, var.value)
    if isinstance(t, QtyT) and unit_object:
        return {"value": value, "unit": var.unit}
    return value


def _true(model: Any, formula: Any) -> bool:
    return z3.is_true(model.eval(formula, model_completion=True))


def record_from_model(
    encoder: Encoder,
    model: Any,
    facts: Iterable[str] | None = None,
    unit_objects: Iterable[str] = (),
) -> dict[str, Any]:
    """The patient record of a model of the explicit encoding: known facts, `as_of`.

    `facts` limits the record to those names (default: every fact the encoder declared);
    `unit_objects` are quantity facts written as ``{"value": …, "unit": …}`` (when two
    protocols declare them in different units).
    """
    wanted = set(facts) if facts is not None else None
    objects = set(unit_objects)
    record: dict[str, Any] = {}
    if encoder.as_of_value is not None:
        record["as_of"] = _instant(encoder.as_of_value, True)
    for name, var in encoder.facts.vars.items():
        if "#" in name or (wanted is not None and name not in wanted):
            continue
        if not _true(model, var.known):
            continue
        record[name] = _fact_value(model, var, name in objects)
    return record


def _nice(encoder: Encoder, level: int) -> list[Any]:
    """Preferences that make a witness read well, strictest first (level 0 to 2; 3: none).

    Every level keeps numbers multiples of 1/100 (a decimal that floating point does not
    round across a boundary). Levels 0 and 1 also keep numbers non-negative and dates in the
    ten years before `as_of`; level 0 allows one observation per series, in the 30 days
    before `as_of`, level 1 any number in the year before.
    """
    if level >= 3:
        return []
    out = []
    now = encoder.as_of
    for var in encoder.facts.vars.values():
        t = var.info.type
        element = t.element if isinstance(t, SeriesT) else t
        values = [o.value for o in var.observations] if isinstance(t, SeriesT) else [var.value]
        if isinstance(element, QtyT | NumT):
            out += [z3.IsInt(x * 100) for x in values if x is not None]
            if level < 2:
                out += [x >= 0 for x in values if x is not None]
        if level >= 2:
            continue
        if isinstance(t, TimeT) and var.value is not None:
            out += [var.value <= now, var.value >= now - 3653 * DAY]
        for j, o in enumerate(var.observations):
            if level == 0 and j > 0:
                out.append(z3.Not(o.present))
            window = 30 * DAY if level == 0 else 366 * DAY
            out.append(z3.Implies(o.present, z3.And(o.at <= now, o.at >= now - window)))
    return out


def _block(encoder: Encoder, model: Any) -> Any:
    """A formula that excludes this model's values of the patient's variables."""
    same = []
    for var in encoder.facts.vars.values():
        for x in (var.known, var.value, *(o.value for o in var.observations)):
            if x is not None:
                same.append(x == model.eval(x, model_completion=True))
    return z3.Not(z3.And(same)) if same else z3.BoolVal(False)


def find_witness(
    encoder: Encoder,
    formulas: list[Any],
    confirm: Callable[[dict[str, Any]], bool],
    *,
    facts: Iterable[str] | None = None,
    unit_objects: Iterable[str] = (),
    tries: int = 4,
    timeout_ms: int = 10000,
) -> tuple[dict[str, Any] | None, str]:
    """A patient record satisfying `formulas` that `confirm` accepts.

    Returns (record, "confirmed"), (record, "unconfirmed") for the last model found when no
    model was confirmed, or (None, "none") when the explicit encoding has no model (or the
    solver gave up).
    """
    extra: list[Any] = []
    last = None
    names = list(facts) if facts is not None else None
    level = 0
    for _ in range(tries + 3):
        status, model = solve(encoder, [*formulas, *extra, *_nice(encoder, level)], timeout_ms)
        if status != SAT:
            if level >= 3:
                break
            level += 1
            continue
        record = record_from_model(encoder, model, names, unit_objects)
        last = record
        if confirm(record):
            return record, "confirmed"
        extra.append(_block(encoder, model))
    return (last, "unconfirmed") if last is not None else (None, "none")


__all__ = ["SAT", "UNKNOWN", "UNSAT", "find_witness", "record_from_model", "solve"]
_ = DAY
