"""Units: the bounds checked before any parsing, the bounded caches, UCUM's own meanings,
messages in our words, simplified units of products, and the cache kept between processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import protocol_rules as pr
from protocol_rules import PatientDataError, _cache, units
from protocol_rules.check.unit_names import substance

from .conftest import ROOT

AS_OF = "2026-03-01T00:00:00Z"


@pytest.fixture
def no_registry(monkeypatch):
    """Call it to fail the test if anything then reaches the UCUM registry or its parser."""

    def refuse(*args, **kwargs):
        raise AssertionError("the UCUM registry was reached")

    def forbid():
        units.registry()
        monkeypatch.setattr(units, "_registry", None)
        monkeypatch.setattr(units, "_build_registry", refuse)

    return forbid


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache folder for this test, and no unit known in memory."""
    monkeypatch.setenv(_cache.ENV_VAR, str(tmp_path / "cache"))
    units.cache_clear()
    yield tmp_path / "cache" / pr.__version__
    units.cache_clear()


# --------------------------------------------------------------------------- bounds


HOSTILE_UNITS = [
    "10*99999999/L",
    "10^99999999/L",
    "m99999999",
    "10*-99999999/L",
    "g" * 16_000,
    "m/" * 8_000,
]


@pytest.mark.parametrize("unit", HOSTILE_UNITS, ids=lambda u: u[:14])
def test_hostile_units_are_refused_before_any_parsing(unit, no_registry):
    no_registry()
    with pytest.raises(units.UnitError) as caught:
        units.check_unit(unit)
    assert "exponent" in caught.value.message or "at most" in caught.value.message
    with pytest.raises(units.UnitError):
        units.conversion(unit, "/uL")


@pytest.mark.parametrize("unit", HOSTILE_UNITS, ids=lambda u: u[:14])
def test_a_hostile_unit_in_a_patient_record_is_bad_data(unit, no_registry):
    protocol = pr.parse_protocol(
        "protocol P\nfact plt: quantity '/uL'\ninclusion I1 \"p\": plt > 1 '/uL'\n"
    )
    no_registry()
    with pytest.raises(PatientDataError) as caught:
        protocol.evaluate({"plt": {"value": 1, "unit": unit}}, as_of=AS_OF)
    (d,) = caught.value.diagnostics
    assert d.code == "PR406" and d.path == "$.plt.unit"
    assert len(d.message) < 200  # the 16 KB unit is not echoed back


def test_a_hostile_unit_in_a_rules_file_is_pr303_naming_the_bound(no_registry):
    text = "protocol P\nfact plt: quantity '/uL'\ninclusion I1 \"p\": plt > 1 '10*99999999/L'\n"
    pr.check_text(text.replace("10*99999999/L", "/uL"))
    no_registry()
    (d,) = pr.check_text(text)
    assert d.code == "PR303"
    assert d.label == f"the exponent `99999999` is too large (at most {units.MAX_EXPONENT})"
    assert d.span.text == "'10*99999999/L'"


def test_units_at_the_bounds_still_work():
    assert units.conversion("10*30/L", "10*27/L").factor == 1000.0
    assert units.dimension("mL/min/{1.73_m2}") == "[length] ** 3 / [time]"
    with pytest.raises(units.UnitError, match="too large"):
        units.check_unit(f"10*{units.MAX_EXPONENT + 1}/L")


def test_a_conversion_factor_out_of_range_is_refused_in_our_words():
    with pytest.raises(units.UnitError) as caught:
        units.conversion(
            "km30.km30.km30.km30.km30.km30.km30.km30.km30.km30.km30",
            "m30.m30.m30.m30.m30.m30.m30.m30.m30.m30.m30",
        )
    assert "out of range" in caught.value.message


# --------------------------------------------------------------------------- bounded caches


def test_the_unit_caches_are_bounded():
    assert units._info.cache_info().maxsize == units.CACHE_SIZE
    assert units.conversion.cache_info().maxsize == units.CACHE_SIZE
    assert units._table.limit == units.CACHE_SIZE


def test_a_table_keeps_only_the_most_recently_used_entries(fresh_cache):
    table = _cache.Table("test", lambda: "k", limit=3)
    for n in range(10):
        table.put(f"u{n}", {"value": n})
    assert table.get("u9") == {"value": 9}
    assert table.get("u0") is None
    table.get("u7")  # used: kept over u8
    table.put("u10", {"value": 10})
    table.save()
    stored = _cache.read("test", "k")
    assert list(stored) == ["u9", "u7", "u10"]


