"""Libraries: `use kidney` (shipped in the package) and `use "file.rules"` (beside a protocol),
and the kidney library's equations against worked examples.

Where the expected figures come from, honestly:

- The coefficients of each equation are those of its publication, as cited in the function's
  note (CKD-EPI 2021 also as restated by the National Kidney Foundation, kidney.org, and NIDDK).
- The expected eGFRs below are computed by `ckd_epi_2021_reference` — the published equation
  written out independently in plain Python in this file — and rounded to integers the way
  laboratories report eGFR. At the knots (creatinine equal to kappa) the equation reduces to
  142 x 0.9938^age (x 1.012), which we checked by hand: e.g. a woman of 40 with 0.7 mg/dL,
  142 x 0.77976 x 1.012 = 112.05 -> 112.
- We could not retrieve the tables of Inker et al. (NEJM 2021) in this environment, so no row
  of those tables is reproduced here; rows of the paper can be added to `PUBLISHED` with their
  table number, and the test then checks each.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol_rules import ProtocolError, check_text, load_protocol, parse_protocol
from protocol_rules.library import shipped, shipped_text
from protocol_rules.numeric import round_half_away

ROOT = Path(__file__).resolve().parents[1]

KIDNEY = """protocol K
use kidney
fact creatinine: quantity 'mg/dL' molar_mass 113.12 'g/mol'
fact age: quantity 'a'
fact female: boolean
fact black: boolean
fact weight: quantity 'kg'
fact height: quantity 'cm'
inclusion EGFR "x": ckd_epi_2021(creatinine, age, female) is known
inclusion CG "x": cockcroft_gault(creatinine, age, weight, female) is known
inclusion MDRD "x": mdrd(creatinine, age, female, black) is known
inclusion BMI "x": bmi(weight, height) is known
inclusion MOSTELLER "x": bsa_mosteller(weight, height) is known
inclusion DUBOIS "x": bsa_dubois(weight, height) is known
"""
_protocol = parse_protocol(KIDNEY, "kidney-tests.rules")


def computed(criterion: str, **patient: object) -> tuple[float | None, str | None]:
    """The value (and unit) of the function a criterion of `KIDNEY` calls."""
    trace = _protocol.evaluate(patient).criterion(criterion).trace
    call = trace.children[0]
    return call.value, call.unit


def ckd_epi_2021_reference(scr: float, age: float, female: bool) -> float:
    """Inker et al. 2021, as restated by the NKF: written out independently of the library."""
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = scr / kappa
    sex = 1.012 if female else 1.0
    return 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.200 * 0.9938**age * sex


#: Hand-derived at the knots (creatinine = kappa): 142 x 0.9938^age (x 1.012 for women).
KNOTS = [
    (0.7, 40, True, 112),  # 142 x 0.77976 x 1.012 = 112.05
    (0.9, 40, False, 111),  # 142 x 0.77976 = 110.73
    (0.7, 60, True, 99),  # 142 x 0.68855 x 1.012 = 98.95
    (0.9, 60, False, 98),  # 142 x 0.68855 = 97.77
]

GRID = [
    (scr, age, female)
    for scr in (0.5, 0.7, 0.9, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0)
    for age in (20, 40, 50, 60, 80)
    for female in (True, False)
]


@pytest.mark.parametrize(("scr", "age", "female", "expected"), KNOTS)
def test_ckd_epi_2021_at_the_knots(scr, age, female, expected):
    value, unit = computed("EGFR", creatinine=scr, age=age, female=female)
    assert unit == "mL/min/{1.73_m2}"
    assert round_half_away(value) == expected


@pytest.mark.parametrize(("scr", "age", "female"), GRID)
def test_ckd_epi_2021_agrees_with_the_equation_on_a_grid(scr, age, female):
    value, _ = computed("EGFR", creatinine=scr, age=age, female=female)
    reference = ckd_epi_2021_reference(scr, age, female)
    assert value == pytest.approx(reference, rel=1e-10)
    assert round_half_away(value) == round_half_away(reference)


@given(
    st.floats(0.2, 15.0),
    st.integers(18, 100),
    st.booleans(),
)
def test_ckd_epi_2021_is_the_published_equation(scr, age, female):
    value, _ = computed("EGFR", creatinine=scr, age=age, female=female)
    assert value == pytest.approx(ckd_epi_2021_reference(scr, age, female), rel=1e-10)


def test_ckd_epi_2021_takes_creatinine_in_umol_per_litre():
    umol = {"value": 1.2 * 88.4017, "unit": "umol/L"}  # 1.2 mg/dL with 113.12 g/mol
    value, _ = computed("EGFR", creatinine=umol, age=55, female=False)
    assert round_half_away(value) == 71  # 142 x 0.70808 x 0.71032 = 71.42 (hand-computed)


@pytest.mark.parametrize(
    ("scr", "age", "weight", "female", "expected"),
    [
        # (140 - age) x weight / (72 x Scr), x 0.85 for women (Cockcroft & Gault 1976)
        (1.0, 60, 72, False, 80.0),
        (1.0, 60, 72, True, 68.0),
        (1.2, 55, 70, False, 68.8657),
        (0.9, 85, 60, True, 43.2870),
    ],
)
def test_cockcroft_gault(scr, age, weight, female, expected):
    value, unit = computed("CG", creatinine=scr, age=age, weight=weight, female=female)
    assert unit == "mL/min" and value == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(
    ("scr", "age", "female", "black", "expected"),
    [
        # 175 x Scr^-1.154 x age^-0.203 (x 0.742 women, x 1.212 Black) (Levey et al. 2006)
        (1.0, 50, False, False, 79.0947),  # 175 x 50^-0.203
        (1.0, 50, True, False, 58.6882),
        (1.0, 50, False, True, 95.8627),
        (1.2, 55, False, False, 62.8593),
    ],
)
def test_mdrd(scr, age, female, black, expected):
    value, unit = computed("MDRD", creatinine=scr, age=age, female=female, black=black)
    assert unit == "mL/min/{1.73_m2}" and value == pytest.approx(expected, abs=1e-4)


def test_bmi_and_body_surface_area():
    # 70 kg, 175 cm: BMI 70 / 1.75^2 = 22.857 (WHO's worked example uses these numbers)
    value, unit = computed("BMI", weight=70, height=175)
    assert unit == "kg/m2" and value == pytest.approx(22.857142857, rel=1e-9)
    # 70 kg, 170 cm: Mosteller sqrt(170 x 70 / 3600) = 1.8181; Du Bois 1.8097
    value, unit = computed("MOSTELLER", weight=70, height=170)
    assert unit == "m2" and value == pytest.approx(math.sqrt(170 * 70 / 3600), rel=1e-10)
    value, unit = computed("DUBOIS", weight=70, height=170)
    assert unit == "m2" and value == pytest.approx(0.007184 * 70**0.425 * 170**0.725, rel=1e-10)
    # units convert at the call: 154.324 lb and 5 ft 7 in (67 in)
    pounds = {"value": 154.324, "unit": "[lb_av]"}
    inches = {"value": 67, "unit": "[in_i]"}
    value, _ = computed("BMI", weight=pounds, height=inches)
    assert value == pytest.approx(70.0 / 1.7018**2, rel=1e-5)


def test_every_kidney_function_has_a_reference_in_its_note():
    checked = _protocol.checked
    public = [f for f in checked.functions if not f.name.startswith("_")]
    assert {f.name for f in public} == {
        "ckd_epi_2021", "cockcroft_gault", "mdrd", "bmi", "bsa_mosteller", "bsa_dubois",
    }  # fmt: skip
    for function in public:
        note = function.decl.note or ""
        assert any(str(year) in note for year in range(1900, 2030)), function.name
        assert function.origin == "kidney" and function.key == f"kidney.{function.name}"


def test_ckd_epi_2021_and_cockcroft_gault_are_typed_as_the_spec_says():
    by_name = {f.name: f for f in _protocol.checked.functions}
    ckd = by_name["ckd_epi_2021"]
    assert [(n, str(t)) for n, t in ckd.params] == [
        ("creatinine", "quantity in `mg/dL`"),
        ("age", "duration"),
        ("female", "boolean"),
    ]
    assert ckd.params[1][1].unit == "a"
    assert str(ckd.type) == "quantity in `mL/min/{1.73_m2}`"
    cg = by_name["cockcroft_gault"]
    assert [n for n, _ in cg.params] == ["creatinine", "age", "weight", "female"]
    assert str(cg.type) == "quantity in `mL/min`"


# --------------------------------------------------------------------------- shipped libraries


def test_the_kidney_library_is_shipped_and_checks_on_its_own():
    assert "kidney" in shipped()
    text = shipped_text("kidney")
    assert [d for d in check_text(text, "kidney.rules") if d.is_error] == []


def test_private_names_of_a_library_are_not_visible():
    text = KIDNEY + 'inclusion X "x": _ckd_epi_2021(1, -0.3, 40) > 1\n'
    diagnostics = [d for d in check_text(text, "k.rules") if d.is_error]
    assert [d.code for d in diagnostics] == ["PR206"]


def test_an_unknown_library_suggests_the_right_one():
    text = 'protocol P\nuse kidnee\nfact x: number\ninclusion I1 "x": x > 1\n'
    (d,) = [d for d in check_text(text, "p.rules") if d.is_error]
    assert (d.code, d.message, d.help) == (
        "PR231",
        "unknown library `kidnee`",
        "did you mean `kidney`?",
    )
    assert (d.span.line, d.span.column) == (2, 1)


def test_a_missing_library_does_not_cascade():
    text = "protocol P\nuse kidnee\nfact x: quantity 'mg/dL'\ninclusion I1 \"x\": egfr(x) > 1\n"
    assert [d.code for d in check_text(text, "p.rules") if d.is_error] == ["PR231"]


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ("define bmi(w: quantity 'kg', h: quantity 'm') = w / h ^ 2", "define"),
        ("define cockcroft_gault = 1", "define"),
    ],
)
def test_a_name_clash_with_a_library_is_an_error(extra, where):
    text = KIDNEY + extra + "\n"
    clashes = [d for d in check_text(text, "k.rules") if d.code == "PR232"]
    assert len(clashes) == 1 and "library `kidney`" in clashes[0].message


def test_an_unused_library_is_a_warning():
    text = 'protocol P\nuse kidney\nfact x: number\ninclusion I1 "x": x > 1\n'
    (d,) = [d for d in check_text(text, "p.rules") if d.code == "PR239"]
    assert not d.is_error


# --------------------------------------------------------------------------- library files


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


PROTOCOL = """protocol P
use "{name}"
fact x: number
inclusion I1 "x": double(x) > 4
"""


def test_a_file_beside_the_protocol(tmp_path):
    write(tmp_path, {
        "p.rules": PROTOCOL.format(name="lib/helpers.rules"),
        "lib/helpers.rules": 'use "more.rules"\ndefine double(v: number) = times(v, 2)\n',
        "lib/more.rules": "define times(v: number, k: number) = v * k\n",
    })  # fmt: skip
    p = load_protocol(tmp_path / "p.rules")
    assert p.evaluate({"x": 3}).criterion("I1").outcome.value == "met"
    assert p.checked.libraries == ("lib/helpers.rules",)
    # a library's own `use`s are not re-exported: `times` is not visible in the protocol
    text = PROTOCOL.format(name="lib/helpers.rules") + 'inclusion I2 "y": times(x, 3) > 1\n'
    codes = [d.code for d in check_text(text, str(tmp_path / "p.rules")) if d.is_error]
    assert codes == ["PR206"]


def test_parse_protocol_finds_files_in_the_given_folder(tmp_path):
    write(tmp_path, {"helpers.rules": "define double(v: number) = 2 * v\n"})
    text = PROTOCOL.format(name="helpers.rules")
    p = parse_protocol(text, folder=tmp_path)
    assert p.evaluate({"x": 3}).criterion("I1").outcome.value == "met"
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(text)  # text alone has no folder
    assert [d.code for d in caught.value.errors] == ["PR233"]


@pytest.mark.parametrize(
    "name",
    ["../outside.rules", "sub/../../outside.rules", "/etc/passwd.rules", "link/outside.rules"],
)
def test_a_file_outside_the_protocols_folder_is_refused(tmp_path, name):
    folder = tmp_path / "trial"
    write(tmp_path, {"outside.rules": "define double(v: number) = 2 * v\n"})
    write(folder, {"p.rules": PROTOCOL.format(name=name)})
    (folder / "sub").mkdir()
    os.symlink(tmp_path, folder / "link")  # a symbolic link that leads out of the folder
    diagnostics = [d for d in check_text((folder / "p.rules").read_text(), str(folder / "p.rules"))]
    assert "PR233" in [d.code for d in diagnostics if d.is_error]


def test_only_rules_files_are_libraries(tmp_path):
    write(tmp_path, {"p.rules": PROTOCOL.format(name="secrets.env"), "secrets.env": "KEY=1\n"})
    (d,) = [d for d in check_text((tmp_path / "p.rules").read_text(), str(tmp_path / "p.rules"))
            if d.is_error]  # fmt: skip
    assert d.code == "PR233" and "KEY" not in str(d)


def test_a_missing_file_suggests_a_neighbour(tmp_path):
    write(tmp_path, {"p.rules": PROTOCOL.format(name="helper.rules"), "helpers.rules": ""})
    (d,) = [d for d in check_text((tmp_path / "p.rules").read_text(), str(tmp_path / "p.rules"))
            if d.is_error]  # fmt: skip
    assert d.code == "PR231" and d.help == "did you mean `helpers.rules`?"


def test_cycles_of_files_are_refused(tmp_path):
    write(tmp_path, {
        "p.rules": PROTOCOL.format(name="a.rules"),
        "a.rules": 'use "b.rules"\ndefine double(v: number) = 2 * v\n',
        "b.rules": 'use "a.rules"\ndefine triple(v: number) = 3 * v\n',
    })  # fmt: skip
    diagnostics = check_text((tmp_path / "p.rules").read_text(), str(tmp_path / "p.rules"))
    (d,) = [d for d in diagnostics if d.is_error]
    assert d.code == "PR234" and "`a.rules` -> `b.rules` -> `a.rules`" in d.message
    assert d.span.source.name.endswith("b.rules")


def test_a_protocol_that_uses_itself_is_refused(tmp_path):
    write(tmp_path, {"p.rules": PROTOCOL.format(name="p.rules")})
    codes = {
        d.code for d in check_text((tmp_path / "p.rules").read_text(), str(tmp_path / "p.rules"))
    }
    assert "PR234" in codes or "PR235" in codes


def test_a_library_holds_only_defines(tmp_path):
    write(tmp_path, {
        "p.rules": PROTOCOL.format(name="other.rules"),
        "other.rules": 'protocol OTHER\nfact y: number\ndefine double(v: number) = 2 * v\n'
                       'inclusion I1 "y": y > 1\n',
    })  # fmt: skip
    diagnostics = check_text((tmp_path / "p.rules").read_text(), str(tmp_path / "p.rules"))
    (d,) = [d for d in diagnostics if d.is_error]
    assert d.code == "PR235"
    assert (
        d.message
        == "`other.rules` is not a library: it holds a protocol header, facts and criteria"
    )


def test_errors_inside_a_library_file_point_into_it(tmp_path):
    write(tmp_path, {
        "p.rules": PROTOCOL.format(name="helpers.rules"),
        "helpers.rules": "define double(v: number) = 2 * w\n",
    })  # fmt: skip
    diagnostics = check_text((tmp_path / "p.rules").read_text(), str(tmp_path / "p.rules"))
    (d,) = [d for d in diagnostics if d.is_error]
    assert d.code == "PR201" and d.span.source.name == str(tmp_path / "helpers.rules")
    assert (d.span.line, d.span.column) == (1, 32)


def test_a_library_file_cannot_be_evaluated(tmp_path):
    write(tmp_path, {"helpers.rules": "define double(v: number) = 2 * v\n"})
    with pytest.raises(ProtocolError) as caught:
        load_protocol(tmp_path / "helpers.rules")
    assert [d.code for d in caught.value.errors] == ["PR109"]


# --------------------------------------------------------------------------- packaging


def test_the_wheel_ships_the_libraries(tmp_path):
    """The `use` libraries are package data: a wheel built from the checkout must hold them."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {done.stderr.strip()[-300:]}")
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for library in shipped():
        assert f"protocol_rules/library/{library}.rules" in names


