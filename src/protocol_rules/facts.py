"""Stage 4 of the pipeline: patient input, validated and normalised once per patient.

For each declared fact a normaliser is built when the protocol loads; it turns the JSON value
into the evaluator's representation (quantities as floats in the declared unit, dates as
seconds since the epoch, series as parallel tuples of times and values, sets as frozensets)
or reports what is wrong with it, naming the fact and the JSON path.

This runs for every fact of every patient, so the common case goes first: a plain `dict` is
recognised by ``type(x) is dict`` before the much slower ``isinstance(x, Mapping)``, numbers
by their exact type, and each unit's conversion is looked up once per normaliser.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from . import units
from .calendar import NEVER
from .check import FactInfo
from .check.types import BoolT, ChoiceT, CodeT, NumT, QtyT, SeriesT, SetT, TextT, TimeT, Type
from .check.unit_names import shown, substance, ucum_spelling
from .diagnostics import Diagnostic, error
from .render.safe import printable
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
    if isinstance(text, str):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise Invalid(
                "PR407",
                f"`{text}` is not {what}",
                hint='write ISO 8601, e.g. "2026-03-01" or "2026-03-01T08:00:00Z"',
            ) from None
    elif isinstance(text, datetime):
        moment = text
    elif isinstance(text, date):
        moment = datetime(text.year, text.month, text.day)
    else:
        raise Invalid("PR407", f"expected {what} as an ISO 8601 string, got {_kind(text)}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.year in (1, 9999):  # an offset may push it outside what UTC can represent
        try:
            moment.astimezone(UTC)
        except (OverflowError, ValueError):
            raise Invalid("PR407", f"`{text}` is outside the years 1 to 9999 in UTC") from None
    return moment.timestamp()


def _date(value: Any) -> float:
    """A `date` fact: a calendar day, counted from 00:00 UTC; a time of day is refused."""
    if isinstance(value, str) and len(value) > 10:
        raise Invalid(
            "PR407",
            f"`{value}` has a time of day, but this fact is a date",
            hint=f'send the day only, e.g. "{value[:10]}", or declare the fact as `datetime`',
        )
    if isinstance(value, datetime) and value.time() != datetime.min.time():
        raise Invalid(  # as for the same value sent as a string
            "PR407",
            f"`{value.isoformat()}` has a time of day, but this fact is a date",
            hint="send a `date`, or declare the fact as `datetime`",
        )
    return parse_instant(value, "a date")


#: The first and last instants of the calendar Python's dates can hold (years 1 to 9999), in
#: seconds since the epoch. Date arithmetic that leaves them gives unknown (see `evaluate`).
FIRST_INSTANT = datetime(1, 1, 1, tzinfo=UTC).timestamp()
LAST_INSTANT = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC).timestamp()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_instant(seconds: float, has_time: bool = True) -> str:
    """ISO text of an instant, as shown in traces ("never" for `NEVER`); never fails, even
    outside the calendar."""
    if seconds is NEVER:
        return "never"
    try:
        moment = _EPOCH + timedelta(seconds=seconds)
    except (OverflowError, ValueError):  # evaluation never makes one; say so if it does
        return "before 0001-01-01" if seconds < 0 else "after 9999-12-31"
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
    kind = type(value)
    if kind is int and -_LARGEST < value < _LARGEST:
        return value  # type: ignore[no-any-return]
    if kind is float and not integer and math.isfinite(value):
        return value  # type: ignore[no-any-return]
    return _checked_number(value, integer)


_LARGEST = 1e300  # larger integers would overflow a float in unit conversion


def _checked_number(value: Any, integer: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = None
        if isinstance(value, str):
            hint = "send numbers as JSON numbers, without quotes"
        raise Invalid("PR403", f"expected a number, got {_kind(value)}", hint=hint)
    if isinstance(value, int) and not -_LARGEST < value < _LARGEST:
        raise Invalid("PR404", "the number is too large", hint="check the value and its unit")
    if not math.isfinite(value):
        raise Invalid("PR404", f"expected a finite number, got `{value}`")
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise Invalid("PR403", f"expected a whole number, got `{value}`")
        return int(value)
    return value


def _range_check(fact: FactInfo, unit: str | None) -> Callable[[float], float] | None:
    """A function that rejects values outside the fact's declared range (None: no range)."""
    low, high = fact.low, fact.high
    if low is None:
        return None
    where = f" {unit}" if unit else ""

    def in_range(value: float) -> float:
        if low <= value <= high:  # type: ignore[operator]
            return value
        raise Invalid(
            "PR405",
            f"{value:g}{where} is outside the declared range {low:g} to {high:g}{where}",
            hint="check the value and its unit",
        )

    return in_range


