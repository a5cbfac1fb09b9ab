"""The one door to pint and ucumvert: UCUM units parsed once, conversion factors cached.

Every unit string is parsed once per process and every conversion factor computed once per
(from, to, molar mass) triple; the per-patient path only multiplies floats. Conversions are
affine (``factor * x + offset``) so that temperatures convert too.
"""

from __future__ import annotations

import math
import re
import threading
from functools import cache
from typing import Any

import attrs

_lock = threading.Lock()
_registry: Any = None


class UnitError(Exception):
    """A unit string is not valid UCUM, or two units cannot be converted into each other."""


def registry() -> Any:
    """The pint registry with UCUM definitions, built on first use (about 0.3 s)."""
    global _registry
    if _registry is None:
        with _lock:
            if _registry is None:
                from ucumvert import PintUcumRegistry

                _registry = PintUcumRegistry()
    return _registry


@cache
def _parse(ucum: str) -> Any:
    reg = registry()
    if not ucum.strip():
        raise UnitError("an empty unit is not valid UCUM; write `'1'` for a pure number")
    try:
        with _lock:
            quantity = reg.from_ucum(ucum)
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnitError(first_line) from None
    if not hasattr(quantity, "units"):
        try:
            quantity = reg.Quantity(float(quantity), reg.dimensionless)
        except (TypeError, ValueError):
            raise UnitError(f"`{ucum}` is only an annotation, not a unit; write `'1'`") from None
    return quantity


@cache
def _kind(ucum: str) -> tuple[tuple[str, int], ...]:
    """What a dimensionless unit is a ratio of, before cancellation: `mg/g` is mass/mass."""
    reg = registry()
    kinds: dict[str, int] = {}
    for name, exponent in _parse(ucum).units._units.items():
        dims = str(reg.get_dimensionality(name))
        if dims != "dimensionless":
            kinds[dims] = kinds.get(dims, 0) + (1 if exponent > 0 else -1)
    return tuple(sorted(kinds.items()))


def check_unit(ucum: str) -> None:
    """Raise `UnitError` unless `ucum` is a valid UCUM unit."""
    _parse(ucum)


@cache
def dimension(ucum: str) -> str:
    """The dimension of a unit in words pint understands, e.g. ``[mass] / [length] ** 3``."""
    dims = _parse(ucum).dimensionality
    return str(dims) if dims else "dimensionless"


def is_dimensionless(ucum: str) -> bool:
    return dimension(ucum) == "dimensionless"


@attrs.frozen
class Conversion:
    """``factor * x + offset``: a value in one unit expressed in another."""

    factor: float
    offset: float = 0.0

    @property
    def is_identity(self) -> bool:
        return self.factor == 1.0 and self.offset == 0.0

    def __call__(self, value: float) -> float:
        return clean(self.factor * value + self.offset)


IDENTITY = Conversion(1.0)


@cache
def conversion(source: str, target: str, molar_mass: float | None = None) -> Conversion:
    """How to convert a value in unit `source` into unit `target`.

    `molar_mass` (in g/mol) allows mass <-> amount-of-substance conversions, such as
    creatinine in mg/dL <-> umol/L. Raises `UnitError` when the units are incompatible.
    """
    if source == target:
        return IDENTITY
    src, dst = _parse(source), _parse(target)
    if not src.dimensionality and target != "1" and _kind(source) != _kind(target):
        # `mmol/mol` and `%` are both dimensionless but measure different things (HbA1c
        # IFCC vs NGSP is not a unit conversion): only like ratios convert into each other.
        raise UnitError(f"`{source}` and `{target}` are ratios of different kinds")
    zero = _convert(0.0, src, dst, molar_mass)
    one = _convert(1.0, src, dst, molar_mass)
    # Keep the factor exact; only converted values are rounded (see `clean`).
    return Conversion(one - zero, zero)


def _convert(value: float, src: Any, dst: Any, molar_mass: float | None) -> float:
    import pint

    reg = registry()
    quantity = reg.Quantity(value * src.magnitude, src.units)
    candidates = [quantity]
    if molar_mass is not None:
        mass = reg.Quantity(molar_mass, "g/mol")
        candidates += [quantity / mass, quantity * mass]
    for candidate in candidates:
        try:
            with _lock:
                return float(candidate.to(dst.units).magnitude / dst.magnitude)
        except pint.DimensionalityError:
            continue
        except Exception as exc:
            raise UnitError(str(exc)) from None
    raise UnitError(f"cannot convert `{_text(src)}` to `{_text(dst)}`")


