"""The variables of a patient: one set per declared fact, shared by every protocol encoded.

A fact is a `known` flag and a value of its declared type, constrained as patient data is
(the declared range, the choices, `past`, `or never`, years 1 to 9999). When two protocols
(an amendment's old and new) declare the same fact, they read the same variables: a patient
is one record. A quantity declared in another unit is converted; a declaration that cannot
be reconciled (another type) gets its own variables and is listed in `Facts.conflicts`.

The explicit encoding (for witnesses) gives a series `observations` present-or-not
observations, in time order; the abstract one (for proofs) leaves a series to
the windows that read it (see `windows`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import z3

from ... import units
from ...calendar import DAY
from ...check.model import FactInfo
from ...check.types import BoolT, ChoiceT, NumT, QtyT, SeriesT, SetT, TextT, TimeT, Type
from .values import FALSE, Observation, real

#: Instants patient data can hold: 0001-01-01 to 9999-12-31 (seconds since 1970).
FIRST_DAY, LAST_DAY = -719162, 2932896


@dataclass
class FactVar:
    """The variables of one fact (see the module docstring)."""

    name: str
    info: FactInfo
    known: z3.BoolRef
    value: Any = None  # Bool, Real, String (scalars), Int (a date's day number) -> `day`
    day: Any = None
    never: z3.BoolRef = FALSE
    members: dict[str, z3.BoolRef] = field(default_factory=dict)  # set facts, by item
    choices: tuple[str, ...] | None = None  # of a choice fact or a set / series of choices
    observations: list[Observation] = field(default_factory=list)
    unit: str | None = None  # of a quantity (or a series' quantities), in which `value` is


@dataclass(frozen=True)
class Reading:
    """How one protocol reads a fact: its variables and the conversion into its own unit."""

    var: FactVar
    factor: float = 1.0
    offset: float = 0.0

    def convert(self, x: Any) -> Any:
        if self.factor == 1.0 and self.offset == 0.0:
            return x
        return x * real(self.factor) + real(self.offset)


def _element(t: Type) -> Type:
    return t.element if isinstance(t, SeriesT | SetT) else t


def _same_kind(a: Type, b: Type) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, SeriesT | SetT):
        return _same_kind(a.element, b.element)  # type: ignore[union-attr]
    if isinstance(a, TimeT):
        return a.has_time == b.has_time  # type: ignore[union-attr]
    if isinstance(a, NumT):
        return a.integer == b.integer  # type: ignore[union-attr]
    return True


class Facts:
    """Every fact's variables, created on first use (see the module docstring)."""

    def __init__(self, side: list[Any], explicit: bool, as_of: Any, day_as_of: Any, k: int):
        self.side = side
        self.explicit = explicit
        self.as_of = as_of
        self.day_as_of = day_as_of  # a thunk: the day number of as_of (a formula)
        self.k = k
        self.vars: dict[str, FactVar] = {}
        self.conflicts: dict[str, str] = {}  # fact name -> why its declarations differ
        self._count = 0
        self._seen: dict[int, tuple[FactInfo, Reading]] = {}  # by id of a declaration

    def reading(self, info: FactInfo) -> Reading:
        """The variables `info`'s protocol reads for this fact (declared on first use)."""
        seen = self._seen.get(id(info))
        if seen is not None and seen[0] is info:
            return seen[1]
        reading = self._reading(info)
        self._seen[id(info)] = (info, reading)
        return reading

    def _reading(self, info: FactInfo) -> Reading:
        var = self.vars.get(info.name)
        if var is None:
            var = self.vars[info.name] = self._declare(info.name, info)
            self._constrain(var, info)
            return Reading(var)
        if var.info is info:
            return Reading(var)
        return self._again(var, info)

    def _again(self, var: FactVar, info: FactInfo) -> Reading:
        """A second declaration of a fact (the other protocol of a diff)."""
        old, new = var.info.type, info.type
        if not _same_kind(old, new):
            self.conflicts[info.name] = f"declared {old} before, {new} now"
            key = f"{info.name}#{len(self.conflicts)}"
            other = self.vars.get(key)
            if other is None:
                other = self.vars[key] = self._declare(key, info)
                self._constrain(other, info)
            return Reading(other)
        reading = Reading(var)
        element = _element(new)
        if isinstance(element, QtyT) and var.unit is not None and element.unit != var.unit:
            try:
                conversion = units.conversion(var.unit, element.unit, element.molar_mass)
            except units.UnitError:
                self.conflicts[info.name] = f"unit `{var.unit}` before, `{element.unit}` now"
                return reading
            reading = Reading(var, conversion.factor, conversion.offset)
        self._constrain(var, info, reading)
        return reading

    def fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}!{self._count}"

    def _declare(self, key: str, info: FactInfo) -> FactVar:
        t = info.type
        var = FactVar(key, info, z3.Bool(f"{key}?"))
        element = _element(t)
        if isinstance(element, QtyT):
            var.unit = element.unit
        if isinstance(element, ChoiceT):
            var.choices = element.choices
        if isinstance(t, SeriesT):
            if self.explicit:
                var.observations = self._observations(key, t.element)
            return var
        if isinstance(t, SetT):
            return var
        var.value = self.scalar(key, t)
        if isinstance(t, TimeT) and not t.has_time:
            var.day = z3.Int(f"{key}.day")
            var.value = z3.ToReal(var.day) * real(DAY)
        if isinstance(t, TimeT) and t.never:
            var.never = z3.Bool(f"{key}.never")
        return var

    def scalar(self, key: str, t: Type) -> Any:
        """A variable holding one value of type `t` (no known flag)."""
        if isinstance(t, BoolT):
            return z3.Bool(key)
        if isinstance(t, ChoiceT | TextT):
            return z3.String(key)
        if isinstance(t, TimeT) and self.explicit:
            return z3.ToReal(z3.Int(key))  # whole seconds: a readable witness
        if isinstance(t, NumT) and t.integer:
            return z3.ToReal(z3.Int(key))
        return z3.Real(key)

    def _observations(self, key: str, element: Type) -> list[Observation]:
        out = []
        for j in range(self.k):
            present = z3.Bool(f"{key}[{j}]?")
            at = z3.ToReal(z3.Int(f"{key}[{j}].at"))
            out.append(Observation(present, at, self.scalar(f"{key}[{j}]", element)))
        for j in range(1, self.k):
            before, now = out[j - 1], out[j]
            self.side.append(z3.Implies(now.present, before.present))
            self.side.append(z3.Implies(now.present, before.at <= now.at))
        for o in out:
            self.side += [o.at >= real(FIRST_DAY * DAY), o.at < real((LAST_DAY + 1) * DAY)]
        return out

    def _constrain(self, var: FactVar, info: FactInfo, reading: Reading | None = None) -> None:
        """What patient data allows for this declaration (its range, choices, `past`, …)."""
        reading = reading or Reading(var)
        t = info.type
        element = _element(t)
        values = [var.value] if var.value is not None else []
        if isinstance(t, SeriesT):
            values = [o.value for o in var.observations]
        for x in values:
            self.side += self._value_constraints(var, element, info, reading.convert(x))
        if isinstance(t, SetT) and isinstance(element, ChoiceT):
            allowed = set(element.choices)
            var.choices = tuple(c for c in var.choices or () if c in allowed)
            for item, member in var.members.items():
                if item not in allowed:
                    self.side.append(z3.Not(member))
        if isinstance(t, TimeT):
            self._time_constraints(var, t, info)

    def _value_constraints(self, var: FactVar, element: Type, info: FactInfo, x: Any) -> list[Any]:
        out = []
        if info.low is not None and info.high is not None:
            out += [x >= real(info.low), x <= real(info.high)]
        if isinstance(element, ChoiceT):
            out.append(z3.Or([x == z3.StringVal(c) for c in element.choices]))
        return out

    def _time_constraints(self, var: FactVar, t: TimeT, info: FactInfo) -> None:
        low, high = FIRST_DAY, LAST_DAY
        if var.day is not None:
            self.side += [var.day >= low, var.day <= high]
        else:
            self.side += [var.value >= real(low * DAY), var.value < real((high + 1) * DAY)]
        if not t.never and not z3.is_false(var.never):
            self.side.append(z3.Not(var.never))
        if info.past:
            limit = z3.ToReal(self.day_as_of()) * real(DAY) if not t.has_time else self.as_of
            self.side.append(z3.Implies(z3.And(var.known, z3.Not(var.never)), var.value <= limit))

    def member(self, var: FactVar, item: str) -> z3.BoolRef:
        """The formula "set fact `var` holds `item`"."""
        found = var.members.get(item)
        if found is None:
            found = var.members[item] = z3.Bool(f"{var.name}∋{item}")
            if var.choices is not None and item not in var.choices:
                self.side.append(z3.Not(found))
        return found