def _in_unit(fact: FactInfo, element: QtyT) -> Callable[[Any, Any], float]:
    """``in_unit(number, unit)``: a JSON number in `unit` (None: the declared unit), converted.

    Conversions are looked up once per unit string; the per-patient cost is a dict lookup and
    a multiplication.
    """
    target = element.unit
    molar_mass = element.molar_mass
    in_range = _range_check(fact, target)
    known: dict[str, Callable[[float], float]] = {}

    def in_unit(value: Any, unit: Any) -> float:
        number = _number(value)
        if unit is not None and unit != target:
            convert = known.get(unit) if type(unit) is str else None
            if convert is None:
                convert = _conversion(unit, target, molar_mass, fact).__call__
                if len(known) < CONVERSIONS_PER_FACT:  # a stream of odd spellings: stop caching
                    known[unit] = convert
            number = convert(number)
            if number - number != 0:
                raise Invalid(
                    "PR404",
                    f"`{value:g} {unit}` is too large: it overflows in `{target}`",
                    hint="check the value and its unit",
                )
        return number if in_range is None else in_range(number)

    in_unit.cache = known  # type: ignore[attr-defined]  # for tests: it stays bounded
    return in_unit


#: Unit spellings whose conversion each quantity fact remembers. Records use a handful; a
#: stream of unique spellings (a fuzzer, a broken exporter) must not grow memory without end.
CONVERSIONS_PER_FACT = 32


def _conversion(
    unit: Any, target: str, molar_mass: float | None, fact: FactInfo | None = None
) -> units.Conversion:
    if not isinstance(unit, str):
        raise Invalid("PR406", f"a unit is a UCUM string, got {_kind(unit)}")
    try:
        return units.conversion(unit, target, molar_mass)
    except units.UnitError:
        raise _unit_problem(unit, target, molar_mass, fact) from None


_QUANTITY_KEYS = frozenset(("value", "unit", "at"))


def _quantity(in_unit: Callable[[Any, Any], float], target: str) -> Normaliser:
    """A quantity: a bare number in the declared unit, or ``{"value": …, "unit": …}``."""

    def normalise(value: Any) -> float:
        kind = type(value)
        if kind is not int and kind is not float and isinstance(value, Mapping):
            if not value.keys() <= _QUANTITY_KEYS or "value" not in value:
                raise Invalid(
                    "PR411",
                    "a quantity object has the keys `value` and `unit`",
                    hint=f'write {{"value": 1.8, "unit": "{target}"}}',
                )
            return in_unit(value["value"], value.get("unit"))
        return in_unit(value, None)

    return normalise


def _unit_problem(
    unit: str, target: str, molar_mass: float | None, fact: FactInfo | None = None
) -> Invalid:
    try:
        units.check_unit(unit)
    except units.UnitError:
        fix = ucum_spelling(unit)
        return Invalid(
            "PR406",
            f"`{shown(unit)}` is not a valid UCUM unit",
            ".unit",
            f"did you mean `{fix}`? units are UCUM codes"
            if fix
            else f"use a UCUM code such as `{target}`",
        )
    if molar_mass is None and units.needs_molar_mass(unit, target):
        what, clause = substance(unit, target, *((fact.name, fact.description) if fact else ()))
        return Invalid(
            "PR406",
            f"`{unit}` cannot be converted to `{target}` without the molar mass of {what}",
            ".unit",
            f"send the value in `{target}`, or declare `{clause or 'molar_mass'}` on the fact",
        )
    return Invalid(
        "PR406",
        f"`{unit}` cannot be converted to `{target}` (different dimensions)",
        ".unit",
        f"send the value in `{target}` or a unit of the same dimension",
    )


def _boolean(value: Any) -> bool:
    if value is True or value is False:
        return value  # type: ignore[no-any-return]
    raise Invalid("PR403", f"expected `true` or `false`, got {_kind(value)}")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise Invalid("PR403", f"expected a string, got {_kind(value)}")


