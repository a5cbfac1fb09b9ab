"""The checked protocol: declarations with resolved types, units and IR bodies."""

from __future__ import annotations

from .. import ast
from .._frozen import frozen
from ..source import Source
from . import ir
from .types import Type


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


@frozen
class DefineInfo:
    name: str
    type: Type
    body: ir.Node
    decl: ast.Define


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
