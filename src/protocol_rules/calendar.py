"""Calendar arithmetic on instants: what `date + 3 months` and `time_since(d) >= 18 years` mean.

Beside the pipeline, imported by the checker (to build `CalendarDuration` constants from duration
words) and by the evaluator (to run them). Small pure functions with exact specifications, so
that every back end implements the same semantics:

- An **instant** is a float, seconds since 1970-01-01T00:00Z; a **date** is the instant of its
  00:00 UTC. `NEVER` stands for a date known not to have happened (`date or never` facts).
- A **calendar duration** (`CalendarDuration`) is whole months plus seconds: a duration word
  (`3 months`, `18 years`, `12 weeks`, `48 hours`) written in a rules file. Years are 12 months;
  weeks, days, hours and minutes are their length in seconds (UTC has no daylight saving, so a
  day is always 86,400 s). UCUM units in quotes (`3 'mo'`) are *not* calendar durations: they
  stay definite quantities (a `'mo'` is 30.4375 days).
- `shift(x, D)` adds months keeping the day of the month, clamped to the month's end
  (`2026-01-31 + 1 month = 2026-02-28`, `2008-02-29 + 18 years = 2026-02-28`), then adds the
  seconds. Subtracting applies the same steps negated, in reverse order, so ``(x + D) - D == x``
  except when adding D's months clamped the day (`clamps`). SQL's ``x + INTERVAL 'n' MONTH``
  (DuckDB, Spark's ``add_months``) and polars' ``dt.offset_by("nmo")`` clamp the same way.
- **Precision**: a date has day precision. Where a date meets a datetime (a comparison, a
  window bound, `time_since` of a date), the datetime counts as its UTC date (`day_of`).

The dates are computed with Howard Hinnant's `days_from_civil` / `civil_from_days` algorithms
(proleptic Gregorian calendar, http://howardhinnant.github.io/date_algorithms.html), in integer
arithmetic: no `datetime` objects on the per-patient path, and no year limit.
"""

from __future__ import annotations

import math
from typing import Any

from attrs import frozen

__all__ = [
    "DAY",
    "NEVER",
    "CalendarDuration",
    "NotWhole",
    "clamps",
    "day_of",
    "days_in_month",
    "days_since",
    "shift",
]

#: Seconds in a day (a UTC day: there is no daylight saving in UTC).
DAY = 86400.0

#: Seconds of one step of each calendar unit below a month (the UCUM codes of the duration words).
_SECONDS = {"wk": 7 * DAY, "d": DAY, "h": 3600.0, "min": 60.0, "s": 1.0}
#: Months of each calendar unit of a month or more.
_MONTHS = {"a": 12, "mo": 1}


class _Never:
    """The value of a `date or never` fact that is known not to have happened."""

    __slots__ = ()
    _instance: _Never | None = None

    def __new__(cls) -> _Never:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "never"

    def __reduce__(self) -> str:
        return "NEVER"


#: A date known not to have happened: `time_since(NEVER)` is longer than any duration, and any
#: comparison of NEVER with a date is not met.
NEVER: Any = _Never()


class NotWhole(ValueError):
    """A calendar duration of a fraction of a month (`1.5 months`): no calendar step is that."""


