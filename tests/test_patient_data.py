"""Patient input: every class of bad record is a `PatientDataError` naming the fact and the
JSON path with a stable code, never a silent wrong verdict; null and absent mean unknown."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

import protocol_rules as pr
from protocol_rules import Outcome, PatientDataError, Status

from .conftest import load_patient

AS_OF = "2026-03-01T00:00:00Z"

RULES = """protocol P
fact creatinine: quantity 'mg/dL' molar_mass 113.12 'g/mol' range 0 to 20
fact age: quantity 'a' range 0 to 130
fact organs: integer range 0 to 10
fact score: number
fact flag: boolean
fact cause: one of septic, prerenal, ischemic_atn
fact onset: date
fact seen: datetime
fact label: text
fact doses: series of quantity 'mg/d'
fact events: series of one of mi, stroke
fact drugs: set of one of metformin, insulin
inclusion I1 "c": creatinine > 2 'mg/dL' and age >= 18 years and organs < 3 and score > 0
inclusion I2 "f": flag and cause = septic and onset < @2026-01-01 and seen is known
inclusion I3 "t": label is known or drugs contains insulin
inclusion I4 "w": count(doses over last 30 days) >= 0 and exists(events over last 30 days)
"""

NO_WINDOWS = """protocol Q
fact age: quantity 'a'
fact onset: date
inclusion I1 "adult": age >= 18 years and onset < @2026-01-01
"""


@pytest.fixture(scope="module")
def rules() -> pr.Protocol:
    return pr.parse_protocol(RULES)


def refuse(protocol: pr.Protocol, patient, as_of=AS_OF, **kw) -> PatientDataError:
    with pytest.raises(PatientDataError) as info:
        protocol.evaluate(patient, as_of=as_of, **kw)
    error = info.value
    assert isinstance(error, pr.RulesError)
    assert error.diagnostics and all(d.is_error for d in error.diagnostics)
    return error


def only(error: PatientDataError) -> pr.Diagnostic:
    (diagnostic,) = error.diagnostics
    return diagnostic


# --------------------------------------------------------------------------- PR401


@pytest.mark.parametrize("patient", [[], [{"age": 1}], "age", 3, None, True], ids=repr)
def test_a_record_that_is_not_an_object(rules, patient):
    d = only(refuse(rules, patient))
    assert (d.code, d.path) == ("PR401", "$")
    assert "object" in d.message


# --------------------------------------------------------------------------- PR402


def test_an_undeclared_fact_with_did_you_mean(rules):
    error = refuse(rules, {"creatinin": 1.0})
    d = only(error)
    assert (d.code, d.path) == ("PR402", "$.creatinin")
    assert "creatinin" in d.message
    assert "creatinine" in d.help  # did you mean `creatinine`?
    assert error.fact == "creatinin"


def test_an_undeclared_fact_without_a_close_name_says_how_to_accept_it(rules):
    d = only(refuse(rules, {"zzz_unrelated": 1}))
    assert d.code == "PR402"
    assert "ignore_unknown" in d.help


def test_ignore_unknown_accepts_undeclared_facts(rules):
    result = rules.evaluate({"zzz_unrelated": 1, "flag": False}, as_of=AS_OF, ignore_unknown=True)
    assert result.criterion("I2").outcome is Outcome.NOT_MET


def test_ignore_unknown_still_refuses_bad_declared_facts(rules):
    d = only(refuse(rules, {"zzz_unrelated": 1, "age": "x"}, ignore_unknown=True))
    assert (d.code, d.path) == ("PR403", "$.age")


def test_as_of_is_not_an_undeclared_fact(rules):
    rules.evaluate({"as_of": AS_OF})


# --------------------------------------------------------------------------- PR403


@pytest.mark.parametrize(
    "fact, value",
    [
        ("age", "54"),  # a string for a number
        ("age", True),  # a bool for a number
        ("score", False),
        ("score", [1]),
        ("organs", 2.5),  # not a whole number
        ("flag", 1),  # a number for a boolean
        ("flag", "true"),
        ("label", 3),
        ("cause", 1),
        ("doses", {"value": 1, "at": AS_OF}),  # a series is a list
        ("drugs", "insulin"),  # a set is a list
    ],
    ids=repr,
)
def test_a_wrong_type(rules, fact, value):
    d = only(refuse(rules, {fact: value}))
    assert (d.code, d.path) == ("PR403", f"$.{fact}")
    assert f"`{fact}`" in d.message


def test_a_string_for_a_number_hints_at_json_numbers(rules):
    d = only(refuse(rules, {"age": "54"}))
    assert "string" in d.message
    assert "without quotes" in d.help


def test_a_wrong_type_inside_a_series_names_the_observation(rules):
    doses = [
        {"value": 10, "at": AS_OF},
        {"value": 12, "at": AS_OF},
        {"value": "15", "at": AS_OF},
    ]
    d = only(refuse(rules, {"doses": doses}))
    assert (d.code, d.path) == ("PR403", "$.doses[2].value")


# --------------------------------------------------------------------------- PR404


@pytest.mark.parametrize(
    "text, path",
    [
        ('{"age": NaN}', "$.age"),
        ('{"age": Infinity}', "$.age"),
        ('{"score": -Infinity}', "$.score"),
        ('{"creatinine": {"value": NaN, "unit": "umol/L"}}', "$.creatinine"),
        ('{"doses": [{"value": NaN, "at": "2026-02-20T00:00:00Z"}]}', "$.doses[0].value"),
    ],
)
def test_nan_and_infinity_are_refused(rules, text, path):
    patient = json.loads(text)  # json.loads accepts NaN and Infinity
    d = only(refuse(rules, patient))
    assert (d.code, d.path) == ("PR404", path)


UNRANGED = """protocol U
fact platelet_count: quantity '/uL'
fact doses: series of quantity 'mg/d'
exclusion E18 "Platelet count <25,000/uL": platelet_count < 25000 '/uL'
exclusion E17 "Dose > 15 mg/d": any(doses over last 30 days) > 15 'mg/d'
"""


@pytest.mark.parametrize(
    "patient, path",
    [
        ({"platelet_count": {"value": 1e308, "unit": "10*9/L"}}, "$.platelet_count"),
        ({"doses": [{"value": 1e308, "unit": "g/d", "at": AS_OF}]}, "$.doses[0].value"),
    ],
    ids=["quantity", "observation"],
)
def test_a_value_that_overflows_when_converted_is_refused(patient, path):
    """1e308 10*9/L is infinity in /uL: it was accepted, and made the patient eligible."""
    d = only(refuse(pr.parse_protocol(UNRANGED), patient))
    assert (d.code, d.path) == ("PR404", path)
    assert "overflows" in d.message


def test_the_unit_conversions_a_fact_remembers_are_bounded():
    """A stream of unique unit spellings must not grow memory without end."""
    from protocol_rules.check.types import QtyT
    from protocol_rules.facts import CONVERSIONS_PER_FACT, _in_unit

    fact = pr.parse_protocol(UNRANGED).fact("platelet_count")
    in_unit = _in_unit(fact, QtyT("/uL"))
    for n in range(CONVERSIONS_PER_FACT + 20):
        assert in_unit(1, f"10*9{{n{n}}}/L") == 1000  # an annotation makes each spelling new
    assert len(in_unit.cache) == CONVERSIONS_PER_FACT


# --------------------------------------------------------------------------- PR405


@pytest.mark.parametrize(
    "fact, value",
    [
        ("age", -1),
        ("age", 131),
        ("organs", 11),
        ("age", {"value": 2000, "unit": "mo"}),  # 166.7 years after conversion
        ("creatinine", {"value": 2000, "unit": "umol/L"}),  # 22.6 mg/dL after conversion
    ],
    ids=repr,
)
def test_outside_the_declared_range(rules, fact, value):
    d = only(refuse(rules, {fact: value}))
    assert (d.code, d.path) == ("PR405", f"$.{fact}")
    assert "range" in d.message


def test_the_range_is_checked_in_the_declared_unit(rules):
    # 130 years is in range, 1560 months is the same, 1561 is not
    rules.evaluate({"age": {"value": 1560, "unit": "mo"}}, as_of=AS_OF)
    d = only(refuse(rules, {"age": {"value": 1561, "unit": "mo"}}))
    assert d.code == "PR405"
    assert "130" in d.message


def test_range_bounds_are_inclusive(rules):
    rules.evaluate({"age": 0, "organs": 10, "creatinine": 20}, as_of=AS_OF)


# --------------------------------------------------------------------------- PR406


def test_an_unknown_unit(rules):
    d = only(refuse(rules, {"creatinine": {"value": 1, "unit": "furlong"}}))
    assert (d.code, d.path) == ("PR406", "$.creatinine.unit")
    assert "furlong" in d.message


@pytest.mark.parametrize(
    "fact, unit",
    [("creatinine", "kg"), ("age", "mg"), ("creatinine", "mmHg")],
)
def test_an_incompatible_unit(rules, fact, unit):
    d = only(refuse(rules, {fact: {"value": 1, "unit": unit}}))
    assert (d.code, d.path) == ("PR406", f"$.{fact}.unit")
    assert unit in d.message


def test_an_incompatible_unit_inside_a_series(rules):
    doses = [{"value": 1, "unit": "mL", "at": AS_OF}]
    d = only(refuse(rules, {"doses": doses}))
    assert d.code == "PR406"
    assert d.path.startswith("$.doses[0]")


def test_a_substance_unit_without_molar_mass_is_explained():
    protocol = pr.parse_protocol(
        "protocol M\nfact cr: quantity 'mg/dL'\ninclusion I1 \"x\": cr > 1 'mg/dL'\n"
    )
    d = only(refuse(protocol, {"cr": {"value": 90, "unit": "umol/L"}}))
    assert d.code == "PR406"
    assert "molar mass" in d.message


# --------------------------------------------------------------------------- PR407


@pytest.mark.parametrize(
    "fact, value",
    [
        ("onset", "2026-13-01"),
        ("onset", "yesterday"),
        ("onset", "01/02/2026"),
        ("onset", 20260101),
        ("seen", "2026-03-01T25:00:00Z"),
    ],
    ids=repr,
)
def test_a_malformed_date(rules, fact, value):
    d = only(refuse(rules, {fact: value}))
    assert (d.code, d.path) == ("PR407", f"$.{fact}")


def test_a_date_fact_given_a_datetime_is_refused_or_counts_from_the_day_start():
    protocol = pr.parse_protocol(
        'protocol D\nfact onset: date\ninclusion I1 "on new year": onset = @2026-01-01\n'
    )
    try:
        result = protocol.evaluate({"onset": "2026-01-01T10:00:00Z"})
    except PatientDataError as error:
        assert (only(error).code, only(error).path) == ("PR407", "$.onset")
    else:
        assert result.criterion("I1").outcome is Outcome.MET


def test_a_malformed_observation_time(rules):
    events = [{"value": "mi", "at": AS_OF}, {"value": "mi", "at": "last week"}]
    d = only(refuse(rules, {"events": events}))
    assert (d.code, d.path) == ("PR407", "$.events[1].at")


def test_a_malformed_as_of(rules):
    d = only(refuse(rules, {}, as_of="soon"))
    assert d.code == "PR407"
    d = only(refuse(rules, {"as_of": "soon"}, as_of=None))
    assert (d.code, d.path) == ("PR407", "$.as_of")


# --------------------------------------------------------------------------- PR408


@pytest.mark.parametrize(
    "observation", [{"value": 3}, {"value": 3, "at": None}], ids=["no at", "null at"]
)
def test_an_observation_without_at(rules, observation):
    doses = [{"value": 1, "at": AS_OF}, {"value": 2, "at": AS_OF}, observation]
    d = only(refuse(rules, {"doses": doses}))
    assert (d.code, d.path) == ("PR408", "$.doses[2]")
    assert "`doses`" in d.message


# --------------------------------------------------------------------------- PR409


def test_an_undeclared_choice_with_did_you_mean(rules):
    d = only(refuse(rules, {"cause": "sepsis"}))
    assert (d.code, d.path) == ("PR409", "$.cause")
    assert "sepsis" in d.message
    assert "septic" in d.help


def test_an_undeclared_choice_in_a_set_and_a_series(rules):
    d = only(refuse(rules, {"drugs": ["metformin", "insulinn"]}))
    assert (d.code, d.path) == ("PR409", "$.drugs[1]")
    assert "insulin" in d.help
    d = only(refuse(rules, {"events": [{"value": "strok", "at": AS_OF}]}))
    assert d.code == "PR409"
    assert d.path.startswith("$.events[0]")


def test_an_undeclared_choice_far_from_any_lists_the_choices(rules):
    d = only(refuse(rules, {"cause": "zzzz"}))
    assert d.code == "PR409"
    assert all(choice in d.help for choice in ("septic", "prerenal", "ischemic_atn"))


# --------------------------------------------------------------------------- PR410 and as_of


def test_missing_as_of_for_a_protocol_with_windows(rules):
    d = only(refuse(rules, {"flag": True}, as_of=None))
    assert d.code == "PR410"
    assert "as_of" in d.message


def test_a_protocol_without_windows_needs_no_as_of():
    protocol = pr.parse_protocol(NO_WINDOWS)
    result = protocol.evaluate({"age": 40, "onset": "2025-06-01"})
    assert result.status is Status.ELIGIBLE
    assert result.as_of is None
    assert result.to_dict()["as_of"] is None


def test_as_of_is_read_from_the_patient(rules):
    result = rules.evaluate({"as_of": "2026-03-01T08:00:00+08:00"})
    assert result.as_of == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


def test_the_as_of_argument_overrides_the_patient_as_of():
    protocol = pr.parse_protocol(
        'protocol W\nfact s: series of number\ninclusion I1 "x": exists(s over last 1 day)\n'
    )
    patient = {"as_of": "2026-03-01T00:00:00Z", "s": [{"value": 1, "at": "2026-03-10T00:00:00Z"}]}
    assert protocol.evaluate(patient).criterion("I1").outcome is Outcome.NOT_MET
    result = protocol.evaluate(patient, as_of="2026-03-10T12:00:00Z")
    assert result.criterion("I1").outcome is Outcome.MET
    assert result.as_of == datetime(2026, 3, 10, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "as_of",
    [
        "2026-03-01",  # a date is its midnight, UTC
        "2026-03-01T00:00:00Z",
        "2026-03-01T08:00:00+08:00",
        datetime(2026, 3, 1),  # naive means UTC
        datetime(2026, 3, 1, 8, tzinfo=timezone(timedelta(hours=8))),
    ],
    ids=repr,
)
def test_as_of_forms(rules, as_of):
    result = rules.evaluate({}, as_of=as_of)
    assert result.as_of == datetime(2026, 3, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- together, null


def test_several_bad_facts_are_reported_together(rules):
    error = refuse(
        rules,
        {
            "age": "54",
            "flag": "yes",
            "cause": "sepsis",
            "creatinin": 1,
            "doses": [{"value": 1}],
            "score": 2,  # fine
        },
    )
    found = {(d.code, d.path) for d in error.diagnostics}
    assert found == {
        ("PR403", "$.age"),
        ("PR403", "$.flag"),
        ("PR409", "$.cause"),
        ("PR402", "$.creatinin"),
        ("PR408", "$.doses[0]"),
    }
    assert "and 4 more errors" in str(error)


def test_bad_data_and_missing_as_of_are_reported_together(rules):
    error = refuse(rules, {"age": "54"}, as_of=None)
    assert {d.code for d in error.diagnostics} == {"PR403", "PR410"}


def test_every_diagnostic_names_the_fact_in_its_message(rules):
    error = refuse(rules, {"age": -5, "cause": "x", "onset": "y", "score": float("nan")})
    for d in error.diagnostics:
        fact = d.path[2:].split("[")[0].split(".")[0]
        assert f"`{fact}`" in d.message
        assert d.location() == d.path
        assert d.to_dict()["path"] == d.path


@pytest.mark.parametrize(
    "fact", ["age", "organs", "flag", "cause", "onset", "seen", "label", "doses", "drugs"]
)
def test_null_means_unknown(rules, fact):
    null = rules.evaluate({fact: None}, as_of=AS_OF)
    absent = rules.evaluate({}, as_of=AS_OF)
    assert null.to_dict() == absent.to_dict()
    reads = [
        node
        for c in null.criteria
        for node in c.trace.walk()
        if node.kind == "fact" and node.fact == fact and node.evaluated
    ]
    assert reads and all(not node.known for node in reads)


def test_null_and_absent_give_the_same_result(rules):
    absent = rules.evaluate({"flag": True}, as_of=AS_OF)
    null = rules.evaluate({"flag": True, "cause": None, "age": None}, as_of=AS_OF)
    assert absent.to_dict(traces=False) == null.to_dict(traces=False)
    assert absent.missing_facts == null.missing_facts


def test_a_valid_example_patient_is_accepted_after_a_bad_one(nct):
    bad = load_patient("eligible.json") | {"platelet_count": {"value": 25, "unit": "billion/L"}}
    with pytest.raises(PatientDataError) as info:
        nct.evaluate(bad)
    assert info.value.fact == "platelet_count"
    assert nct.evaluate(load_patient("eligible.json")).status is Status.ELIGIBLE


def test_date_and_datetime_objects_are_read_like_their_iso_strings():
    from datetime import date

    protocol = pr.parse_protocol(
        'protocol D\nfact onset: date\nfact seen: datetime\ninclusion I1 "x": '
        "onset = @2026-01-01 and seen > @2026-01-01T00:00\n"
    )
    result = protocol.evaluate(
        {"onset": date(2026, 1, 1), "seen": datetime(2026, 1, 2, 10, tzinfo=UTC)}
    )
    assert result.criterion("I1").outcome is Outcome.MET
    string = refuse(protocol, {"onset": "2026-01-01T10:00:00Z"})
    objects = refuse(protocol, {"onset": datetime(2026, 1, 1, 10, tzinfo=UTC)})
    assert [d.code for d in string.diagnostics] == [d.code for d in objects.diagnostics]
