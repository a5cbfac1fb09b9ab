"""`patients`: valid patient records for a protocol, biased toward its boundaries."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from .. import units as _units
from ..calendar import day_of, days_since, shift
from ..check import FactInfo
from ..check.types import BoolT, ChoiceT, CodeT, NumT, QtyT, SeriesT, SetT, TextT, TimeT, Type
from ..protocol import Protocol
from .boundaries import DAY, Boundaries, Edge, boundaries, element_type, near
from .exact import compatible_units, exact_in

#: Significant digits of the values `patients` draws, as measured values have: fewer than the
#: 12 the engine keeps through a unit conversion (`units.clean`).
SIGNIFICANT_DIGITS = 10


class _Plan:
    """What `patients` precomputes for one protocol."""

    def __init__(self, protocol: Protocol, unit_choice: Any, bias: bool) -> None:
        self.protocol = protocol
        self.bounds = boundaries(protocol)
        self.bias = bias
        self.units: dict[str, tuple[str, ...]] = {}
        for fact in protocol.facts:
            element = element_type(fact.type)
            if not isinstance(element, QtyT):
                continue
            if unit_choice == "declared":
                self.units[fact.name] = (element.unit,)
            elif isinstance(unit_choice, Mapping) and fact.name in unit_choice:
                self.units[fact.name] = tuple(unit_choice[fact.name])
            else:
                self.units[fact.name] = compatible_units(element.unit, element.molar_mass)

    def near(self, fact: FactInfo, element: Type) -> list[float]:
        integer = isinstance(element, NumT) and element.integer
        out: set[float] = set()
        for threshold in self.bounds.values.get(fact.name, ()):
            out.update(near(threshold, integer))
        return sorted(v for v in out if _in_range(fact, v))


def _in_range(fact: FactInfo, value: float) -> bool:
    if not math.isfinite(value):
        return False
    if fact.low is not None and fact.high is not None:
        return fact.low <= value <= fact.high
    return True


def _iso(moment: datetime) -> str:
    text = moment.isoformat()
    return text.replace("+00:00", "Z")


def patients(
    protocol: Protocol,
    *,
    as_of: datetime | str | st.SearchStrategy[datetime] | None = None,
    absent: float = 0.15,
    units: str | Mapping[str, Sequence[str]] = "any",
    fixed: Mapping[str, Any] | None = None,
    bias: bool = True,
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid patient records for `protocol`, with their ``"as_of"``.

    Args:
        protocol: the loaded protocol whose declared facts the records hold.
        as_of: the evaluation time, or a strategy for it; by default a date in 2020-2030 at a
            time of day that puts `time_since` thresholds exactly on a day boundary.
        absent: how often (0 to 1) a fact is left out (as a missing key or as ``null``).
        units: ``"any"`` sends quantities in randomly chosen compatible units (converted
            exactly, see `exact_in`), ``"declared"`` always in the declared unit, or a mapping
            fact name -> the units allowed for it.
        fixed: facts given these values in every record (``None`` leaves a fact absent).
        bias: draw values at and around the protocol's thresholds and window edges about
            half of the time (see `boundaries`).

    Values have at most `SIGNIFICANT_DIGITS` significant digits, besides those just around a
    threshold (one part in a billion away from it).
    """
    plan = _Plan(protocol, units, bias)
    fixed = dict(fixed or {})
    moments = _as_of_strategy(plan.bounds, as_of)
    percent = round(max(0.0, min(1.0, absent)) * 100)

    @st.composite
    def draw_patient(draw: st.DrawFn) -> dict[str, Any]:
        now = draw(moments)
        record: dict[str, Any] = {"as_of": _iso(now)}
        declared: dict[str, float] = {}
        for fact in protocol.facts:
            if fact.name in fixed:
                if fixed[fact.name] is not None:
                    record[fact.name] = fixed[fact.name]
                continue
            if percent and draw(st.integers(0, 99)) < percent:
                if draw(st.booleans()):
                    record[fact.name] = None
                continue
            record[fact.name] = _value(draw, plan, fact, now, declared)
        if plan.bias and plan.bounds.relations and draw(st.booleans()):
            _relate(draw, plan, record, declared, now, fixed)
        if plan.bias and plan.bounds.edges and draw(st.booleans()):
            _on_edges(draw, plan, record, now, fixed)
        return record

    return draw_patient()


def _as_of_strategy(
    bounds: Boundaries, as_of: datetime | str | st.SearchStrategy[datetime] | None
) -> st.SearchStrategy[datetime]:
    if isinstance(as_of, st.SearchStrategy):
        return as_of.map(_aware)
    if as_of is not None:
        return st.just(_aware(as_of))
    aligned = {round((days % 1) * DAY) % 86400 for v in bounds.ages.values() for days in v}
    times = st.sampled_from(sorted({0, 8 * 3600, 86399, *aligned})) | st.integers(0, 86399)
    days = st.dates(date(2020, 1, 1), date(2030, 12, 31)) | st.sampled_from(CALENDAR_EDGES)
    return st.builds(
        lambda day, seconds: (
            datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)
        ),
        days,
        times,
    )


