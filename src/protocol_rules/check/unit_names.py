"""Unit spellings authors write and the UCUM codes they mean, for did-you-mean advice."""

from __future__ import annotations

from ..diagnostics import Diagnostic, error
from ..source import Span
from ..suggestions import closest

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
    return _UNIT_FIXES.get(unit) or closest(unit, _COMMON_UNITS)


def unit_error(unit: str, exc: Exception, span: Span) -> Diagnostic:
    """PR303 for a unit string that is not UCUM, with the UCUM spelling when we know it."""
    fix = ucum_spelling(unit)
    help_ = (
        f"did you mean `'{fix}'`? units are UCUM codes"
        if fix
        else ("units are UCUM codes, e.g. `'mg/dL'`, `'10*9/L'`, `'mL/min/{1.73_m2}'`")
    )
    return error(
        "PR303",
        f"`{unit}` is not a valid UCUM unit",
        span,
        label=str(exc).split(":", 1)[-1].strip() or "not UCUM",
        help=help_,
    )
