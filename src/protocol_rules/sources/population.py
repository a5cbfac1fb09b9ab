"""The normalised population every columnar engine reads: facts checked, in declared units.

`Population` is what the doors in (`records`, `layout`) produce from what users have:

- ``patients``: one row per patient, in input order: `ROW` (0, 1, …), `ID` (the patient's
  identifier), `AS_OF` (seconds since the epoch, or null), and one column per scalar fact in the
  evaluator's representation (quantities as floats in the declared unit, dates as seconds since
  the epoch, choices and texts as strings); a series or set fact's column says whether the
  patient has that fact at all (true, or null when it is absent: unknown);
- ``observations``: per series or set fact, the rows `key` (`ROW`, or `ID` when the patient
  identifiers are unique), `AT`, `VALUE`, `SEQ`, in any order;
  `SEQ` is the input order, which breaks ties between observations at the same time (as the
  interpreter's stable sort does) for the aggregates that read observations in order;
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
from ..check.types import BoolT, ChoiceT, CodeT, NumT, QtyT, SeriesT, SetT, TextT, TimeT, Type
from ..diagnostics import Diagnostic

#: Internal column names; a colon cannot appear in a fact name, so these never collide.
ROW, ID, AS_OF, AT, VALUE, SEQ = ":row", ":id", ":as_of", ":at", ":value", ":seq"

#: A `date or never` fact known not to have happened (`calendar.NEVER`), in a Float64 column:
#: minus infinity, so that `time_since` of it is longer than any duration.
NEVER_SECONDS = float("-inf")


def column_value(value: Any) -> Any:
    """A normalised scalar value as it goes into a column (None for unknown)."""
    from ..calendar import NEVER
    from ..facts import UNKNOWN

    if value is UNKNOWN:
        return None
    return NEVER_SECONDS if value is NEVER else value


@attrs.frozen
class Population:
    """A population in the evaluator's representation (see the module docstring)."""

    patients: Any  # polars.DataFrame
    observations: Mapping[str, Any]  # fact -> polars.DataFrame(_row, at, value)
    errors: Mapping[int, tuple[Diagnostic, ...]]
    record: Callable[[int], dict[str, Any]]  # row -> the patient's record, as given
    as_of: float | None = None  # the one evaluation time of every patient, if there is one
    key: str = ROW  # the column of `patients` that the observations' rows carry: ROW or ID

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
        case TextT() | ChoiceT() | CodeT():
            return pl.String
    raise AssertionError(type_)  # pragma: no cover


def clean_parts(x: Any) -> tuple[Any, Any]:
    """(fast, risky) polars expressions: `units.clean` of `x` wherever `risky` is false.

    ``round(x * 10**d) / 10**d`` with ``d = 12 - floor(log10(|x|))`` is the correctly rounded
    result (what Python's ``round`` computes) whenever ``0 <= d <= 22`` (``10**d`` exact, the
    rounded value exact below 2**53) and the scaled value is not within rounding error of a
    half; next to a power of ten two ``log10`` may disagree. Those other values are *risky*:
    the caller sends them through `units.clean` itself.
    """
    import polars as pl

    finite = x.is_finite() & (x != 0.0)
    e = pl.when(finite).then(x.abs().log10().floor()).otherwise(0.0)
    d = (12.0 - e).clip(-1.0, 23.0).cast(pl.Int32)
    fits = finite & (d >= 0) & (d <= 22)
    p = pl.lit(10.0).pow(d.clip(0, 22).cast(pl.Float64))  # exact: 10**d is representable
    scaled = x * p
    # below 2**44 a float's spacing is at most 2**-8: a product off a half by more than that
    # rounds the same way as the exact product does
    half = ((scaled - scaled.floor()) - 0.5).abs() < 0.004
    ratio = x.abs() / pl.lit(10.0).pow(e)
    edge = (ratio < 1.0 + 1e-9) | (ratio > 10.0 - 1e-8)
    fast = pl.when(fits).then(scaled.round(0) / p).otherwise(x)
    return fast, (finite & (~fits | half | edge)).fill_null(False)


def clean(values: Any) -> Any:
    """`units.clean` of every value of a polars Float64 Series, bit for bit (`clean_parts`)."""
    import polars as pl

    fast, risky = clean_parts(pl.col("x"))
    frame = (
        pl.DataFrame({"x": values.cast(pl.Float64)})
        .lazy()  # lazy: the common sub-expressions of `clean_parts` are computed once
        .select(fast.alias("out"), risky.alias("risky"))
        .collect()
    )
    out = frame.get_column("out")
    index = frame.get_column("risky").arg_true()
    if len(index):
        fixed = [units.clean(float(v)) for v in values.gather(index).to_list()]
        out = out.scatter(index, pl.Series(fixed, dtype=pl.Float64))
    return out.alias(values.name)


def convert(values: Any, conversion: units.Conversion) -> Any:
    """`conversion` applied to a Float64 Series as `units.Conversion.__call__` does (rounded
    by `clean` even when the factor is 1, as for a value sent in another spelling of a unit)."""
    return clean(values * conversion.factor + conversion.offset)


def finite(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)