@frozen
class CalendarDuration:
    """A duration written with duration words: whole `months` and `seconds` (both may be < 0).

    `18 years` is 216 months; `12 weeks` is 7,257,600 seconds; `1 year + 2 days` is 12 months
    and 172,800 seconds.
    """

    months: int = 0
    seconds: float = 0.0

    @classmethod
    def of(cls, amount: float, unit: str) -> CalendarDuration:
        """`amount` of a duration word's UCUM unit (`a`, `mo`, `wk`, `d`, `h`, `min`, `s`).

        Raises `NotWhole` for a fraction of a month (`0.5 months`, `1.25 years`) and KeyError
        for a unit that is not a duration word's.
        """
        if unit in _MONTHS:
            months = amount * _MONTHS[unit]
            if not float(months).is_integer():
                raise NotWhole(f"{amount:g} {unit} is not a whole number of months")
            return cls(int(months), 0.0)
        return cls(0, _clean(amount * _SECONDS[unit]))

    @property
    def has_time(self) -> bool:
        """Whether it has a part shorter than a day: then a date shifted by it is a datetime."""
        return self.seconds % DAY != 0

    def __add__(self, other: CalendarDuration) -> CalendarDuration:
        return CalendarDuration(self.months + other.months, _clean(self.seconds + other.seconds))

    def __sub__(self, other: CalendarDuration) -> CalendarDuration:
        return self + -other

    def __neg__(self) -> CalendarDuration:
        return CalendarDuration(-self.months, -self.seconds or 0.0)

    def times(self, factor: float) -> CalendarDuration:
        """`factor` times this duration; raises `NotWhole` when the months come out fractional."""
        months = self.months * factor
        if not float(months).is_integer():
            raise NotWhole(f"{factor:g} times {self.months} months is not a whole number")
        return CalendarDuration(int(months), _clean(self.seconds * factor))

    def __str__(self) -> str:
        parts = []
        years, months = divmod(abs(self.months), 12)
        if years:
            parts.append(f"{years} year{'s' if years != 1 else ''}")
        if months:
            parts.append(f"{months} month{'s' if months != 1 else ''}")
        days, rest = divmod(abs(self.seconds), DAY)
        if days:
            parts.append(f"{days:g} day{'s' if days != 1 else ''}")
        if rest:
            parts.append(f"{rest:g} seconds")
        sign = "-" if self.months < 0 or self.seconds < 0 else ""
        return sign + (" ".join(parts) or "0 days")


def _clean(value: float) -> float:
    """Seconds rounded to the microsecond, so that `0.1 days` is 8640 s, not 8640.000000000002."""
    return round(value, 6) + 0.0


# --------------------------------------------------------------------------- the calendar


def days_in_month(year: int, month: int) -> int:
    """28 to 31."""
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day number since 1970-01-01 (Hinnant's `civil_from_days`)."""
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day


def _add_months(day_number: int, months: int) -> tuple[int, bool]:
    """The day number `months` calendar months later, and whether the day was clamped."""
    year, month, day = _civil_from_days(day_number)
    carry, month0 = divmod(month - 1 + months, 12)
    year, month = year + carry, month0 + 1
    last = days_in_month(year, month)
    return _days_from_civil(year, month, min(day, last)), day > last


def day_of(instant: float) -> float:
    """The instant's UTC date: 00:00 UTC of the day it falls in."""
    return instant - instant % DAY


def shift(instant: float, duration: CalendarDuration, sign: int = 1) -> float:
    """`instant + duration` (sign 1) or `instant - duration` (sign -1), by calendar.

    Adding: months first, keeping the time of day and the day of the month clamped to the
    month's last day, then the seconds. Subtracting: the seconds first, then the months, so
    that subtraction undoes addition except after a clamp. Infinite instants stay as they are.
    """
    months, seconds = duration.months * sign, duration.seconds * sign
    if not months or not math.isfinite(instant):
        return instant + seconds
    if sign < 0:
        instant += seconds
    whole = instant // DAY
    moved, _ = _add_months(int(whole), months)
    instant += (moved - whole) * DAY
    return instant if sign < 0 else instant + seconds


def clamps(instant: float, duration: CalendarDuration) -> bool:
    """Whether `instant + duration` clamps the day of the month (so ``x + D - D != x``)."""
    if not duration.months or not math.isfinite(instant):
        return False
    return _add_months(int(instant // DAY), duration.months)[1]


def days_since(instant: Any, as_of: float, date: bool) -> float:
    """`time_since(x)` in days: from `instant` to `as_of`, whole days when `instant` is a date.

    A date has day precision, so `as_of` then counts as its UTC date: a date fact of
    2026-01-21 is 84 days before an `as_of` of 2026-04-15T10:00Z, not 84.42. `NEVER` is longer
    ago than any duration: infinity.
    """
    if instant is NEVER:
        return math.inf
    if date:
        as_of = day_of(as_of)
    return (as_of - instant) / DAY