#: Days where calendar arithmetic is interesting: month ends (clamping), leap days and the
#: days around them, year ends.
CALENDAR_EDGES = tuple(
    sorted(
        {
            date(year, month, day)
            for year in (2023, 2024, 2025, 2026, 2028)
            for month, day in ((1, 31), (2, 28), (3, 1), (3, 31), (4, 30), (5, 31), (8, 31))
        }
        | {date(2024, 2, 29), date(2028, 2, 29), date(2025, 12, 31), date(2026, 1, 1)}
    )
)


def _aware(moment: datetime | str) -> datetime:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _value(
    draw: st.DrawFn, plan: _Plan, fact: FactInfo, now: datetime, declared: dict[str, float]
) -> Any:
    type_ = fact.type
    if isinstance(type_, SeriesT):
        return _series(draw, plan, fact, type_.element, now)
    if isinstance(type_, SetT):
        element = type_.element
        if isinstance(element, ChoiceT):
            return draw(st.lists(st.sampled_from(element.choices), unique=True, max_size=4))
        if isinstance(element, CodeT):
            codes = draw(st.lists(st.sampled_from(CODE_POOL), unique=True, max_size=4))
            return [_code_as_sent(draw, c) for c in codes]
        texts = plan.bounds.texts.get(fact.name, ())
        pool = st.sampled_from(texts) | st.text(max_size=8) if texts else st.text(max_size=8)
        return draw(st.lists(pool, unique=True, max_size=4))
    if isinstance(type_, TimeT):
        return _instant(draw, plan, fact, type_, now)
    if isinstance(type_, NumT | QtyT):
        value = _magnitude(draw, plan, fact, type_)
        declared[fact.name] = value
        return _express(draw, plan, fact, type_, value)
    return _plain(draw, plan, fact, type_)


def _plain(draw: st.DrawFn, plan: _Plan, fact: FactInfo, type_: Type) -> Any:
    match type_:
        case BoolT():
            return draw(st.booleans())
        case ChoiceT(choices=choices):
            return draw(st.sampled_from(choices))
        case TextT():
            texts = plan.bounds.texts.get(fact.name, ())
            return draw(st.sampled_from(texts) | st.text(max_size=8) if texts else st.text())
        case CodeT():
            return _code_as_sent(draw, draw(st.sampled_from(CODE_POOL)))
    raise AssertionError(type_)  # pragma: no cover - every declared type is handled


#: The codes `patients` draws for `code` facts: the codes of `programs.CODE_MEMBERS` and codes
#: just beside them (below an ICD prefix, another code of the same system).
CODE_POOL = (
    "ICD10CM#N17",
    "ICD10CM#N17.0",
    "ICD10CM#N17.9",
    "ICD10CM#N18.6",
    "ICD10CM#N19",
    "ICD10CM#I10",
    "SNOMED#14669001",
    "SNOMED#72892002",
    "LOINC#2160-0",
    "OMOP#3016723",
    "RXNORM#241834",
)


def _code_as_sent(draw: st.DrawFn, code: str) -> Any:
    """A canonical code as a record may send it: the text, or a FHIR Coding (maybe without the
    dot of an ICD code)."""
    if draw(st.booleans()):
        return code
    from ..codes import SYSTEMS, split

    system, value = split(code)
    uri = SYSTEMS[system].uri or system
    if system == "ICD10CM" and draw(st.booleans()):
        value = value.replace(".", "")
    return {"system": uri, "code": value}


def _magnitude(draw: st.DrawFn, plan: _Plan, fact: FactInfo, element: Type) -> float:
    """A value in the declared unit: near a threshold, or anywhere in a plausible range."""
    integer = isinstance(element, NumT) and element.integer
    near = plan.near(fact, element) if plan.bias else []
    if near and draw(st.booleans()):
        value = draw(st.sampled_from(near))
        return int(value) if integer else value
    thresholds = [abs(t) for t in plan.bounds.values.get(fact.name, ())]
    top = max([100.0, *(4 * t for t in thresholds)])
    low = fact.low if fact.low is not None else 0.0
    high = fact.high if fact.high is not None else top
    if integer:
        return draw(st.integers(math.ceil(low), math.floor(high)))
    value = draw(st.floats(low, high, allow_nan=False, allow_infinity=False))
    rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return rounded if _in_range(fact, rounded) else value


