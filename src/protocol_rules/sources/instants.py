"""ISO 8601 texts to seconds since the epoch, for a whole column at once.

The common shapes — ``2026-03-01``, and for a datetime ``2026-03-01T08:00``,
``2026-03-01T08:00:00``, each with an optional ``Z`` or ``±HH:MM`` — are read with polars string
and date expressions; every other text (fractions of a second, basic format, week dates, years
1 and 9999, offsets of another shape, impossible days) is read by the interpreter's own
`parse_instant`, so each text gets exactly the seconds (or the refusal) `evaluate` gives it.
Both are exact: a fast text has whole seconds, which a float holds exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..facts import Invalid, parse_instant

_DATE = r"^\d{4}-\d{2}-\d{2}$"
_DATETIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:\d{2})?$"


def parse_texts(texts: Any, has_time: bool, slow: Callable[[str], float]) -> Any:
    """Seconds (Float64, null: unreadable) of a polars Series of ISO texts; `slow` reads one
    text the fast path does not vouch for (raising `Invalid` when it cannot)."""
    import polars as pl

    frame = pl.DataFrame({"t": texts.cast(pl.String)})
    t = pl.col("t")

    def number(start: int, length: int | None = None) -> pl.Expr:
        return t.str.slice(start, length).cast(pl.Int64, strict=False)

    # the shape is checked by the pattern; the fields are at fixed places; each is computed
    # once (one column), then combined
    fields = [
        t.str.contains(_DATETIME if has_time else _DATE).alias("shape"),
        number(0, 4).alias("year"),
        # an impossible day (2026-02-30) is null here, and read by `slow` below
        t.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).cast(pl.Int64).alias("day"),
    ]
    if has_time:
        with_seconds = t.str.slice(16, 1) == ":"
        zone = pl.when(with_seconds).then(t.str.slice(19)).otherwise(t.str.slice(16))
        fields += [
            number(11, 2).alias("hour"),
            number(14, 2).alias("minute"),
            pl.when(with_seconds).then(number(17, 2)).otherwise(0).alias("second"),
            zone.alias("zone"),
        ]
    parts = frame.select(fields)
    seconds = pl.col("day") * 86400
    ok = pl.col("shape") & pl.col("year").is_between(2, 9998) & pl.col("day").is_not_null()
    if has_time:
        hour, minute, second, zone = (pl.col(c) for c in ("hour", "minute", "second", "zone"))
        parts = parts.with_columns(
            zone.str.slice(1, 2).cast(pl.Int64, strict=False).fill_null(0).alias("zh"),
            zone.str.slice(4, 2).cast(pl.Int64, strict=False).fill_null(0).alias("zm"),
            pl.when(zone.str.starts_with("-")).then(-1).otherwise(1).alias("sign"),
        )
        zone_hours, zone_minutes = pl.col("zh"), pl.col("zm")
        offset = pl.col("sign") * (zone_hours * 3600 + zone_minutes * 60)
        seconds = seconds + hour * 3600 + minute * 60 + second - offset
        ok = ok & (hour <= 23) & (minute <= 59) & (second <= 59)
        ok = ok & (zone_hours <= 23) & (zone_minutes <= 59)
    parts = parts.with_columns(ok.fill_null(False).alias("ok"))
    fast = parts.select(pl.when(pl.col("ok")).then(seconds.cast(pl.Float64)).alias("s"), "ok")
    out = fast.get_column("s")
    rest = frame.get_column("t").filter(
        ~fast.get_column("ok") & frame.get_column("t").is_not_null()
    )
    if rest.len():
        distinct = rest.unique().to_list()
        found: list[float | None] = []
        for text in distinct:
            try:
                found.append(slow(text))
            except Invalid:
                found.append(None)
        looked = frame.get_column("t").replace_strict(
            distinct, found, default=None, return_dtype=pl.Float64
        )
        out = pl.select(pl.coalesce(out, looked)).to_series()
    return out


def datetime_seconds(text: str) -> float:
    return parse_instant(text, "a datetime")


__all__ = ["datetime_seconds", "parse_texts"]