def _text(quantity: Any) -> str:
    return f"{quantity.units:~}" or "1"


def needs_molar_mass(source: str, target: str) -> bool:
    """True when the two units differ only by an amount of substance vs. a mass."""
    try:
        conversion(source, target)
        return False
    except UnitError:
        pass
    try:
        conversion(source, target, 1.0)
        return True
    except UnitError:
        return False


def product_unit(left: str, right: str) -> str:
    """The UCUM unit of a product of quantities in `left` and `right`."""
    return _join(left, ".", right)


def quotient_unit(left: str, right: str) -> str:
    """The UCUM unit of a quotient of quantities in `left` and `right`."""
    return _join(left, "/", right)


def _join(left: str, op: str, right: str) -> str:
    def wrap(u: str) -> str:
        return u if all(c not in u for c in "./") else f"({u})"

    joined = f"{wrap(left)}{op}{wrap(right)}"
    check_unit(joined)
    return joined


def clean(value: float) -> float:
    """Round to 12 significant digits so exact boundaries survive a conversion.

    ``25 '10*9/L'`` must compare equal to ``25000 '/uL'``, not a hair below it.
    """
    if value == 0.0 or not math.isfinite(value):
        return value
    digits = 12 - math.floor(math.log10(abs(value)))
    return round(value, digits)


# --------------------------------------------------------------------------- powers and roots
# docs/language/calculation.md#powers: `height ^ 2` is in `m2`, `sqrt(area)` of `m2` is in `m`.

_FACTOR = re.compile(r"(?P<atom>[A-Za-z%]+|\[[^\]]+\])(?P<exp>[+-]?[0-9]+)?\Z")


def power_unit(ucum: str, n: int) -> str:
    """The UCUM unit of a quantity in `ucum` raised to the whole power `n` (not 0).

    A single unit takes an exponent (`m` -> `m2`, `cm2` -> `cm4`, `s` to -1 -> `s-1`); a
    compound unit becomes a product (`mL/min` squared -> `(mL/min).(mL/min)`).
    """
    if n == 0:
        raise UnitError("a unit to the power 0 is a plain number")
    match = _FACTOR.match(ucum)
    if match:
        exponent = int(match["exp"] or 1) * n
        joined = match["atom"] + ("" if exponent == 1 else str(exponent))
    else:
        part = ucum if all(c not in ucum for c in "./") else f"({ucum})"
        product = ".".join([part] * abs(n))
        joined = product if n > 0 else f"1/{product if abs(n) == 1 else f'({product})'}"
    check_unit(joined)
    return joined


def root_unit(ucum: str) -> str | None:
    """The unit whose square is `ucum` when every unit in it has an even power (`m2` -> `m`,
    `cm.cm` -> `cm`, `kg2/m4` -> `kg/m2`), else None. Only products and quotients of plain
    units are taken apart (UCUM reads `a/b.c` as `(a/b).c`)."""
    exponents: dict[str, int] = {}
    sign = 1
    for piece in re.split(r"([./])", ucum):
        if piece in (".", "/"):
            sign = 1 if piece == "." else -1
            continue
        if piece == "":  # the empty text before a leading `/`
            continue
        match = _FACTOR.match(piece)
        if not match:
            return None
        exponents[match["atom"]] = exponents.get(match["atom"], 0) + sign * int(match["exp"] or 1)
    if not exponents or any(e % 2 for e in exponents.values()):
        return None

    def factor(atom: str, exponent: int) -> str:
        return atom + ("" if exponent == 1 else str(exponent))

    up = [factor(a, e // 2) for a, e in exponents.items() if e > 0]
    down = [factor(a, -e // 2) for a, e in exponents.items() if e < 0]
    root = ".".join(up) + "".join("/" + d for d in down)
    if not root:
        return None  # everything cancelled: a plain number, handled by the caller
    try:
        check_unit(root)
    except UnitError:
        return None
    return root
