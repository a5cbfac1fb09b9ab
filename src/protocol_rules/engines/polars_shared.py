"""Back end, shared: what the modules of the polars engine (`polars`, `polars_calc`,
`polars_windows`) have in common — the PR503 refusal, missing-fact flags, and calendar
arithmetic on instants held as seconds since the epoch (`protocol_rules.calendar`'s semantics).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ..calendar import CalendarDuration
from ..check import ir
from ..check.types import TimeT
from ..diagnostics import error
from ..sources.population import NEVER_SECONDS
from . import ScreeningError

DAY = 86400.0
NULL_BOOL = pl.lit(None, dtype=pl.Boolean)

#: fact -> "this fact is a missing fact reached from here" (a boolean expression per patient)
Sources = dict[str, pl.Expr]


def unsupported(node: Any, why: str = "") -> ScreeningError:
    """PR503: a construct this engine does not compile, named with its place in the file."""
    source = getattr(node, "source", None)
    span = getattr(source, "span", None)
    text = " ".join(span.text.split()) if span is not None else type(node).__name__
    return ScreeningError(
        [
            error(
                "PR503",
                f"the polars engine cannot screen `{text}` ({type(node).__name__})"
                + (f": {why}" if why else ""),
                span,
                help="evaluate patients one by one with `evaluate`, or rewrite the expression",
            )
        ]
    )


def merge(out: Sources, more: Sources, guard: pl.Expr) -> None:
    """Add `more` to `out`, each flag reached only where `guard` holds."""
    for name, reached in more.items():
        term = guard & reached
        out[name] = out[name] | term if name in out else term


def is_date(node: ir.Node | None) -> bool:
    """Whether `node` is an instant of day precision (a date, not a datetime)."""
    return node is not None and isinstance(node.type, TimeT) and not node.type.has_time


def day(x: pl.Expr) -> pl.Expr:
    """`calendar.day_of`: 00:00 UTC of the instant's day."""
    return (x / DAY).floor() * DAY


def shift(x: pl.Expr, duration: CalendarDuration, sign: int) -> pl.Expr:
    """`calendar.shift(x, duration, sign)` on seconds since the epoch; never stays never."""
    months, seconds = duration.months * sign, duration.seconds * sign
    if not months:
        return x + seconds
    original = x
    if sign < 0:
        x = x + seconds
    finite = x.is_finite()
    micro = pl.when(finite).then((x * 1e6).round(0)).cast(pl.Int64)
    moved = pl.from_epoch(micro, time_unit="us").dt.offset_by(f"{months}mo")
    x = moved.dt.epoch("us").cast(pl.Float64) / 1e6
    shifted = x if sign < 0 else x + seconds
    return pl.when(finite).then(shifted).otherwise(original)


def never(x: pl.Expr) -> pl.Expr:
    """A `never` date (minus infinity); null for unknown."""
    return x == NEVER_SECONDS


def roots(exprs: list[pl.Expr]) -> set[str]:
    """The columns the expressions read."""
    out: set[str] = set()
    for e in exprs:
        out.update(e.meta.root_names())
    return out


__all__ = [
    "DAY",
    "NULL_BOOL",
    "Sources",
    "day",
    "is_date",
    "merge",
    "never",
    "roots",
    "shift",
    "unsupported",
]
