"""Unit spellings authors write and the UCUM codes they mean, for did-you-mean advice."""

from __future__ import annotations

import re

from .. import units
from ..diagnostics import Diagnostic, error
from ..source import Span
from ..suggestions import closest
from ..units import MAX_UNIT_LENGTH

_COMMON_UNITS = [
    "mg/dL",
    "umol/L",
    "mmol/L",
    "g/dL",
    "g/L",
    "/uL",
    "10*9/L",
    "10*3/uL",
    "%",
    "mL/min",
    "mL/min/{1.73_m2}",
    "mL/kg/h",
    "mg/d",
    "mg/kg/d",
    "[IU]/kg/d",
    "[IU]/d",
    "pg/mL",
    "ng/mL",
    "mm[Hg]",
    "/min",
    "kg/m2",
    "mg/g",
    "a",
    "mo",
    "wk",
    "d",
    "h",
    "min",
    "kg",
    "cm",
    "U/L",
    "[iU]/L",
    "Cel",
]

_UNIT_FIXES = {
    "mL/min/1.73m2": "mL/min/{1.73_m2}",
    "ml/min/1.73m2": "mL/min/{1.73_m2}",
    "mL/min/1.73 m2": "mL/min/{1.73_m2}",
    "x10^9/L": "10*9/L",
    "x 10^9/L": "10*9/L",
    "10^9/L": "10*9/L",
    "x109/L": "10*9/L",
    "IU": "[IU]",
    "mmHg": "mm[Hg]",
    "bpm": "/min",
    "years": "a",
    "months": "mo",
    "µmol/L": "umol/L",
    "μmol/L": "umol/L",
    "µL": "uL",
    "/µL": "/uL",
}


def ucum_spelling(unit: str) -> str | None:
    """The UCUM code an author most likely meant by `unit` (`x10^9/L` -> `10*9/L`)."""
    if len(unit) > MAX_UNIT_LENGTH:
        return None
    return _UNIT_FIXES.get(unit) or closest(unit, _COMMON_UNITS)


def shown(unit: str) -> str:
    """A unit as quoted in a message: cut when it is longer than any unit can be."""
    return unit if len(unit) <= MAX_UNIT_LENGTH else unit[:MAX_UNIT_LENGTH] + "…"


def unit_error(unit: str, exc: Exception, span: Span) -> Diagnostic:
    """PR303 for a unit string that is not UCUM.

    The label says what is wrong in our words (never the UCUM parser's), and where in the unit;
    the help gives the UCUM spelling when we know it.
    """
    fix = ucum_spelling(unit)
    help_ = (
        f"did you mean `'{fix}'`? units are UCUM codes"
        if fix
        else ("units are UCUM codes, e.g. `'mg/dL'`, `'10*9/L'`, `'mL/min/{1.73_m2}'`")
    )
    return error(
        "PR303",
        f"`{shown(unit)}` is not a valid UCUM unit",
        span,
        label=getattr(exc, "message", None) or "not UCUM",
        help=help_,
    )


#: Substances whose concentrations are reported both by mass and by amount, in g/mol.
MOLAR_MASSES = {
    "creatinine": 113.12,
    "glucose": 180.16,
    "urea": 60.06,
    "bilirubin": 584.66,
    "cholesterol": 386.65,
    "calcium": 40.08,
    "albumin": None,
    "protein": None,
}
# Ratios named by their initials: the numerator's substance, then the denominator's.
_RATIOS = {
    "uacr": ("albumin", "creatinine"),
    "acr": ("albumin", "creatinine"),
    "upcr": ("protein", "creatinine"),
    "pcr": ("protein", "creatinine"),
}


def substance(source: str, target: str, *mentions: str | None) -> tuple[str, str | None]:
    """Which substance a mass <-> amount conversion between `source` and `target` is about.

    Returns a phrase naming it (``creatinine (the substance in the denominator of
    `mg/mmol`)``) and a `molar_mass` clause to declare when its molar mass is known. The
    substance is read from `mentions` (a fact's name, its description): in a ratio such as a
    urine albumin/creatinine ratio in `mg/mmol`, it is the denominator's, creatinine.
    """
    unit, side = next(
        ((u, s) for u in (source, target) if (s := _side(u)) is not None), (source, None)
    )
    where = f"the substance in the {side} of `{shown(unit)}`" if side else "the substance"
    words: list[str] = []
    for text in mentions:
        for word in re.findall(r"[a-z]+", (text or "").lower()):
            words += _RATIOS.get(word, (word,) if word in MOLAR_MASSES else ())
    if not words:
        return where, None
    name = words[-1] if side == "denominator" else words[0]
    mass = MOLAR_MASSES.get(name)
    clause = f"molar_mass {mass:g} 'g/mol'" if mass else None
    return f"{name} ({where})" if side else name, clause


def _side(unit: str) -> str | None:
    try:
        return units.substance_side(unit)
    except units.UnitError:
        return None
