"""Units for generated data: which units a value can be sent in, and its exact value there."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import cache

from .. import units as _units

#: UCUM units tried as alternatives to a fact's declared unit.
CANDIDATE_UNITS = (
    *("mg/dL", "mg/L", "g/L", "g/dL", "ug/mL", "umol/L", "mmol/L"),
    *("/uL", "/mm3", "/L", "10*3/uL", "10*9/L"),
    *("a", "mo", "wk", "d", "h", "min", "s"),
    *("%", "mL/kg/h", "L/kg/h", "mg/d", "g/d", "mg/h"),
    *("mL/min/{1.73_m2}", "L/h/{1.73_m2}", "mL/s/{1.73_m2}"),
    *("kg", "g", "cm", "m", "mm[Hg]", "U/L", "/min", "kg/m2"),
)
_ANNOTATION = re.compile(r"\{[^}]*\}")


@cache
def compatible_units(unit: str, molar_mass: float | None = None) -> tuple[str, ...]:
    """The declared unit and the `CANDIDATE_UNITS` a value in `unit` converts into.

    A unit with a UCUM annotation (``{1.73_m2}``) only matches units with the same annotation,
    so ``mL/min`` is not offered for an eGFR.
    """
    found = [unit]
    for candidate in CANDIDATE_UNITS:
        if candidate == unit or _ANNOTATION.findall(candidate) != _ANNOTATION.findall(unit):
            continue
        try:
            _units.conversion(unit, candidate, molar_mass)
            _units.conversion(candidate, unit, molar_mass)
        except _units.UnitError:
            continue
        found.append(candidate)
    return tuple(found)


def exact_in(value: float, unit: str, target: str, molar_mass: float | None = None) -> float | None:
    """`value` (in `unit`) expressed exactly in `target`, or None when no decimal can be.

    Exact in the decimal sense in which JSON carries numbers: the value's decimal times the
    exact ratio of the two units is a decimal that a float holds as written. ``3 'mo'`` is
    ``91.3125 'd'`` and ``60 'mL/min/{1.73_m2}'`` is ``3.6 'L/h/{1.73_m2}'``, but three months
    are no decimal number of weeks. A correct engine reads an exact re-expression back as
    exactly the same value; that is what the unit-invariance law checks.
    """
    if unit == target:
        return value
    factor = _exact_factor(unit, target, molar_mass)
    if factor is None or not math.isfinite(value):
        return None
    exact = Fraction(repr(float(value))) * factor
    if not _terminates(exact):
        return None
    there = float(exact)
    return there if Fraction(repr(there)) == exact else None


@cache
def _exact_factor(unit: str, target: str, molar_mass: float | None) -> Fraction | None:
    """The ratio of two units as a fraction with a small denominator (``50/3``), if any.

    Read from the float factors of both directions, so that a factor the units library
    rounded (16.666… for L/h -> mL/min) is recognised from its exact inverse (0.06).
    """
    forward = _units.conversion(unit, target, molar_mass)
    backward = _units.conversion(target, unit, molar_mass)
    if forward.offset or backward.offset or not forward.factor or not backward.factor:
        return None
    candidates = []
    for factor, inverse in ((forward.factor, False), (backward.factor, True)):
        ratio = Fraction(factor).limit_denominator(10**7)
        if ratio:
            candidates.append(1 / ratio if inverse else ratio)

    def close(a: float, b: float) -> bool:
        return abs(a - b) <= 1e-11 * abs(b)

    good = [
        q
        for q in candidates
        if close(float(q), forward.factor) and close(float(1 / q), backward.factor)
    ]
    return min(good, key=lambda q: q.denominator, default=None)


def _terminates(number: Fraction) -> bool:
    """Whether a fraction has a finite decimal expansion."""
    denominator = number.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    return denominator == 1