def _plain_number(fact: FactInfo, integer: bool) -> Normaliser:
    in_range = _range_check(fact, None)
    if in_range is None:
        return lambda value: _number(value, integer)
    return lambda value: in_range(_number(value, integer))


def _choice(fact: FactInfo, choices: tuple[str, ...]) -> Normaliser:
    allowed = frozenset(choices)

    def choice(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("PR403", f"expected one of the choices, got {_kind(value)}")
        if value in allowed:
            return value
        raise Invalid(
            "PR409",
            f'"{value}" is not a choice of `{fact.name}`',
            hint=did_you_mean(value, choices)
            or "the choices are " + ", ".join(f'"{c}"' for c in choices),
        )

    return choice


def _never_or(fact: FactInfo, instant: Normaliser) -> Normaliser:
    """A `date or never` fact: the string "never" is `NEVER`, anything else a date."""
    if fact.never:
        return lambda value: NEVER if value == "never" else instant(value)

    def no_never(value: Any) -> Any:
        if value == "never":
            raise Invalid(
                "PR420",
                '"never" is not a date, and this fact is not declared `or never`',
                hint=f"send a date, leave the fact out if it is unknown, or declare it "
                f"`fact {fact.name}: {fact.type} or never`",
            )
        return instant(value)

    return no_never


def _element(fact: FactInfo, type_: Type) -> Normaliser:
    match type_:
        case BoolT():
            return _boolean
        case NumT(integer=integer):
            return _plain_number(fact, integer)
        case QtyT(unit=unit):
            return _quantity(_in_unit(fact, type_), unit)
        case TimeT(has_time=True):
            return _never_or(fact, lambda value: parse_instant(value, "a datetime"))
        case TimeT(has_time=False):
            return _never_or(fact, _date)
        case TextT():
            return _text
        case ChoiceT(choices=choices):
            return _choice(fact, choices)
        case CodeT():
            return _code
    raise AssertionError(type_)  # pragma: no cover


def _code(value: Any) -> str:
    """A code: ``"SYSTEM#code"`` or a FHIR Coding object (docs/patient-data.md#codes)."""
    from .codes import CodeValueError, read_code

    try:
        return read_code(value)
    except CodeValueError as exc:
        raise Invalid(exc.code, exc.message, hint=exc.hint) from None


#: Normalises one observation's value: ``observed(observation, its "value")``.
Observed = Callable[[Mapping[str, Any], Any], Any]


def _series(observed: Observed) -> Normaliser:
    def normalise(value: Any) -> tuple[tuple[float, ...], tuple[Any, ...]]:
        if not isinstance(value, list | tuple):
            raise Invalid(
                "PR403",
                f"a series is a list of observations, got {_kind(value)}",
                hint='write [{"value": 2.1, "at": "2026-03-01T08:00:00Z"}, …]',
            )
        if not value:
            return (), ()
        observations = [_observation(item, i, observed) for i, item in enumerate(value)]
        observations.sort(key=_time)  # stable: observations at the same time keep their order
        times, values = zip(*observations, strict=True)
        return times, values

    return normalise


def _time(observation: tuple[float, Any]) -> float:
    return observation[0]


_OBSERVATION_KEYS = frozenset({"value", "unit", "at"})


def _observation(item: Any, i: int, observed: Observed) -> tuple[float, Any]:
    if not (type(item) is dict or isinstance(item, Mapping)):
        raise Invalid(
            "PR411",
            f"an observation is an object with `value` and `at`, got {_kind(item)}",
            f"[{i}]",
            'write {"value": 2.1, "at": "2026-03-01T08:00:00Z"}',
        )
    at = item.get("at")
    if at is None:
        raise Invalid(
            "PR408",
            "observation has no `at` time",
            f"[{i}]",
            'add when it was observed, e.g. "at": "2026-03-01T08:00:00Z"',
        )
    value = item.get("value")
    if value is None:
        raise Invalid("PR411", "observation has no `value`", f"[{i}].value")
    if len(item) > 2 and not item.keys() <= _OBSERVATION_KEYS:
        extra = ", ".join(f"`{k}`" for k in sorted(map(str, item.keys() - _OBSERVATION_KEYS)))
        raise Invalid(
            "PR411",
            f"an observation has the keys `value`, `unit` and `at`, not {extra}",
            f"[{i}]",
            "remove the other keys",
        )
    try:
        at = parse_instant(at, "a datetime")
    except Invalid as exc:
        exc.path = f"[{i}].at"
        raise
    try:
        return at, observed(item, value)
    except Invalid as exc:
        exc.path = f"[{i}]" + (exc.path or ".value")
        raise


def _observed_quantity(fact: FactInfo, element: QtyT) -> Observed:
    """An observation's value in its own `unit` key, or a bare value or quantity object."""
    in_unit = _in_unit(fact, element)

    def observed(item: Mapping[str, Any], value: Any) -> float:
        if "unit" in item:
            return in_unit(value, item["unit"])
        if type(value) is dict or isinstance(value, Mapping):
            return in_unit(value.get("value"), value.get("unit"))
        return in_unit(value, None)

    return observed


def _observed(element: Normaliser) -> Observed:
    """An observation's value; a ``{"value": …}`` object nested in it is unwrapped."""

    def observed(item: Mapping[str, Any], value: Any) -> Any:
        if "unit" not in item and (type(value) is dict or isinstance(value, Mapping)):
            value = value.get("value")
        return element(value)

    return observed


def _set(element: Normaliser) -> Normaliser:
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
        case SeriesT(element=QtyT() as element):
            return _series(_observed_quantity(fact, element))
        case SeriesT(element=CodeT()):  # a Coding object is the value, not a wrapper
            return _series(lambda item, value: _code(value))
        case SeriesT(element=element):
            return _series(_observed(_element(fact, element)))
        case SetT(element=element):
            return _set(_element(fact, element))
    return _element(fact, fact.type)


class PatientReader:
    """Turns a patient record into the list of normalised fact values the evaluator reads."""

    def __init__(self, facts: tuple[FactInfo, ...]) -> None:
        self.facts = facts
        self.slots = {f.name: f.index for f in facts}
        self.normalisers = {f.name: (f.index, normaliser(f)) for f in facts}
        self.size = len(facts)

    def read(
        self, patient: Any, ignore_unknown: bool = False, extra: int = 0
    ) -> tuple[list[Any], Any, list[Diagnostic]]:
        """(values by slot, the patient's raw `as_of` or None, diagnostics).

        The list has `extra` more slots at its end (UNKNOWN), for the caller to fill.
        """
        if not (type(patient) is dict or isinstance(patient, Mapping)):
            return [], None, [self._not_an_object(patient)]
        values = [UNKNOWN] * (self.size + extra)
        problems: list[Diagnostic] = []
        normalisers = self.normalisers
        as_of = None
        for name, raw in patient.items():
            entry = normalisers.get(name)
            if entry is None:
                if name == "as_of":
                    as_of = raw
                elif name == "id":
                    pass  # the record's identifier, as screening reads it (no fact is named id)
                elif not ignore_unknown:
                    problems.append(self._undeclared(name))
            elif raw is not None:
                try:
                    values[entry[0]] = entry[1](raw)
                except Invalid as exc:
                    problems.append(_problem(name, exc))
        return values, as_of, problems

    def _not_an_object(self, patient: Any) -> Diagnostic:
        return error(
            "PR401",
            f"a patient record is a JSON object, got {printable(_kind(patient), newlines=False)}",
            None,
            path="$",
            help='write {"age": 54, …}',
        )

    def _undeclared(self, name: Any) -> Diagnostic:
        text = printable(str(name), newlines=False)  # a key is echoed: escape what it hides
        return error(
            "PR402",
            f"`{text}` is not a fact this protocol declares",
            None,
            path=f"$.{text}",
            help=did_you_mean(text, self.slots)
            or "remove it, or pass ignore_unknown=True (`--ignore-unknown`) to accept extra keys",
        )


def _problem(name: str, exc: Invalid) -> Diagnostic:
    """The diagnostic of one bad fact; values echoed from the record are made printable."""
    return error(
        exc.code,
        f"fact `{name}`: {printable(exc.message, newlines=False)}",
        None,
        path=f"$.{name}{exc.path}",
        help=printable(exc.hint, newlines=False) if exc.hint else None,
    )
