"""Static types of the rules language, as the checker infers them."""

from __future__ import annotations

from attrs import field

from .. import units
from .._frozen import frozen


@frozen
class BoolT:
    def __str__(self) -> str:
        return "boolean"


@frozen
class NumT:
    integer: bool = False

    def __str__(self) -> str:
        return "integer" if self.integer else "number"


@frozen
class QtyT:
    """A quantity whose values are floats in `unit`; `molar_mass` (g/mol) allows substance units."""

    unit: str
    molar_mass: float | None = field(default=None, eq=False)

    @property
    def is_duration(self) -> bool:
        return units.dimension(self.unit) == "[time]"

    def __str__(self) -> str:
        return "duration" if self.is_duration else f"quantity in `{self.unit}`"


@frozen
class TimeT:
    """A date or a datetime; values are seconds since 1970-01-01T00:00Z.

    `never`: the value may be `calendar.NEVER` (a fact declared `date or never`); it does not
    take part in equality, so `date` and `date or never` values mix freely.
    """

    has_time: bool = False
    never: bool = field(default=False, eq=False)

    def __str__(self) -> str:
        return ("datetime" if self.has_time else "date") + (" or never" if self.never else "")


@frozen
class TextT:
    def __str__(self) -> str:
        return "text"


@frozen
class ChoiceT:
    """One of a declared list of names; `owner` is the fact that declares it (for messages)."""

    choices: tuple[str, ...]
    owner: str = field(default="", eq=False)

    def __str__(self) -> str:
        return f"choice of `{self.owner}`" if self.owner else "choice"


@frozen
class CodeT:
    """A code of a code system; values are canonical texts ``SYSTEM#code`` (`codes.py`)."""

    def __str__(self) -> str:
        return "code"


@frozen
class SetT:
    element: Type

    def __str__(self) -> str:
        return f"set of {self.element}"


@frozen
class SeriesT:
    element: Type

    def __str__(self) -> str:
        return f"series of {self.element}"


@frozen
class WindowT:
    element: Type

    def __str__(self) -> str:
        return f"window of {self.element}"


@frozen
class ErrorT:
    """The type of an expression that already has an error: compatible with anything."""

    def __str__(self) -> str:
        return "error"


@frozen
class UnknownT:
    """The type of the literal `unknown` until its context (an `if` branch, an argument) gives
    it one; an expression left with this type is an error (PR332)."""

    def __str__(self) -> str:
        return "`unknown`"


Type = (
    BoolT | NumT | QtyT | TimeT | TextT | ChoiceT | SetT | SeriesT | WindowT | ErrorT | UnknownT
) | CodeT

BOOL = BoolT()
NUMBER = NumT()
INTEGER = NumT(integer=True)
TEXT = TextT()
ERROR = ErrorT()
UNKNOWN_TYPE = UnknownT()
DAYS = QtyT("d")
CODE = CodeT()
