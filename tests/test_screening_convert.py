"""`convert` keeps each value's JSON type through Parquet and CSV: a string where a number,
a boolean or a date is declared gets the diagnostic `evaluate` gives, not a silent reading; a
string that looks like a number stays a string for a text fact. Compared row by row with
`evaluate` through the layout in memory, in Parquet and in CSV. Text columns of dates and
datetimes are read a column at a time, to the seconds (or the refusal) `evaluate` gives."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("polars")

import polars as pl

from protocol_rules import parse_protocol
from protocol_rules.facts import Invalid, _date, parse_instant
from protocol_rules.sources import to_layout, write_layout
from protocol_rules.sources.instants import parse_texts

from .test_screening import assert_agree, with_ids

PROTOCOL = """protocol TYPES
fact age: number
fact ok: boolean
fact word: text
fact stage: one of a, b
fact seen: date
fact level: series of number
fact tags: set of text
inclusion I1 "x": age > 3 and ok
inclusion I2 "y": word = "54" or stage = a or seen > @2020-01-01
inclusion I3 "z": count(level over last 3 days) >= 1 and tags contains "7"
"""
AS_OF = "2026-03-10T12:00:00Z"
NOW = "2026-03-09T12:00:00Z"


def record(**facts: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "as_of": AS_OF,
        "age": 54,
        "ok": True,
        "word": "54",
        "stage": "a",
        "seen": "2021-01-01",
        "level": [{"at": NOW, "value": 1}],
        "tags": ["7", "x"],
    }
    return {**base, **facts}


RECORDS = [
    record(),
    record(age="54"),  # a string among numbers
    record(age=" 54 "),
    record(age="1e3"),
    record(ok="true"),  # a string among booleans
    record(word='"quoted"'),  # a text holding quotes
    record(word="true"),
    record(stage="b"),
    record(seen="2019-05-05"),
    record(level=[{"at": NOW, "value": "2"}]),  # a string among the numbers of a series
    record(level=[{"at": NOW, "value": 2.5}, {"at": NOW, "value": "nan"}]),
    record(tags=["7", "8"]),
    record(tags=["7", '"8"']),
    record(age=True),
    record(age=60.5),
]


@pytest.fixture(scope="module")
def protocol() -> Any:
    return parse_protocol(PROTOCOL)


def test_mixed_json_types_are_read_as_evaluate_reads_them(protocol: Any, tmp_path: Path) -> None:
    layout = to_layout(with_ids(RECORDS))
    assert_agree(protocol, RECORDS, layout)
    for fmt in ("parquet", "csv"):
        write_layout(layout, str(tmp_path / fmt), fmt)
        assert_agree(protocol, RECORDS, str(tmp_path / fmt))


def test_a_column_of_strings_for_a_number_is_refused(protocol: Any, tmp_path: Path) -> None:
    """Every record gives the age as a string: each is refused with evaluate's PR403."""
    records = [record(age="54"), record(age="60"), record(ok="false")]
    layout = to_layout(with_ids(records))
    for fmt in ("parquet", "csv"):
        write_layout(layout, str(tmp_path / fmt), fmt)
        frame = protocol.screen(str(tmp_path / fmt)).frame
        assert frame.get_column("error_code").to_list() == ["PR403"] * 3
        assert_agree(protocol, records, str(tmp_path / fmt))


# --------------------------------------------------------------------------- dates in text


@st.composite
def iso_texts(draw: st.DrawFn) -> str:
    """ISO 8601 texts of the shapes people send, and of the ones the fast path leaves alone."""
    moment = draw(st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)))
    form = draw(st.sampled_from(("date", "minutes", "seconds", "fraction", "space", "basic")))
    zone = draw(st.sampled_from(("", "Z", "+05:30", "-11:45", "+23:59", "+0530", "+24:00")))
    day = moment.date().isoformat()
    match form:
        case "date":
            return day
        case "minutes":
            return f"{day}T{moment:%H:%M}{zone}"
        case "seconds" | "space":
            return f"{day}{'T' if form == 'seconds' else ' '}{moment:%H:%M:%S}{zone}"
        case "fraction":
            return f"{day}T{moment:%H:%M:%S}.{moment.microsecond:06d}{zone}"
    return f"{moment:%Y%m%d}"


TEXTS = st.one_of(
    iso_texts(),
    st.text(alphabet="0123456789-:TZ+ .W", max_size=25),
    st.sampled_from(("2026-02-30", "2026-02-29", "2024-02-29", "2026-03-01T24:00", "never")),
)


@given(st.lists(TEXTS, max_size=30), st.booleans())
def test_text_times_are_read_as_evaluate_reads_them(texts: list[str], has_time: bool) -> None:
    def one(text: str) -> float:
        return parse_instant(text, "a datetime") if has_time else _date(text)

    want = []
    for text in texts:
        try:
            want.append(one(text))
        except Invalid:
            want.append(None)
    got = parse_texts(pl.Series(texts, dtype=pl.String), has_time, one).to_list()
    assert got == want
