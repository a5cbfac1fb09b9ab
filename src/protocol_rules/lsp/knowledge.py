"""What the language server knows about the language itself: built-in functions, reserved words,
common UCUM units. Data only, shared by hover and completion (docs/editors.md)."""

from __future__ import annotations

from ..lexer import DECLARATIONS, FUNCTIONS, KEYWORDS, LOGIC, PSEUDO_VALUES, TYPES

__all__ = ["BUILTINS", "DURATION_WORDS", "KEYWORDS_ALL", "UNITS", "Builtin"]


class Builtin:
    """A built-in function: its signature as an author writes it, and one line about it."""

    def __init__(self, signature: str, doc: str, page: str) -> None:
        self.signature = signature
        self.doc = doc
        self.page = page  # the docs page that explains it

    @property
    def name(self) -> str:
        return self.signature.split("(", 1)[0]


_TIME = "language/time.md"
_CALC = "language/calculation.md"
_FILTERS = "language/filters.md"

#: The built-in functions, by name (the lexer's list, with a signature each).
BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin("max(W) / max(a, b, …)", "the largest value of a window (unknown when it is "
                "empty), or of two or more values", _TIME),
        Builtin("min(W) / min(a, b, …)", "the smallest value of a window (unknown when it is "
                "empty), or of two or more values", _TIME),
        Builtin("mean(W)", "the arithmetic mean of a window's values; unknown when it is empty",
                _TIME),
        Builtin("sum(W)", "the sum of a window's values; unknown when it is empty", _TIME),
        Builtin("latest(W)", "the value of the most recent observation; unknown when empty",
                _TIME),
        Builtin("earliest(W)", "the value of the oldest observation; unknown when empty", _TIME),
        Builtin("count(W)", "the number of observations in a window (0 when empty)", _TIME),
        Builtin("exists(W)", "whether a window holds any observation (false when empty)", _TIME),
        Builtin("time_since(d)", "the duration from the date or datetime d to `as_of`; "
                "compared with a duration word it counts by the calendar", _TIME),
        Builtin("first_time(W)", "the time (a datetime) of the oldest observation of a window",
                _TIME),
        Builtin("last_time(W)", "the time (a datetime) of the most recent observation", _TIME),
        Builtin("consecutive(W where C)", "the length of the longest run of consecutive "
                "observations meeting C (0 when none)", _FILTERS),
        Builtin("first_known(a, b, …)", "the first argument that is known; unknown if none is",
                _CALC),
        Builtin("ln(x)", "natural logarithm of a plain number; unknown for x ≤ 0", _CALC),
        Builtin("log10(x)", "decimal logarithm of a plain number; unknown for x ≤ 0", _CALC),
        Builtin("exp(x)", "e to the power x (x a plain number)", _CALC),
        Builtin("sqrt(x)", "square root of a number, or of a quantity with even powers "
                "(`m2` → `m`); unknown for x < 0", _CALC),
        Builtin("abs(x)", "absolute value of a number or a quantity, same unit", _CALC),
        Builtin("round(x, n)", "x to n decimals, halves away from zero (`round(x)` is "
                "`round(x, 0)`)", _CALC),
    )
}  # fmt: skip
assert set(BUILTINS) == set(FUNCTIONS), "keep BUILTINS in step with lexer.FUNCTIONS"

#: Duration words, offered after a number.
DURATION_WORDS = ("years", "months", "weeks", "days", "hours", "minutes")

#: Every reserved word, for completion.
KEYWORDS_ALL: tuple[str, ...] = tuple(
    dict.fromkeys(
        (*DECLARATIONS, *TYPES, *KEYWORDS, *LOGIC, *PSEUDO_VALUES, "true", "false", "or never")
    )
)

#: Common UCUM units in clinical protocols and what each means, for completion inside quotes
#: and for hover (a unit not listed here is explained by the units library when it is loaded).
UNITS: dict[str, str] = {
    "mg/dL": "milligrams per decilitre (mass concentration)",
    "umol/L": "micromoles per litre (substance concentration)",
    "mmol/L": "millimoles per litre (substance concentration)",
    "mmol/mol": "millimoles per mole (e.g. HbA1c, IFCC)",
    "g/dL": "grams per decilitre (mass concentration)",
    "g/L": "grams per litre (mass concentration)",
    "mg/L": "milligrams per litre (mass concentration)",
    "ng/mL": "nanograms per millilitre (mass concentration)",
    "pg/mL": "picograms per millilitre (mass concentration)",
    "/uL": "per microlitre (a count per volume, e.g. platelets)",
    "10*9/L": "10⁹ per litre (a count per volume, e.g. platelets, leukocytes)",
    "10*3/uL": "10³ per microlitre (a count per volume)",
    "%": "percent",
    "mL/min": "millilitres per minute (a flow, e.g. creatinine clearance)",
    "mL/min/{1.73_m2}": "millilitres per minute per 1.73 m² of body surface (eGFR)",
    "mL/kg/h": "millilitres per kilogram per hour (e.g. urine output)",
    "mL/h": "millilitres per hour",
    "mg/d": "milligrams per day (a daily dose)",
    "mg/kg/d": "milligrams per kilogram per day",
    "[IU]/d": "international units per day",
    "[IU]/kg/d": "international units per kilogram per day",
    "U/L": "enzyme units per litre (e.g. ALT, AST)",
    "[iU]/L": "international units per litre",
    "mm[Hg]": "millimetres of mercury (blood pressure)",
    "/min": "per minute (e.g. heart rate)",
    "kg/m2": "kilograms per square metre (body mass index)",
    "mg/g": "milligrams per gram (e.g. albumin/creatinine ratio)",
    "g/mol": "grams per mole (molar mass)",
    "kg": "kilogram",
    "g": "gram",
    "m": "metre",
    "cm": "centimetre",
    "m2": "square metre",
    "L": "litre",
    "mL": "millilitre",
    "Cel": "degree Celsius",
    "a": "year (a UCUM year: 365.25 days)",
    "mo": "month (a UCUM month: 30.4375 days)",
    "wk": "week (7 days)",
    "d": "day",
    "h": "hour",
    "min": "minute",
    "s": "second",
    "1": "a pure number (no unit)",
}