def _express(draw: st.DrawFn, plan: _Plan, fact: FactInfo, element: Type, value: float) -> Any:
    """A declared-unit value as the patient sends it: bare, or in another unit exactly."""
    if not isinstance(element, QtyT):
        return value
    declared = element.unit
    unit = draw(st.sampled_from(plan.units.get(fact.name, (declared,))))
    if unit != declared:
        there = exact_in(value, declared, unit, element.molar_mass)
        if there is not None:
            return {"value": there, "unit": unit}
    return value if draw(st.booleans()) else {"value": value, "unit": declared}


def _series(
    draw: st.DrawFn, plan: _Plan, fact: FactInfo, element: Type, now: datetime
) -> list[dict[str, Any]]:
    windows = plan.bounds.windows.get(fact.name, ())
    calendar = tuple(
        now.timestamp() - edge.timestamp() for edge in _calendar_edges(plan, fact.name, now)
    )
    windows = (*windows, *(w for w in calendar if w > 0))
    longest = max(windows, default=30 * DAY)
    edges = sorted({0.0, -1.0, *(x for w in windows for x in (w - 1, w, w + 1, w / 2))})
    offsets = st.integers(-3600, int(2 * longest)).map(float)
    if plan.bias and edges:
        offsets = st.sampled_from(edges) | offsets
    zones = st.sampled_from([timedelta(0), timedelta(hours=8), timedelta(hours=-5)])
    observations = []
    size = draw(st.integers(0, 6))
    counts = plan.bounds.counts.get(fact.name, ())
    same: Any = None  # one value for every observation: `all(W) < X` can then hold
    if plan.bias and counts and draw(st.booleans()):
        # `count(W) >= N`: just enough, or one too few, observations inside the window
        size = draw(st.sampled_from(sorted({max(0, int(c) + d) for c in counts for d in (-1, 0)})))
        offsets = st.integers(0, int(min(windows, default=DAY))).map(float)
        if isinstance(element, NumT | QtyT) and draw(st.booleans()):
            same = _express(draw, plan, fact, element, _magnitude(draw, plan, fact, element))
    for _ in range(size):
        seconds = draw(offsets)
        at = (now - timedelta(seconds=seconds)).astimezone(_zone(draw(zones)))
        observation: dict[str, Any] = {"at": _iso(at)}
        if isinstance(element, NumT | QtyT):
            if same is None:
                magnitude = _magnitude(draw, plan, fact, element)
                value = _express(draw, plan, fact, element, magnitude)
            else:
                value = same
            if isinstance(value, dict):
                observation.update(value)
            else:
                observation["value"] = value
        else:
            observation["value"] = _plain(draw, plan, fact, element)
        observations.append(observation)
    return observations


def _zone(offset: timedelta) -> timezone:
    return timezone(offset)


def _instant(draw: st.DrawFn, plan: _Plan, fact: FactInfo, type_: TimeT, now: datetime) -> str:
    """A date (or datetime) near the `time_since` thresholds and compared dates, or anywhere.

    Calendar edges too (`x + D` exactly on `as_of`'s day, the days around it, a datetime on the
    same day as a date edge); "never" for a `date or never` fact; for a `past` fact nothing
    after `as_of`.
    """
    if type_.never and draw(st.integers(0, 5)) == 0:
        return "never"
    text = _instant_text(draw, plan, fact, type_, now)
    limit = now if type_.has_time else _midnight(now)
    if fact.past and _aware(text) > limit:  # a past event is not after `as_of`
        return _iso(limit.astimezone(UTC)) if type_.has_time else limit.date().isoformat()
    return text