def test_constants_private_helpers_and_shared_dependencies(tmp_path):
    write(tmp_path, {
        "p.rules": 'protocol P\nuse "a.rules"\nuse "b.rules"\nfact x: quantity \'mg/dL\'\n'
                   'inclusion I1 "x": in_umol(x) > limit and twice_in_umol(x) > limit\n',
        "a.rules": 'use "c.rules"\ndefine in_umol(c: quantity \'mg/dL\') = to_umol(c)\n'
                   "define limit = 100 'umol/L'\n",
        "b.rules": 'use "c.rules"\ndefine twice_in_umol(c: quantity \'mg/dL\') = 2 * to_umol(c)\n',
        "c.rules": "define _molar_mass = 113.12\n"
                   "define to_umol(c: quantity 'mg/dL') = c / 1 'mg/dL' * 10000 / _molar_mass"
                   " * 1 'umol/L'\n",
    })  # fmt: skip
    p = load_protocol(tmp_path / "p.rules")
    assert p.evaluate({"x": 1.2}).criterion("I1").outcome.value == "met"  # 106.1 umol/L
    assert p.evaluate({"x": 1.0}).criterion("I1").outcome.value == "not_met"
    assert [d.name for d in p.checked.defines] == ["c.rules._molar_mass", "a.rules.limit"]
