"""The layout's fast paths give what `evaluate` gives, whichever path the data takes.

Patient identifiers in increasing order are joined and grouped as sorted keys; in any other
order they are not; observations may come in any order; quantities in another unit are
converted on their own rows; a column of texts without quotes is taken as it is.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

pl = pytest.importorskip("polars")

from protocol_rules import load_protocol, parse_protocol  # noqa: E402
from protocol_rules.sources import Layout, to_layout  # noqa: E402

from .test_screening import ROOT, assert_agree, drawn, generate, with_ids  # noqa: E402


@pytest.fixture(scope="module")
def nct() -> Any:
    return load_protocol(ROOT / "protocols" / "nct04194671.rules")


def shuffled(layout: Layout, seed: int) -> Layout:
    """The same layout, patients and observations in another order."""
    rng = random.Random(seed)
    order = list(range(layout.patients.height))
    rng.shuffle(order)
    patients = layout.patients[order]
    observations = layout.observations
    if observations is not None:
        rows = list(range(observations.height))
        rng.shuffle(rows)
        observations = observations[rows]
    return Layout(patients, observations)


@pytest.mark.parametrize("seed", [1, 2])
def test_patients_and_observations_in_any_order_agree(nct: Any, seed: int) -> None:
    records = with_ids(generate(1500, seed=seed))
    layout = shuffled(to_layout(records), seed)
    by_id = {r["id"]: r for r in records}
    order = layout.patients.get_column("patient_id").to_list()
    assert order != sorted(order)  # the path of unsorted identifiers
    assert_agree(nct, [by_id[i] for i in order], layout)


def test_sorted_and_unsorted_identifiers_give_the_same_frame(nct: Any) -> None:
    records = with_ids(generate(800, seed=5))
    layout = to_layout(records)
    sorted_frame = nct.screen(layout).frame
    unsorted_frame = nct.screen(shuffled(layout, 3)).frame.sort("patient_id")
    assert sorted_frame.equals(unsorted_frame)


def test_string_identifiers_and_gaps_agree(nct: Any) -> None:
    records = [{**r, "id": f"p{i * 7:05d}"} for i, r in enumerate(generate(600, seed=9))]
    assert_agree(nct, records, to_layout(records))


UNITS = """\
protocol U
fact dose: quantity 'mg' range 0 to 5000
fact label: text
fact kind: one of low, high
inclusion D "dose": dose <= 1 'g'
inclusion L "label": label = "a\\"b" or label = "plain"
inclusion K "kind": kind = high
"""


def test_units_on_their_own_rows_and_quoted_texts() -> None:
    protocol = parse_protocol(UNITS)
    records = [
        {"id": 0, "dose": {"value": 1, "unit": "g"}, "label": "plain", "kind": "high"},
        {"id": 1, "dose": 1000, "label": 'a"b', "kind": "low"},
        {"id": 2, "dose": {"value": 1000.0000001, "unit": "mg"}, "label": "x"},
        {"id": 3, "dose": {"value": 0.1, "unit": "kg"}, "kind": "medium"},
        {"id": 4, "dose": {"value": 3, "unit": "mL"}},
        {"id": 5, "dose": {"value": 999999.9999999, "unit": "ug"}, "label": '"quoted"'},
        {"id": 6},
    ]
    assert_agree(protocol, records, to_layout(records))
    plain = [{k: v for k, v in r.items() if k != "label"} for r in records]
    assert_agree(protocol, plain, to_layout(plain))  # no quotes in the column at all


def test_drawn_patients_in_reverse_order_agree() -> None:
    protocol = parse_protocol(UNITS)
    records = with_ids(drawn(protocol, 300))[::-1]
    assert_agree(protocol, records, to_layout(records))
