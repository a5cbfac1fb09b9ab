"""The normalised population every columnar engine reads: facts checked, in declared units.

`Population` is what the doors in (`records`, `layout`) produce from what users have:

- ``patients``: one row per patient, in input order: `ROW` (0, 1, …), `ID` (the patient's
  identifier), `AS_OF` (seconds since the epoch, or null), and one column per scalar fact in the
  evaluator's representation (quantities as floats in the declared unit, dates as seconds since
  the epoch, choices and texts as strings); a series or set fact's column says whether the
  patient has that fact at all (true, or null when it is absent: unknown);
- ``observations``: per series or set fact, the rows `ROW`, `AT`, `VALUE` in time order (observations
  at the same time keep their input order, as the interpreter's stable sort does);
- ``errors``: the diagnostics of each row whose record is malformed, exactly as `evaluate` would
  raise them; such a row is screened with status ``error`` and still counted.

Unit conversions here follow `units.Conversion` exactly, rounding included (`clean`), so that
exact boundaries agree with the interpreter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .. import units
from ..check import FactInfo
from ..check.types import BoolT, ChoiceT, NumT, QtyT, SeriesT, SetT, TextT, TimeT, Type
from ..diagnostics import Diagnostic

#: Internal column names; a colon cannot appear in a fact name, so these never collide.
ROW, ID, AS_OF, AT, VALUE = ":row", ":id", ":as_of", ":at", ":value"


@attrs.frozen
class Population:
    """A population in the evaluator's representation (see the module docstring)."""

    patients: Any  # polars.DataFrame
    observations: Mapping[str, Any]  # fact -> polars.DataFrame(_row, at, value)
    errors: Mapping[int, tuple[Diagnostic, ...]]
    record: Callable[[int], dict[str, Any]]  # row -> the patient's record, as given

    @property
    def size(self) -> int:
        return int(self.patients.height)


def element(type_: Type) -> Type:
    """The type of one value of a fact: a series' or set's element, else the type itself."""
    return type_.element if isinstance(type_, SeriesT | SetT) else type_


def is_collection(fact: FactInfo) -> bool:
    return isinstance(fact.type, SeriesT | SetT)


def dtype(type_: Type) -> Any:
    """The polars dtype of a normalised value of this type."""
    import polars as pl

    match element(type_):
        case BoolT():
            return pl.Boolean
        case NumT() | QtyT() | TimeT():
            return pl.Float64
        case TextT() | ChoiceT():
            return pl.String
    raise AssertionError(type_)  # pragma: no cover


def clean(values: Any) -> Any:
    """`units.clean` of every value of a polars Float64 Series, bit for bit.

    Vectorised as ``rint(x * 10**d) / 10**d``, which is the correctly rounded result whenever
    the scaled value is not within rounding error of a half, ``d`` is at most 22 (so that
    ``10**d`` is exact) and ``x`` is not next to a power of ten (where two ``log10`` can
    disagree); the few other values go through `units.clean` itself.
    """
    import numpy as np
    import polars as pl

    nulls = values.is_null()
    x = values.fill_null(0.0).cast(pl.Float64).to_numpy().copy()
    with np.errstate(all="ignore"):
        finite = np.isfinite(x) & (x != 0.0)
        ax = np.where(finite, np.abs(x), 1.0)
        e = np.floor(np.log10(ax))
        d = 12.0 - e
        fits = finite & (d >= 0) & (d <= 22)
        p = np.power(10.0, np.where(fits, d, 0.0))
        scaled = x * p
        r = np.rint(scaled)
        half = np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) < 0.01
        ratio = ax / np.power(10.0, e)
        edge = (ratio < 1.0 + 1e-9) | (ratio > 10.0 - 1e-8)
        out = np.where(fits, r / p, x)
    risky = np.flatnonzero(finite & (~fits | half | edge))
    for i in risky.tolist():
        out[i] = units.clean(float(x[i]))
    result = pl.Series(values.name, out, dtype=pl.Float64)
    return result if not nulls.any() else pl.select(
        pl.when(nulls).then(None).otherwise(result)
    ).to_series().alias(values.name)


def convert(values: Any, conversion: units.Conversion) -> Any:
    """`conversion` applied to a Float64 Series as `units.Conversion.__call__` does (rounded
    by `clean` even when the factor is 1, as for a value sent in another spelling of a unit)."""
    return clean(values * conversion.factor + conversion.offset)


def finite(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)
