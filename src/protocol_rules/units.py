"""The one door to pint and ucumvert: UCUM units parsed once, conversion factors cached.

Every unit string is checked against cheap bounds first (its length, the size of its
exponents), because units come from untrusted patient records and the UCUM parser and pint
work in exact integers: ``'10*99999999/L'`` would otherwise compute ten to the power of a
hundred million. What a unit is (its dimension) and every conversion factor are then computed
once and kept three ways: in bounded in-memory caches, and in the user's cache folder
(`_cache`), so that a later process answers from a small JSON file without building the UCUM
registry at all; the registry (about 0.5 s) is built only when a unit is not known yet. The
per-patient path only multiplies floats. Conversions are affine (``factor * x + offset``) so
that temperatures convert too.
"""

from __future__ import annotations

import math
import os
import re
import threading
from functools import lru_cache
from typing import Any

import attrs

from . import _cache

#: Longest unit string accepted; real UCUM units are short (`mL/min/{1.73_m2}` has 16).
MAX_UNIT_LENGTH = 64
#: Largest exponent accepted on a unit (`m2`, `s-1`) or a power of ten (`10*9`).
MAX_EXPONENT = 30
#: Entries kept by each in-memory cache and by the cache file.
CACHE_SIZE = 2048

_lock = threading.RLock()
_registry: Any = None

# UCUM's `'` and `''` are the minute and second of arc; ucumvert maps them to time.
_ARC_UNITS = {"'": "arcminute", "''": "arcsecond"}