def _midnight(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


def _calendar_edges(plan: _Plan, name: str, now: datetime) -> set[datetime]:
    """The instants x with ``x + D`` on `now` (by calendar) for the fact's calendar durations."""
    out: set[datetime] = set()
    for duration in plan.bounds.calendars.get(name, ()):
        for anchor in (now.timestamp(), day_of(now.timestamp())):
            with contextlib.suppress(OverflowError, ValueError, OSError):
                out.add(datetime.fromtimestamp(shift(anchor, duration, -1), UTC))
    return out


def _instant_text(draw: st.DrawFn, plan: _Plan, fact: FactInfo, type_: TimeT, now: datetime) -> str:
    edges: set[datetime] = _calendar_edges(plan, fact.name, now)
    for days in plan.bounds.ages.get(fact.name, ()):
        with contextlib.suppress(OverflowError):
            edges.add(now - timedelta(days=days))
    for seconds in plan.bounds.instants.get(fact.name, ()):
        with contextlib.suppress(OverflowError, ValueError, OSError):
            edges.add(datetime.fromtimestamp(seconds, UTC))
    edges = {
        e for e in edges if datetime(1, 1, 3, tzinfo=UTC) < e < datetime(9999, 12, 30, tzinfo=UTC)
    }
    if type_.has_time:
        candidates = sorted({e + timedelta(seconds=s) for e in edges for s in (-1, 0, 1)})
        candidates += [
            _midnight(e) + timedelta(seconds=s) for e in sorted(edges) for s in (0, 86399)
        ]
        anywhere = st.integers(-400 * 86400, 3650 * 86400).map(lambda s: now - timedelta(seconds=s))
        pick = st.sampled_from(candidates) | anywhere if plan.bias and candidates else anywhere
        return _iso(draw(pick).astimezone(UTC))
    days = sorted({(e.date() + timedelta(days=d)) for e in edges for d in (-1, 0, 1, 2)})
    anywhere_day = st.integers(-400, 3650).map(lambda d: now.date() - timedelta(days=d))
    pick_day = st.sampled_from(days) | anywhere_day if plan.bias and days else anywhere_day
    return draw(pick_day).isoformat()


def _relate(
    draw: st.DrawFn,
    plan: _Plan,
    record: dict[str, Any],
    declared: dict[str, float],
    now: datetime,
    fixed: Mapping[str, Any],
) -> None:
    """Put one fact exactly at (or just around) where a relation between two facts flips."""
    pairs = [
        (a, b)
        for left, right in plan.bounds.relations
        for a, b in ((left, right), (right, left))
        if b.fact in declared and a.fact not in fixed
    ]
    if not pairs:
        return
    left, right = draw(st.sampled_from(pairs))
    target = left.solve(right.scale * declared[right.fact] + right.offset)
    fact = plan.protocol.fact(left.fact)
    element = element_type(fact.type)
    if target is None or not isinstance(element, NumT | QtyT):
        return
    integer = isinstance(element, NumT) and element.integer
    value = _units.clean(draw(st.sampled_from(near(target, integer))))
    if integer and not float(value).is_integer():
        return
    if not _in_range(fact, value):
        return
    sent = _express(draw, plan, fact, element, int(value) if integer else value)
    if isinstance(fact.type, SeriesT):
        windows = plan.bounds.windows.get(fact.name, (DAY,))
        seconds = draw(st.sampled_from([0.0, min(windows) / 2, min(windows)]))
        observation = {"at": _iso(now - timedelta(seconds=seconds))}
        observation.update(sent if isinstance(sent, dict) else {"value": sent})
        series = record.get(fact.name) or []
        record[fact.name] = [*series, observation]
    else:
        record[fact.name] = sent
        declared[fact.name] = value


def _on_edges(
    draw: st.DrawFn, plan: _Plan, record: dict[str, Any], now: datetime, fixed: Mapping[str, Any]
) -> None:
    """Put observations of a series on (and just around) an edge of one of its anchored
    windows, as this record's dates place it: `S over last 2 days before admission` gets one at
    the end of admission's day and one just after it."""
    series = [n for n in plan.bounds.edges if isinstance(record.get(n), list) and n not in fixed]
    if not series:
        return
    name = draw(st.sampled_from(sorted(series)))
    edge = draw(st.sampled_from(plan.bounds.edges[name]))
    at = _edge_instant(edge, record, now)
    if at is None:
        return
    fact = plan.protocol.fact(name)
    element = element_type(fact.type)
    if edge.whole_day:  # a date end covers its day: the last second in, the next day out
        at = at + DAY
        moments = (at - 1.0, at, at - DAY)
    else:
        moments = (at - 1.0, at, at + 1.0)
    for moment in draw(st.lists(st.sampled_from(moments), min_size=1, max_size=3)):
        with contextlib.suppress(OverflowError, ValueError, OSError):
            when = datetime.fromtimestamp(moment, UTC)
            observation: dict[str, Any] = {"at": _iso(when)}
            if isinstance(element, NumT | QtyT):
                value = _express(draw, plan, fact, element, _magnitude(draw, plan, fact, element))
                observation.update(value if isinstance(value, dict) else {"value": value})
            else:
                observation["value"] = _plain(draw, plan, fact, element)
            record[name] = [*record[name], observation]


def _edge_instant(edge: Edge, record: dict[str, Any], now: datetime) -> float | None:
    """The instant of `edge` for this record, or None when its anchor is absent or never."""
    as_of = now.timestamp()
    if edge.anchor == "as_of":
        anchor: float = as_of
    elif isinstance(edge.anchor, float):
        anchor = edge.anchor
    else:
        text = record.get(edge.anchor)
        if not isinstance(text, str) or text == "never":
            return None
        anchor = _aware(text).timestamp()
    if edge.since:  # `over last time_since(x)`: starts at as_of - time_since(x)
        date = len(record[edge.anchor]) == 10
        return as_of - days_since(anchor, as_of, date) * DAY
    with contextlib.suppress(OverflowError, ValueError):
        return shift(anchor, edge.offset) - edge.seconds
    return None
