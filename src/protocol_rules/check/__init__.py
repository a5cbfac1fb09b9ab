"""Stage 3 of the pipeline: static checks, producing a `CheckedProtocol` and diagnostics.

Pure passes: declarations (facts, duplicates, units, ranges), define ordering and cycles,
expressions (names, types, units; see `expressions`), unused facts and defines. All errors of
a file are collected and returned together; nothing here prints or raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import ast, units
from ..diagnostics import Diagnostic, Related, error, sort_key, warning
from ..source import Span
from . import ir
from .codes import included_sets, unused_value_sets, value_sets
from .depth import too_deep
from .expressions import ExprChecker, _a
from .functions import (
    check_definitions,
    check_libraries,
    import_library,
    unused_functions,
    unused_uses,
)
from .model import CheckedProtocol, CriterionInfo, DefineInfo, FactInfo, FunctionInfo
from .types import (
    BOOL,
    CODE,
    ERROR,
    INTEGER,
    NUMBER,
    TEXT,
    ChoiceT,
    CodeT,
    QtyT,
    SeriesT,
    SetT,
    TimeT,
    Type,
)
from .unit_names import unit_error

if TYPE_CHECKING:
    from ..codes import Terminology
    from ..library import Resolved

__all__ = [
    "CheckedProtocol",
    "CriterionInfo",
    "DefineInfo",
    "FactInfo",
    "FunctionInfo",
    "check",
    "is_library_file",
]

_LOWER = re.compile(r"[a-z_][a-z0-9_]*\Z")


def check(
    file: ast.ProtocolFile,
    resolved: Resolved | None = None,
    terminology: Terminology | None = None,
) -> tuple[CheckedProtocol | None, list[Diagnostic]]:
    """Check a parsed file. Returns the checked protocol (None if any error) and diagnostics.

    `resolved` holds the libraries the file uses (`library.resolve`); a file without a header
    that holds only defines and `use`s is itself a library: it is checked as one, and the
    result is None with the diagnostics. `terminology` expands the value-set members written
    with `*` whose descendants only a terminology knows (docs/language/codes.md).
    """
    if is_library_file(file):
        return None, _check_library_file(file, resolved)
    diags: list[Diagnostic] = []
    diags += _check_header(file)
    facts = _check_facts(file, diags)
    defines = [i for i in file.items if isinstance(i, ast.Define)]
    values = [d for d in defines if d.params is None]
    criteria = [i for i in file.items if isinstance(i, ast.Criterion)]
    diags += _duplicates(facts, values, criteria)
    for define in defines:
        if not _LOWER.match(define.name):
            diags.append(
                error(
                    "PR205",
                    f"define name `{define.name}` is not lower case",
                    define.name_span,
                    help=f"write `{define.name.lower()}`",
                )
            )

    fact_table = {f.name: (f.index, f.type) for f in reversed(facts)}
    define_types: dict[str, Type] = {}
    define_names = {d.name for d in values}
    ranges = {f.name: (f.low, f.high) for f in facts if f.low is not None}
    checker = ExprChecker(fact_table, define_types.get, define_names, ranges)
    # terminology (docs/language/codes.md): value sets first, for the expressions that read them
    taken = {f.name: "fact" for f in facts} | {d.name: "define" for d in defines}
    expansions: dict[str, tuple[str, ...] | None] = {}
    sets = value_sets(file, taken, terminology, diags, expansions)
    checker.init_codes({n: vs for n, (vs, _) in sets.items()}, terminology, expansions)

    # Libraries first (each in its own scope), then the file's own defines and functions.
    exports, library_values, library_functions = {}, [], []
    uses = resolved.uses if resolved is not None else ()
    if resolved is not None:
        exports, library_values, library_functions = check_libraries(
            resolved, _declared_type, diags
        )
        checker.lenient = resolved.failed
    for use, key in uses:
        import_library(checker, exports.get(key) if key else None, use, define_types, diags)
    own_values, own_functions = check_definitions(
        defines, checker, define_types, _declared_type, diags
    )
    checked_defines: dict[str, DefineInfo] = {d.name: d for d in library_values}
    for info in own_values:
        checked_defines.setdefault(info.name, info)

    checked_criteria = []
    for criterion in criteria:
        body = checker.condition(criterion.expr, f"criterion `{criterion.id}`")
        checked_criteria.append(
            CriterionInfo(
                criterion.kind,
                criterion.id,
                criterion.text,
                criterion.note,
                body,
                (),
                criterion,
            )
        )
    diags += checker.diagnostics
    failed = resolved is not None and resolved.failed
    if not failed and not any(d.is_error for d in diags):
        diags += too_deep(
            ((d.name, d.body, d.decl.name_span) for d in checked_defines.values()),
            ((c.id, c.body, c.decl.id_span) for c in checked_criteria),
        )
    if not failed and not any(d.is_error for d in diags):  # else "unused" is often a cascade
        diags += _unused(facts, values, checker)
        diags += unused_functions(own_functions, checker)
        diags += unused_uses(uses, exports, checker)
        diags += unused_value_sets(sets, checker.used_value_sets, included_sets(file))
        diags += _unbounded(facts)
    if not criteria:
        diags.append(
            warning(
                "PR211",
                "the protocol has no criteria",
                file.header.span if file.header else None,
                help='add e.g. `inclusion I1 "Age 18 or older": age >= 18 years`',
            )
        )

    diags.sort(key=sort_key)
    if any(d.is_error for d in diags):
        return None, diags
    with_facts = tuple(
        CriterionInfo(
            c.kind, c.id, c.text, c.note, c.body, _facts_read(c.body, checked_defines), c.decl
        )
        for c in checked_criteria
    )
    header = file.header
    assert header is not None
    protocol = CheckedProtocol(
        id=header.id,
        metadata=tuple((m.key, m.value) for m in header.meta),
        facts=tuple(facts),
        defines=tuple(checked_defines.values()),
        criteria=with_facts,
        source=file.span.source,
        syntax=file,
        functions=(*library_functions, *own_functions),
        libraries=tuple(use.name for use, _ in uses),
        value_sets=tuple(vs for vs, _ in sets.values()),
    )
    return protocol, diags


def is_library_file(file: ast.ProtocolFile) -> bool:
    """A file without a header that holds only defines and `use`s is a library."""
    items = file.items
    return (
        file.header is None
        and bool(items)
        and all(isinstance(i, ast.Define | ast.Use) for i in items)
    )


def _check_library_file(file: ast.ProtocolFile, resolved: Resolved | None) -> list[Diagnostic]:
    """Check a library file on its own (`protocol-rules check kidney.rules`)."""
    from ..library import Library, Resolved

    diags: list[Diagnostic] = []
    uses = resolved.uses if resolved is not None else ()
    this = Library(file.span.source.name, file.span.source.name, file, tuple(uses))
    libraries = (*(resolved.libraries if resolved is not None else ()), this)
    check_libraries(
        Resolved(libraries, (), resolved.failed if resolved else False), _declared_type, diags
    )
    for define in (i for i in file.items if isinstance(i, ast.Define)):
        if not _LOWER.match(define.name):
            diags.append(
                error(
                    "PR205",
                    f"define name `{define.name}` is not lower case",
                    define.name_span,
                    help=f"write `{define.name.lower()}`",
                )
            )
    diags.sort(key=sort_key)
    return diags


# --------------------------------------------------------------------------- header


def _check_header(file: ast.ProtocolFile) -> list[Diagnostic]:
    header = file.header
    if header is None:
        source = file.span.source
        return [
            error(
                "PR109",
                "the file does not start with a protocol header",
                source.span(0, min(len(source.text), len(source.line_text(1)))),
                help='start the file with `protocol NCT01234567` and metadata such as `title "…"`',
            )
        ]
    diags = []
    seen: set[str] = set()
    for meta in header.meta:
        if meta.key in seen:
            diags.append(
                error(
                    "PR208",
                    f"metadata `{meta.key}` is given twice",
                    meta.span,
                    help="keep one line per metadata key",
                )
            )
        seen.add(meta.key)
    return diags


# --------------------------------------------------------------------------- facts


def _check_facts(file: ast.ProtocolFile, diags: list[Diagnostic]) -> list[FactInfo]:
    facts = []
    for decl in (i for i in file.items if isinstance(i, ast.Fact)):
        if not _LOWER.match(decl.name):
            diags.append(
                error(
                    "PR205",
                    f"fact name `{decl.name}` is not lower case",
                    decl.name_span,
                    help=f"write `{decl.name.lower()}`",
                )
            )
        type_ = _declared_type(decl.type, decl.name, diags)
        facts.append(_fact_info(decl, type_, len(facts), diags))
    return facts


def _declared_type(node: ast.TypeExpr, owner: str, diags: list[Diagnostic]) -> Type:
    match node:
        case ast.BooleanType():
            return BOOL
        case ast.IntegerType():
            return INTEGER
        case ast.NumberType():
            return NUMBER
        case ast.TextType():
            return TEXT
        case ast.DateType(never=never):
            return TimeT(False, never)
        case ast.DateTimeType(never=never):
            return TimeT(True, never)
        case ast.QuantityType(unit=unit):
            try:
                units.check_unit(unit)
            except units.UnitError as exc:
                diags.append(unit_error(unit, exc, node.unit_span))
                return ERROR
            return QtyT(unit)
        case ast.ChoiceType(choices=choices):
            seen: set[str] = set()
            for name, span in zip(choices, node.choice_spans, strict=True):
                if name in seen:
                    diags.append(
                        error(
                            "PR208",
                            f"choice `{name}` is listed twice",
                            span,
                            help="list each choice once",
                        )
                    )
                seen.add(name)
            return ChoiceT(tuple(dict.fromkeys(choices)), owner)
        case ast.CodeType():
            return CODE
        case ast.SeriesType(element=element):
            inner = _declared_type(element, owner, diags)
            if isinstance(inner, SeriesT | SetT | TimeT) or inner == TEXT:
                diags.append(
                    error(
                        "PR310",
                        f"a series cannot hold {_a(inner)}",
                        node.span,
                        help="a series holds quantities, numbers, booleans or choices",
                    )
                )
                return ERROR
            return SeriesT(inner)
        case ast.SetType(element=element):
            inner = _declared_type(element, owner, diags)
            if not (isinstance(inner, ChoiceT | CodeT) or inner == TEXT or inner is ERROR):
                diags.append(
                    error(
                        "PR310",
                        f"a set cannot hold {_a(inner)}",
                        node.span,
                        help="a set holds choices (`set of one of a, b`), `text` or `code`",
                    )
                )
                return ERROR
            return SetT(inner)
    raise AssertionError(node)  # pragma: no cover


def _fact_info(decl: ast.Fact, type_: Type, index: int, diags: list[Diagnostic]) -> FactInfo:
    element = type_.element if isinstance(type_, SeriesT) else type_
    unit = element.unit if isinstance(element, QtyT) else None
    molar_mass = _molar_mass(decl, unit, diags)
    if molar_mass is not None and isinstance(element, QtyT):
        element = QtyT(element.unit, molar_mass)
        type_ = SeriesT(element) if isinstance(type_, SeriesT) else element
    low = high = None
    if decl.range is not None:
        low, high = decl.range.low, decl.range.high
        if not isinstance(element, QtyT) and element not in (NUMBER, INTEGER):
            diags.append(
                error(
                    "PR310",
                    f"`range` does not apply to {_a(element)}",
                    decl.range.span,
                    help="ranges bound numbers and quantities",
                )
            )
        if low > high:
            diags.append(
                error(
                    "PR308",
                    f"the range {low:g} to {high:g} is empty",
                    decl.range.span,
                    help="write the lower bound first: `range LOW to HIGH`",
                )
            )
    if decl.past is not None and not isinstance(type_, TimeT):
        diags.append(
            error(
                "PR310",
                f"`past` applies only to dates and datetimes, not to {_a(type_)}",
                decl.past.span,
                help="remove `past`, or declare the fact as `date past`",
            )
        )
    return FactInfo(decl.name, index, type_, decl.description, unit, molar_mass, low, high, decl)


def _molar_mass(decl: ast.Fact, unit: str | None, diags: list[Diagnostic]) -> float | None:
    mm = decl.molar_mass
    if mm is None:
        return None
    if unit is None:
        diags.append(
            error(
                "PR310",
                "`molar_mass` applies only to quantities",
                mm.span,
                help="remove it, or declare the fact as `quantity 'mg/dL'`",
            )
        )
        return None
    try:
        grams_per_mole = units.conversion(mm.unit, "g/mol").factor * mm.value
    except units.UnitError:
        diags.append(
            error(
                "PR304",
                f"a molar mass is in `g/mol`, not `{mm.unit}`",
                mm.unit_span,
                help=f"write `molar_mass {mm.value:g} 'g/mol'`",
            )
        )
        return None
    if grams_per_mole <= 0:
        diags.append(error("PR308", "a molar mass must be positive", mm.span))
        return None
    return grams_per_mole


# --------------------------------------------------------------------------- names


def _duplicates(
    facts: list[FactInfo], defines: list[ast.Define], criteria: list[ast.Criterion]
) -> Iterator[Diagnostic]:
    seen: dict[str, tuple[str, Span]] = {}
    named = [(f.name, f.decl.name_span, "fact") for f in facts]
    named += [(d.name, d.name_span, "define") for d in defines]
    for name, span, kind in sorted(named, key=lambda t: t[1].start):
        if name in seen:
            first_kind, first_span = seen[name]
            yield error(
                "PR203",
                f"`{name}` is declared twice (first as a {first_kind})",
                span,
                label="declared again here",
                help="give each fact and define its own name",
                related=(Related(first_span, f"first declared here, as a {first_kind}"),),
            )
        else:
            seen[name] = (kind, span)
    ids: dict[str, Span] = {}
    for criterion in criteria:
        if criterion.id in ids:
            yield error(
                "PR202",
                f"criterion id `{criterion.id}` is used twice",
                criterion.id_span,
                label="used again here",
                help="number criteria as the protocol does: `I1`, `I2`, … `E1`, `E2`, …",
                related=(Related(ids[criterion.id], "first used here"),),
            )
        else:
            ids[criterion.id] = criterion.id_span


def _unused(
    facts: list[FactInfo], defines: list[ast.Define], checker: ExprChecker
) -> Iterator[Diagnostic]:
    for fact in facts:
        if fact.name not in checker.used_facts:
            yield warning(
                "PR209",
                f"fact `{fact.name}` is declared but no criterion or define uses it",
                fact.decl.name_span,
                help="use it in a criterion, or remove the declaration",
            )
    for define in defines:
        if define.name not in checker.used_defines:
            yield warning(
                "PR210",
                f"define `{define.name}` is never used",
                define.name_span,
                help="use it in a criterion, or remove it",
            )


def _unbounded(facts: list[FactInfo]) -> Iterator[Diagnostic]:
    """PR313: a quantity without a `range` accepts any value, 1e300 platelets included."""
    for fact in facts:
        element = fact.type.element if isinstance(fact.type, SeriesT) else fact.type
        if isinstance(element, QtyT) and fact.low is None:
            yield warning(
                "PR313",
                f"quantity fact `{fact.name}` has no range, so any value is accepted",
                fact.decl.name_span,
                label="no range",
                help=f"declare the plausible values after the unit, e.g. `quantity "
                f"'{element.unit}' range 0 to …`: an impossible value (a typo, a unit "
                "mix-up) is then refused instead of deciding the verdict",
            )


def _facts_read(node: ir.Node, defines: dict[str, DefineInfo]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    stack = [node]
    seen_defines: set[str] = set()
    while stack:
        current = stack.pop()
        if isinstance(current, ir.FactRef):
            found[current.name] = None
        elif isinstance(current, ir.DefineRef) and current.name not in seen_defines:
            seen_defines.add(current.name)
            if current.name in defines:
                stack.append(defines[current.name].body)
        stack.extend(reversed(ir.children(current)))
    return tuple(found)