class UnitError(Exception):
    """A unit string is not valid UCUM, or two units cannot be converted into each other.

    `unit` is the unit at fault and `offset` the 0-based index of the character where the
    problem starts in it, when that is known (for pointing at it).
    """

    def __init__(self, message: str, unit: str | None = None, offset: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.unit = unit
        self.offset = offset


# --------------------------------------------------------------------------- bounds

_ANNOTATION = re.compile(r"\{[^{}]*\}")
# An exponent is the integer right after a unit symbol or after `10*` / `10^`.
_EXPONENT = re.compile(r"(?:10[*^]|[A-Za-z\]'%)])([+-]?\d+)")


def guard(ucum: str) -> None:
    """Refuse, before any parsing, a unit too long or with an exponent too large."""
    if not ucum.strip():
        raise UnitError("an empty unit is not valid UCUM; write `'1'` for a pure number", ucum)
    if len(ucum) > MAX_UNIT_LENGTH:
        raise UnitError(
            f"a unit has at most {MAX_UNIT_LENGTH} characters, this one has {len(ucum)}",
            ucum[:MAX_UNIT_LENGTH] + "…",
            MAX_UNIT_LENGTH,
        )
    bare = _ANNOTATION.sub(lambda m: " " * len(m.group()), ucum)
    for match in _EXPONENT.finditer(bare):
        digits = match.group(1)
        if abs(int(digits)) > MAX_EXPONENT:
            raise UnitError(
                f"the exponent `{digits}` is too large (at most {MAX_EXPONENT})",
                ucum,
                match.start(1),
            )


# --------------------------------------------------------------------------- the registry


def registry() -> Any:
    """The pint registry with UCUM definitions, built on first use (about 0.5 s)."""
    global _registry
    if _registry is None:
        with _lock:
            if _registry is None:
                _registry = _build_registry()
    return _registry


def _build_registry() -> Any:
    """One pint registry that parses UCUM (ucumvert's own builds pint's default one too)."""
    from pint import UnitRegistry
    from ucumvert import ucum_pint
    from ucumvert.parser import get_ucum_parser, parse_ucum

    class _Transformer(ucum_pint.UcumToPintTransformer):
        def simple_unit(self, args: list[Any]) -> Any:
            if len(args) == 1 and str(args[0]) in _ARC_UNITS:
                return self.ureg(_ARC_UNITS[str(args[0])])
            return super().simple_unit(args)

    class _UcumRegistry(UnitRegistry):  # type: ignore[misc]
        def _after_init(self) -> None:
            super()._after_init()
            folder = os.path.dirname(os.path.abspath(ucum_pint.__file__))
            definitions = os.path.join(folder, "pint_ucum_defs.txt")
            self._build_cache(self.load_definitions(definitions))
            self._ucum_parser = get_ucum_parser()
            self._from_ucum = _Transformer(ureg=self).transform

        def from_ucum(self, ucum: str) -> Any:
            return self._from_ucum(parse_ucum(ucum, self._ucum_parser))

    return _UcumRegistry()


def _key() -> str:
    """What cached unit facts depend on: this module and the installed pint and ucumvert."""
    import hashlib
    from importlib.util import find_spec

    with open(__file__, "rb") as handle:
        digest = hashlib.sha256(handle.read())
    for package in ("pint", "ucumvert"):
        spec = find_spec(package)
        origin = spec.origin if spec else None
        if origin:
            stat = os.stat(origin)
            digest.update(f"{origin}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


_table = _cache.Table("units", _key, CACHE_SIZE)


def _remembered(kind: str, key: str, compute: Any, valid: Any) -> Any:
    """`compute()` (JSON-ready) or its `UnitError`, looked up in and stored to the cache file.

    An entry that `valid` rejects (a corrupt or foreign file) is computed again.
    """
    entry_key = f"{kind}:{key}"
    entry = _table.get(entry_key)
    if isinstance(entry, dict):
        error = entry.get("error")
        offset = entry.get("offset")
        if isinstance(error, str) and (offset is None or isinstance(offset, int)):
            raise UnitError(error, key.split("\x00")[0], offset)
        if "value" in entry and valid(entry["value"]):
            return entry["value"]
    try:
        value = compute()
    except UnitError as exc:
        _table.put(entry_key, {"error": exc.message, "offset": exc.offset})
        raise
    _table.put(entry_key, {"value": value})
    return value


# --------------------------------------------------------------------------- what a unit is


def _parse(ucum: str) -> Any:
    """The pint quantity of a UCUM unit (builds the registry)."""
    guard(ucum)
    reg = registry()
    try:
        with _lock:
            quantity = reg.from_ucum(ucum)
    except Exception as exc:
        raise _not_ucum(ucum, exc) from None
    if not hasattr(quantity, "units"):
        try:
            quantity = reg.Quantity(float(quantity), reg.dimensionless)
        except (TypeError, ValueError):
            raise UnitError(
                f"`{ucum}` is only an annotation, not a unit; write `'1'`", ucum
            ) from None
    return quantity


def _not_ucum(ucum: str, exc: Exception) -> UnitError:
    """Our words for a unit the UCUM parser refused, with where it stopped understanding it."""
    where = getattr(exc.__cause__, "pos_in_stream", None)
    if isinstance(where, int) and 0 <= where < len(ucum):
        return UnitError(
            f"not understood from character {where + 1} (`{ucum[where]}`)", ucum, where
        )
    if exc.__class__.__name__ == "InvalidUcumError" or "UCUM" in str(exc):
        return UnitError("the unit ends too early", ucum, len(ucum))
    if "offset" in str(exc).lower():
        return UnitError(
            "a temperature on a scale with an offset (`Cel`, `[degF]`) cannot be multiplied "
            "or divided; use `K`",
            ucum,
        )
    return UnitError("not a unit UCUM defines", ucum)


@attrs.frozen
class _Info:
    dimension: str  # in pint's words: `[mass] / [length] ** 3`, or `dimensionless`
    exponents: tuple[tuple[str, int], ...]  # ((`[length]`, -3), …)
    kind: tuple[tuple[str, int], ...]  # what a dimensionless unit is a ratio of


@lru_cache(maxsize=CACHE_SIZE)
def _info(ucum: str) -> _Info:
    guard(ucum)
    value = _remembered("unit", ucum, lambda: _compute_info(ucum), _valid_info)
    return _Info(
        value["dimension"],
        tuple((d, n) for d, n in value["exponents"]),
        tuple((d, n) for d, n in value["kind"]),
    )


def _valid_info(value: Any) -> bool:
    def pairs(items: Any) -> bool:
        return isinstance(items, list) and all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and type(p[1]) is int
            for p in items
        )

    return (
        isinstance(value, dict)
        and isinstance(value.get("dimension"), str)
        and pairs(value.get("exponents"))
        and pairs(value.get("kind"))
    )


def _compute_info(ucum: str) -> dict[str, Any]:
    quantity = _parse(ucum)
    reg = registry()
    dims = quantity.dimensionality
    kinds: dict[str, int] = {}
    for name, exponent in quantity.units._units.items():
        unit_dims = str(reg.get_dimensionality(name))
        if unit_dims != "dimensionless":
            kinds[unit_dims] = kinds.get(unit_dims, 0) + (1 if exponent > 0 else -1)
    return {
        "dimension": str(dims) if dims else "dimensionless",
        "exponents": sorted([str(d), int(n)] for d, n in dims.items()),
        "kind": sorted([d, n] for d, n in kinds.items()),
    }


def check_unit(ucum: str) -> None:
    """Raise `UnitError` unless `ucum` is a valid UCUM unit."""
    _info(ucum)


def dimension(ucum: str) -> str:
    """The dimension of a unit in words pint understands, e.g. ``[mass] / [length] ** 3``."""
    return _info(ucum).dimension


def is_dimensionless(ucum: str) -> bool:
    return dimension(ucum) == "dimensionless"


def substance_side(ucum: str) -> str | None:
    """Where a unit counts an amount of substance: ``"numerator"``, ``"denominator"`` or None."""
    exponent = dict(_info(ucum).exponents).get("[substance]", 0)
    return "numerator" if exponent > 0 else "denominator" if exponent < 0 else None


# --------------------------------------------------------------------------- conversions


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


@lru_cache(maxsize=CACHE_SIZE)
def conversion(source: str, target: str, molar_mass: float | None = None) -> Conversion:
    """How to convert a value in unit `source` into unit `target`.

    `molar_mass` (in g/mol) allows mass <-> amount-of-substance conversions, such as
    creatinine in mg/dL <-> umol/L. Raises `UnitError` when the units are incompatible.
    """
    if source == target:
        return IDENTITY
    source_info, target_info = _info(source), _info(target)
    if (
        source_info.dimension == "dimensionless"
        and target != "1"
        and source_info.kind != target_info.kind
    ):
        # `mmol/mol` and `%` are both dimensionless but measure different things (HbA1c
        # IFCC vs NGSP is not a unit conversion): only like ratios convert into each other.
        raise UnitError(f"`{source}` and `{target}` are ratios of different kinds", source)
    key = f"{source}\x00{target}\x00{molar_mass!r}"
    factor, offset = _remembered(
        "conversion", key, lambda: _compute(source, target, molar_mass), _valid_conversion
    )
    return Conversion(factor, offset)


def _valid_conversion(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(type(x) is float and math.isfinite(x) for x in value)
        and value[0] != 0.0
    )


def _compute(source: str, target: str, molar_mass: float | None) -> list[float]:
    src, dst = _parse(source), _parse(target)
    zero = _convert(0.0, src, dst, molar_mass)
    one = _convert(1.0, src, dst, molar_mass)
    factor = one - zero  # exact; only converted values are rounded (see `clean`)
    if not (math.isfinite(factor) and math.isfinite(zero)) or factor == 0.0:
        raise UnitError(f"converting `{source}` to `{target}` is out of range", source)
    return [factor, zero]


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
        except (ArithmeticError, ValueError):
            raise UnitError(
                f"converting `{_text(src)}` to `{_text(dst)}` is out of range"
            ) from None
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


# --------------------------------------------------------------------------- products


def product_unit(left: str, right: str) -> str:
    """The UCUM unit of a product of quantities in `left` and `right`, as written."""
    return _join(left, ".", right)


def quotient_unit(left: str, right: str) -> str:
    """The UCUM unit of a quotient of quantities in `left` and `right`, as written."""
    return _join(left, "/", right)


def _join(left: str, op: str, right: str) -> str:
    def wrap(u: str) -> str:
        return u if all(c not in u for c in "./") else f"({u})"

    joined = f"{wrap(left)}{op}{wrap(right)}"
    check_unit(joined)
    return joined


def simplified_product(left: str, op: str, right: str) -> tuple[str, float]:
    """The unit of ``left op right`` (op ``.`` or ``/``) in a conventional spelling, and the
    factor that converts a value in the unit as written into it.

    Like units cancel (``mg/dL . dL`` is ``mg``), units of one dimension merge into the first
    one written (``mg/dL . mL`` is ``0.01 mg``), bare numbers go into the factor, and a squared
    length is in square metres (``L/(cm.cm)`` is ``10000 L/m2``). A unit this does not read is
    kept as written, with factor 1.
    """
    written = _join(left, op, right)
    if is_dimensionless(written):
        return written, 1.0  # a plain number: the checker scales it itself
    try:
        terms = _terms(left, 1) + _terms(right, 1 if op == "." else -1)
        spelled = _spell(_merge(terms))
    except (ValueError, UnitError):
        return written, 1.0
    if spelled == written:
        return written, 1.0
    try:
        check_unit(spelled)
        factor = conversion(written, spelled)
    except UnitError:
        return written, 1.0
    if factor.offset != 0.0:
        return written, 1.0
    return spelled, factor.factor


_ATOM = re.compile(
    r"(10[*^][+-]?\d+|\d+|\{[^{}]*\}|[^./(){}\d+-][^./(){}]*?)([+-]?\d+)?(\{[^{}]*\})?(?=[./()]|\Z)"
)


def _terms(unit: str, sign: int) -> list[tuple[str, int]]:
    """A UCUM term as (symbol, exponent) pairs: ``mg/(dL.min)`` -> mg 1, dL -1, min -1."""
    out: list[tuple[str, int]] = []
    pos, n = 0, len(unit)
    current = sign
    if unit.startswith("/"):
        current, pos = -sign, 1
    while pos < n:
        if unit[pos] == "(":
            depth, end = 0, pos
            while end < n:
                depth += {"(": 1, ")": -1}.get(unit[end], 0)
                if depth == 0:
                    break
                end += 1
            if end >= n:
                raise ValueError(unit)
            out += _terms(unit[pos + 1 : end], current)
            pos = end + 1
        else:
            match = _ATOM.match(unit, pos)
            if match is None or match.end() == pos:
                raise ValueError(unit)
            symbol, exponent = match.group(1) + (match.group(3) or ""), int(match.group(2) or 1)
            out.append((symbol, current * exponent))
            pos = match.end()
        if pos < n:
            if unit[pos] not in "./":
                raise ValueError(unit)
            current = sign if unit[pos] == "." else -sign
            pos += 1
    return out


def _merge(terms: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Cancel and merge the symbols of a product (see `simplified_product`)."""
    powers: dict[str, int] = {}
    first_of: dict[str, str] = {}  # dimension -> the first symbol written with it
    for symbol, exponent in terms:
        if symbol.isdigit():
            continue  # a bare number goes into the factor
        dim = "dimensionless" if symbol.startswith("{") else dimension(symbol)
        if dim != "dimensionless" and not _is_special(symbol):
            symbol = first_of.setdefault(dim, symbol)
        powers[symbol] = powers.get(symbol, 0) + exponent
    out = []
    for symbol, exponent in powers.items():
        if exponent == 0:
            continue
        if abs(exponent) >= 2 and not symbol.startswith("{") and dimension(symbol) == "[length]":
            symbol = "m"  # areas in square metres: kg/m2, L/m2, mL/min/m2
        out.append((symbol, exponent))
    return out


def _is_special(symbol: str) -> bool:
    """A unit that is not a multiple of its dimension's unit (a temperature in Cel or [degF])."""
    if dimension(symbol) != "[temperature]":
        return False
    try:
        return conversion(symbol, "K").offset != 0.0
    except UnitError:
        return True


def _spell(terms: list[tuple[str, int]]) -> str:
    """(symbol, exponent) pairs as UCUM: numerators joined by `.`, then each denominator."""

    def power(symbol: str, exponent: int) -> str:
        return symbol if exponent == 1 else f"{symbol}{exponent}"

    up = [power(s, e) for s, e in terms if e > 0]
    down = [power(s, -e) for s, e in terms if e < 0]
    text = ".".join(up) if up else ("" if down else "1")
    return text + "".join(f"/{d}" for d in down)


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


def cache_clear() -> None:
    """Forget every cached unit fact and conversion in this process (the file stays)."""
    _info.cache_clear()
    conversion.cache_clear()
    _table.clear()
