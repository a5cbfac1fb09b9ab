"""Stage 4 of the pipeline: patient input, validated and normalised once per patient.

For each declared fact a normaliser is built when the protocol loads; it turns the JSON value
into the evaluator's representation (quantities as floats in the declared unit, dates as
seconds since the epoch, series as parallel tuples of times and values, sets as frozensets)
or reports what is wrong with it, naming the fact and the JSON path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from . import units
from .check import FactInfo
from .check.types import BoolT, ChoiceT, NumT, QtyT, SeriesT, SetT, TextT, TimeT, Type
from .diagnostics import Diagnostic, error
from .suggestions import did_you_mean

#: The value of a fact, or of an expression, that is not known.


class _Unknown:
    __slots__ = ()
    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "unknown"

    def __bool__(self) -> bool:
        raise TypeError("unknown has no truth value; compare with `is UNKNOWN`")

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


class Invalid(Exception):
    """Raised inside a normaliser; becomes a `Diagnostic` with the fact's JSON path."""

    def __init__(self, code: str, message: str, path: str = "", hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.path, self.hint = code, message, path, hint


Normaliser = Callable[[Any], Any]


def parse_instant(text: Any, what: str = "a date or datetime") -> float:
    """Seconds since the epoch of an ISO 8601 date or datetime (naive means UTC)."""
    if isinstance(text, datetime):
        moment = text
    elif isinstance(text, date):
        moment = datetime(text.year, text.month, text.day)
    elif isinstance(text, str):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise Invalid(
                "PR407",
                f"`{text}` is not {what}",
                hint='write ISO 8601, e.g. "2026-03-01" or "2026-03-01T08:00:00Z"',
            ) from None
    else:
        raise Invalid("PR407", f"expected {what} as an ISO 8601 string, got {_kind(text)}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def format_instant(seconds: float, has_time: bool = True) -> str:
    """ISO text of an instant, as shown in traces."""
    moment = datetime.fromtimestamp(seconds, UTC)
    if not has_time and moment.hour == moment.minute == moment.second == 0:
        return moment.date().isoformat()
    return moment.isoformat().replace("+00:00", "Z")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"the number `{value}`"
    if isinstance(value, str):
        shown = value if len(value) <= 30 else value[:27] + "..."
        return f'the string "{shown}"'
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def _number(value: Any, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = None
        if isinstance(value, str):
            hint = "send numbers as JSON numbers, without quotes"
        raise Invalid("PR403", f"expected a number, got {_kind(value)}", hint=hint)
    if not math.isfinite(value):
        raise Invalid("PR404", f"expected a finite number, got `{value}`")
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise Invalid("PR403", f"expected a whole number, got `{value}`")
        return int(value)
    return value


def _in_range(fact: FactInfo, value: float, unit: str | None) -> float:
    if fact.low is not None and not (fact.low <= value <= fact.high):  # type: ignore[operator]
        where = f" {unit}" if unit else ""
        raise Invalid(
            "PR405",
            f"{value:g}{where} is outside the declared range {fact.low:g} to {fact.high:g}{where}",
            hint="check the value and its unit",
        )
    return value


def _quantity(fact: FactInfo, element: QtyT) -> Normaliser:
    target = element.unit
    molar_mass = element.molar_mass

    def normalise(value: Any) -> float:
        if isinstance(value, Mapping):
            unknown_keys = set(value) - {"value", "unit", "at"}
            if unknown_keys or "value" not in value:
                raise Invalid(
                    "PR411",
                    "a quantity object has the keys `value` and `unit`",
                    hint=f'write {{"value": 1.8, "unit": "{target}"}}',
                )
            unit = value.get("unit")
            number = _number(value["value"])
            if unit is None or unit == target:
                return _in_range(fact, number, target)
            if not isinstance(unit, str):
                raise Invalid("PR406", f"a unit is a UCUM string, got {_kind(unit)}")
            try:
                converted = units.conversion(unit, target, molar_mass)(number)
            except units.UnitError:
                raise _unit_problem(unit, target, molar_mass) from None
            return _in_range(fact, converted, target)
        return _in_range(fact, _number(value), target)

    return normalise


def _unit_problem(unit: str, target: str, molar_mass: float | None) -> Invalid:
    try:
        units.check_unit(unit)
    except units.UnitError:
        return Invalid(
            "PR406",
            f"`{unit}` is not a valid UCUM unit",
            "",
            f"use a UCUM code such as `{target}`",
        )
    if molar_mass is None and units.needs_molar_mass(unit, target):
        return Invalid(
            "PR406",
            f"`{unit}` cannot be converted to `{target}` without a molar mass",
            "",
            f"send the value in `{target}`, or declare `molar_mass` on the fact",
        )
    return Invalid(
        "PR406",
        f"`{unit}` cannot be converted to `{target}` (different dimensions)",
        "",
        f"send the value in `{target}` or a unit of the same dimension",
    )


def _element(fact: FactInfo, type_: Type) -> Normaliser:
    match type_:
        case BoolT():

            def boolean(value: Any) -> bool:
                if not isinstance(value, bool):
                    raise Invalid("PR403", f"expected `true` or `false`, got {_kind(value)}")
                return value

            return boolean
        case NumT(integer=integer):
            unit = None
            return lambda value: _in_range(fact, _number(value, integer), unit)
        case QtyT():
            return _quantity(fact, type_)
        case TimeT(has_time=has_time):
            what = "a datetime" if has_time else "a date"
            return lambda value: parse_instant(value, what)
        case TextT():

            def text(value: Any) -> str:
                if not isinstance(value, str):
                    raise Invalid("PR403", f"expected a string, got {_kind(value)}")
                return value

            return text
        case ChoiceT(choices=choices):
            allowed = frozenset(choices)

            def choice(value: Any) -> str:
                if value in allowed:
                    return value  # type: ignore[no-any-return]
                if not isinstance(value, str):
                    raise Invalid("PR403", f"expected one of the choices, got {_kind(value)}")
                raise Invalid(
                    "PR409",
                    f'"{value}" is not a choice of `{fact.name}`',
                    hint=did_you_mean(value, choices)
                    or "the choices are " + ", ".join(f'"{c}"' for c in choices),
                )

            return choice
    raise AssertionError(type_)  # pragma: no cover


def _series(fact: FactInfo, element: Normaliser) -> Normaliser:
    def normalise(value: Any) -> tuple[tuple[float, ...], tuple[Any, ...]]:
        if not isinstance(value, list | tuple):
            raise Invalid(
                "PR403",
                f"a series is a list of observations, got {_kind(value)}",
                hint='write [{"value": 2.1, "at": "2026-03-01T08:00:00Z"}, …]',
            )
        observations = []
        for i, item in enumerate(value):
            observations.append(_observation(item, i, element))
        observations.sort(key=lambda o: o[0])
        return tuple(o[0] for o in observations), tuple(o[1] for o in observations)

    return normalise


def _observation(item: Any, i: int, element: Normaliser) -> tuple[float, Any]:
    if not isinstance(item, Mapping):
        raise Invalid(
            "PR411",
            f"an observation is an object with `value` and `at`, got {_kind(item)}",
            f"[{i}]",
            'write {"value": 2.1, "at": "2026-03-01T08:00:00Z"}',
        )
    if "at" not in item or item["at"] is None:
        raise Invalid(
            "PR408",
            "observation has no `at` time",
            f"[{i}]",
            'add when it was observed, e.g. "at": "2026-03-01T08:00:00Z"',
        )
    if item.get("value") is None:
        raise Invalid("PR411", "observation has no `value`", f"[{i}].value")
    try:
        at = parse_instant(item["at"], "a datetime")
    except Invalid as exc:
        exc.path = f"[{i}].at"
        raise
    try:
        return at, element(item if "unit" in item else item["value"])
    except Invalid as exc:
        exc.path = f"[{i}]" + (exc.path or ".value")
        raise


def _set(fact: FactInfo, element: Normaliser) -> Normaliser:
    def normalise(value: Any) -> frozenset[Any]:
        if not isinstance(value, list | tuple):
            raise Invalid(
                "PR403",
                f"a set is a list, got {_kind(value)}",
                hint='write ["metformin", "insulin"]',
            )
        items = []
        for i, item in enumerate(value):
            try:
                items.append(element(item))
            except Invalid as exc:
                exc.path = f"[{i}]"
                raise
        return frozenset(items)

    return normalise


def normaliser(fact: FactInfo) -> Normaliser:
    """The function that validates and normalises one JSON value of `fact`."""
    match fact.type:
        case SeriesT(element=element):
            inner = _element(fact, element)
            if isinstance(element, QtyT):
                quantity = inner

                def observation_value(item: Any) -> Any:
                    if isinstance(item, Mapping):
                        return quantity({"value": item.get("value"), "unit": item.get("unit")})
                    return quantity(item)

                return _series(fact, observation_value)
            return _series(
                fact, lambda item: inner(item["value"] if isinstance(item, Mapping) else item)
            )
        case SetT(element=element):
            return _set(fact, _element(fact, element))
    return _element(fact, fact.type)


class PatientReader:
    """Turns a patient record into the list of normalised fact values the evaluator reads."""

    def __init__(self, facts: tuple[FactInfo, ...]) -> None:
        self.facts = facts
        self.slots = {f.name: f.index for f in facts}
        self.normalisers = {f.name: (f.index, normaliser(f)) for f in facts}
        self.size = len(facts)

    def read(
        self, patient: Any, ignore_unknown: bool = False
    ) -> tuple[list[Any], Any, list[Diagnostic]]:
        """(values by slot, the patient's raw `as_of` or None, diagnostics)."""
        if not isinstance(patient, Mapping):
            return (
                [],
                None,
                [
                    error(
                        "PR401",
                        f"a patient record is a JSON object, got {_kind(patient)}",
                        None,
                        path="$",
                        help='write {"age": 54, …}',
                    )
                ],
            )
        values = [UNKNOWN] * self.size
        problems: list[Diagnostic] = []
        normalisers = self.normalisers
        as_of = None
        for name, raw in patient.items():
            entry = normalisers.get(name)
            if entry is None:
                if name == "as_of":
                    as_of = raw
                elif not ignore_unknown:
                    problems.append(self._undeclared(name))
                continue
            if raw is None:
                continue
            try:
                values[entry[0]] = entry[1](raw)
            except Invalid as exc:
                problems.append(
                    error(
                        exc.code,
                        f"fact `{name}`: {exc.message}",
                        None,
                        path=f"$.{name}{exc.path}",
                        help=exc.hint,
                    )
                )
        return values, as_of, problems

    def _undeclared(self, name: Any) -> Diagnostic:
        text = str(name)
        return error(
            "PR402",
            f"`{text}` is not a fact this protocol declares",
            None,
            path=f"$.{text}",
            help=did_you_mean(text, self.slots)
            or "remove it, or pass ignore_unknown=True (`--ignore-unknown`) to accept extra keys",
        )
