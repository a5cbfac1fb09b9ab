"""The checked protocol: declarations with resolved types, units and IR bodies."""

from __future__ import annotations

from .. import ast
from .._frozen import frozen
from ..codes import ValueSet
from ..source import Source
from . import ir
from .types import TimeT, Type


@frozen
class FactInfo:
    """A declared fact, checked: its type, unit, range, molar mass and patient slot."""

    name: str
    index: int
    type: Type
    description: str | None
    unit: str | None  # the declared unit of a quantity fact (or of a series' elements)
    molar_mass: float | None  # g/mol
    low: float | None
    high: float | None
    decl: ast.Fact

    @property
    def past(self) -> bool:
        """Declared `past`: a date that may not be after `as_of` (docs/language/time.md)."""
        return self.decl.past is not None and isinstance(self.type, TimeT)

    @property
    def never(self) -> bool:
        """Declared `date or never`: the patient record may say "never"."""
        return isinstance(self.type, TimeT) and self.type.never


@frozen
class DefineInfo:
    """A checked define (a value); `name` is its key: `x`, or `kidney.x` for a library's."""

    name: str
    type: Type
    body: ir.Node
    decl: ast.Define
    origin: str | None = None  # the library it comes from (`kidney`, `egfr.rules`), if any


@frozen
class FunctionInfo:
    """A checked function (a define with parameters): its signature and its checked body.

    `key` is unique in a protocol (`bmi`, or `kidney.bmi` for a library's); `params` are the
    parameter names and declared types; `type` is the declared or inferred return type.
    """

    name: str
    key: str
    params: tuple[tuple[str, Type], ...]
    type: Type
    body: ir.Node
    decl: ast.Define
    origin: str | None = None


@frozen
class CriterionInfo:
    kind: ast.CriterionKind
    id: str
    text: str
    note: str | None
    body: ir.Node
    facts: tuple[str, ...]  # every fact the criterion reads, through defines too
    decl: ast.Criterion


@frozen
class CheckedProtocol:
    id: str
    metadata: tuple[tuple[str, str], ...]
    facts: tuple[FactInfo, ...]
    defines: tuple[DefineInfo, ...]  # in dependency order
    criteria: tuple[CriterionInfo, ...]  # in file order
    source: Source
    syntax: ast.ProtocolFile
    functions: tuple[FunctionInfo, ...] = ()  # the protocol's own and its libraries'
    libraries: tuple[str, ...] = ()  # the libraries it uses, as written (`kidney`, …)
    value_sets: tuple[ValueSet, ...] = ()  # its `codes` declarations, checked (codes.md)