# --------------------------------------------------------------------------- UCUM meanings


def test_an_apostrophe_is_an_arc_minute_not_a_time_minute():
    assert units.dimension("'") == "dimensionless"
    assert units.dimension("''") == "dimensionless"
    with pytest.raises(units.UnitError):
        units.conversion("'", "a")
    protocol = pr.parse_protocol(
        "protocol P\nfact age: quantity 'a'\ninclusion I1 \"a\": age > 18 years\n"
    )
    with pytest.raises(PatientDataError) as caught:
        protocol.evaluate({"age": {"value": 30, "unit": "'"}}, as_of=AS_OF)
    assert caught.value.diagnostics[0].code == "PR406"


# --------------------------------------------------------------------------- messages


def test_a_unit_error_is_in_our_words_and_points_at_the_unit():
    text = "protocol P\nfact c: quantity 'mg/dL'\ninclusion I1 \"c\": c < 2 'mgg/dL'\n"
    (d,) = pr.check_text(text)
    assert d.code == "PR303"
    assert d.span.text == "'mgg/dL'"
    assert d.label == "not understood from character 3 (`g`)"
    assert "column" not in d.label and "unexpected" not in d.label
    assert d.help == "did you mean `'mg/dL'`? units are UCUM codes"


def test_a_substance_conversion_names_the_substance_in_a_ratio():
    text = (
        "protocol P\nfact uacr: quantity 'mg/g' \"Urine albumin/creatinine ratio\"\n"
        "inclusion I1 \"u\": uacr < 3 'mg/mmol'\n"
    )
    (d,) = pr.check_text(text)
    assert d.code == "PR305"
    assert "molar mass of creatinine" in d.message
    assert "denominator of `mg/mmol`" in d.message
    assert "molar_mass 113.12 'g/mol'" in d.help


def test_a_patient_unit_that_needs_a_molar_mass_names_the_substance():
    protocol = pr.parse_protocol(
        "protocol P\nfact uacr: quantity 'mg/g' \"Urine albumin/creatinine ratio\"\n"
        "inclusion I1 \"u\": uacr < 30 'mg/g'\n"
    )
    with pytest.raises(PatientDataError) as caught:
        protocol.evaluate({"uacr": {"value": 3, "unit": "mg/mmol"}}, as_of=AS_OF)
    (d,) = caught.value.diagnostics
    assert d.code == "PR406" and "molar mass of creatinine" in d.message
    assert "molar_mass 113.12 'g/mol'" in d.help


@pytest.mark.parametrize(
    ("source", "target", "mentions", "name"),
    [
        ("mg/mmol", "mg/g", ("uacr",), "creatinine"),
        ("mg/mmol", "mg/g", ("ratio", "Urine albumin/creatinine ratio"), "creatinine"),
        ("mmol/L", "mg/dL", ("serum_creatinine",), "creatinine"),
        ("mmol/L", "mg/dL", ("glucose",), "glucose"),
    ],
)
def test_substances_are_read_from_the_fact(source, target, mentions, name):
    phrase, clause = substance(source, target, *mentions)
    assert phrase.startswith(name)
    assert clause is not None and "molar_mass" in clause


def test_an_unnamed_substance_says_where_it_is():
    phrase, clause = substance("mmol/L", "mg/dL", "x")
    assert phrase == "the substance in the numerator of `mmol/L`" and clause is None


# --------------------------------------------------------------------------- products


TBW = """protocol P
fact tbw: quantity 'L'
fact height: quantity 'cm'
fact weight: quantity 'kg'
fact dose: quantity 'mg/dL'
fact volume: quantity 'mL'
inclusion I1 "t": tbw / (height * height) > 10 'L/m2'
inclusion I2 "b": weight / (height * height) < 30 'kg/m2'
inclusion I3 "d": dose * volume > 1 'mg'
"""


def test_a_product_is_shown_in_a_conventional_unit_with_its_parentheses():
    result = pr.parse_protocol(TBW).evaluate(
        {"tbw": 42, "height": 180, "weight": 81, "dose": 100, "volume": 50}, as_of=AS_OF
    )
    trace = result.criterion("I1").trace
    quotient = trace.children[0]
    assert quotient.expr == "tbw / (height * height)"
    assert quotient.unit == "L/m2"
    assert quotient.value == pytest.approx(42 / 1.8**2)
    assert "L/(cm.cm)" not in result.explain()
    assert result.criterion("I2").trace.children[0].unit == "kg/m2"
    assert result.criterion("I2").trace.children[0].value == pytest.approx(25.0)
    assert result.criterion("I3").trace.children[0].unit == "mg"
    assert result.criterion("I3").trace.children[0].value == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("left", "op", "right", "unit", "factor"),
    [
        ("L", "/", "(cm.cm)", "L/m2", 1e4),
        ("kg", "/", "cm2", "kg/m2", 1e4),
        ("mg/dL", ".", "mL", "mg", 0.01),
        ("mL/(6.h)", ".", "h", "mL", 1 / 6),
        ("mL", "/", "h", "mL/h", 1.0),
        ("mL/min/{1.73_m2}", ".", "min", "mL/{1.73_m2}", 1.0),
    ],
)
def test_simplified_units_have_the_same_dimension(left, op, right, unit, factor):
    got, scale = units.simplified_product(left, op, right)
    assert (got, scale) == (unit, pytest.approx(factor))
    written = units._join(left, op, right)
    assert units.dimension(got) == units.dimension(written)


# --------------------------------------------------------------------------- across processes


def test_a_second_process_needs_no_registry(fresh_cache, monkeypatch):
    text = (ROOT / "protocols" / "nct04194671.rules").read_text(encoding="utf-8")
    pr.check_text(text)
    units._table.save()
    assert any(fresh_cache.glob("units-*.json"))
    units.cache_clear()
    monkeypatch.setattr(units, "_registry", None)
    monkeypatch.setattr(units, "_build_registry", lambda: pytest.fail("registry built"))
    assert [d for d in pr.check_text(text) if d.is_error] == []


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"\xff\xfe", b"[]", b'{"format": 1, "key": "x", "data": []}', b"null"],
)
def test_a_corrupt_cache_file_is_ignored(fresh_cache, content):
    fresh_cache.mkdir(parents=True)
    (fresh_cache / f"units-{units._key()}.json").write_bytes(content)
    assert units.conversion("10*9/L", "/uL").factor == 1000.0


def test_foreign_entries_in_the_cache_are_recomputed(fresh_cache):
    key = units._key()
    bad = {
        "unit:mg/dL": {"value": {"dimension": 3}},
        "conversion:mg/dL\x00g/L\x00None": {"value": ["x", 1]},
    }
    assert _cache.write("units", key, bad)
    assert units.dimension("mg/dL") == "[mass] / [length] ** 3"
    assert units.conversion("mg/dL", "g/L").factor == pytest.approx(0.01)


def test_the_cache_file_is_json_written_whole(fresh_cache):
    script = "from protocol_rules import units\nunits.conversion('10*9/L', '/uL')\n"
    env = {"PYTHONPATH": str(ROOT / "src"), _cache.ENV_VAR: str(fresh_cache.parent)}
    runs = [subprocess.Popen([sys.executable, "-c", script], env=env) for _ in range(3)]
    assert all(p.wait(timeout=120) == 0 for p in runs)
    files = list(fresh_cache.glob("*"))
    assert [f.name for f in files if f.name.startswith(".")] == []  # no temporary left
    (path,) = [f for f in files if f.name.startswith("units-")]
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["data"]["conversion:10*9/L\x00/uL\x00None"] == {"value": [1000.0, 0.0]}


def test_an_empty_setting_turns_the_cache_off(monkeypatch):
    monkeypatch.setenv(_cache.ENV_VAR, "")
    assert _cache.cache_dir() is None
    assert _cache.write("x", "k", {}) is False
    assert _cache.read("x", "k") is None


def test_the_default_cache_folder_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(_cache.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert _cache.cache_dir() == str(tmp_path / "protocol-rules" / pr.__version__)
    assert Path(str(_cache.cache_dir())).name == pr.__version__


def test_a_power_beyond_the_bounds_is_pr315_not_a_crash():
    text = "protocol P\nfact height: quantity 'cm'\ninclusion I1 \"t\": height ^ 40 > height ^ 2\n"
    (d,) = pr.check_text(text)
    assert d.code == "PR315" and "exponent `40`" in d.message
    assert d.span.text == "height ^ 40"
