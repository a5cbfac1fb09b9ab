"""Checker pass over terminology (docs/language/codes.md): code literals, value sets, `in` and
`contains` on codes.

Two parts:

- `value_sets` checks the `codes NAME = {…}` declarations of a file once: systems, the syntax of
  each code (and its check digit), names of other value sets (unknown names, cycles), duplicate
  and empty sets, and expands each member written with `*` of a system whose hierarchy only a
  terminology knows (SNOMED CT, RxNorm, OMOP concepts) when a terminology is given;
- `CodeChecks`, a mixin of `ExprChecker`: a code literal is a `Const` of type `code` (its
  canonical text); `x in aki`, `x in {ICD10CM#N17*, …}` become `ir.InCodes`; a set of codes read
  with `contains` becomes `ir.ContainsCodes`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .. import ast
from ..codes import (
    SYSTEMS,
    Member,
    System,
    Terminology,
    ValueSet,
    canonical,
    code_problem,
    suggest_system,
    system_named,
)
from ..diagnostics import Diagnostic, error, warning
from ..source import Span
from ..suggestions import did_you_mean
from . import ir
from .types import BOOL, CODE, CodeT, ErrorT, SetT, Type

if TYPE_CHECKING:
    from .expressions import ExprChecker

    _Base = ExprChecker
else:
    _Base = object

_LOWER = re.compile(r"[a-z_][a-z0-9_]*\Z")


# --------------------------------------------------------------------------- codes


def resolve_code(node: ast.CodeLit, diags: list[Diagnostic]) -> str | None:
    """The canonical text of a code literal, or None after reporting why it is not a code."""
    system = SYSTEMS.get(node.system)
    if system is None:
        diags.append(_unknown_system(node))
        return None
    problem = code_problem(system, node.code)
    if problem:
        diags.append(
            error(
                "PR140",
                f"`{node.code}` is not a {system.name} code: {problem}",
                node.span,
                label="malformed code",
                help=_code_help(system, node.code),
            )
        )
        return None
    return canonical(system, node.code)


def _unknown_system(node: ast.CodeLit) -> Diagnostic:
    known = system_named(node.system)
    if known is not None:  # an alias, a URI or another case: say the name to write
        fix = f"write `{known.name}#{node.code}`"
    else:
        guess = suggest_system(node.system)
        resolved = system_named(guess) if guess else None
        fix = (
            f"did you mean `{resolved.name}`?"
            if resolved
            else "the systems are " + ", ".join(f"`{s}`" for s in SYSTEMS)
        )
        if node.system[:1].islower():
            fix += " (a comment needs a space before `#`)"
    return error(
        "PR240",
        f"unknown code system `{node.system}`",
        node.span,
        label="not a code system",
        help=fix,
    )


def _code_help(system: System, code: str) -> str:
    normal = system.normalise(code) if system.normalise else code
    if normal != code and code_problem(system, normal) is None:
        return f"write `{system.name}#{normal}`"
    return f"a {system.name} code looks like `{system.name}#{system.example}`; check the code"


def _member(node: ast.CodeLit, diags: list[Diagnostic]) -> Member | None:
    code = resolve_code(node, diags)
    if code is None:
        return None
    system = SYSTEMS[node.system]
    if node.descendants and system.hierarchy == "none":
        diags.append(
            warning(
                "PR343",
                f"{system.title} codes have no descendants: `*` adds nothing to `{code}`",
                node.span,
                help=f"write `{code}`",
            )
        )
    return Member(code, node.descendants and system.hierarchy != "none", node.display)


def expand(
    members: Iterable[tuple[Member, Span | None]],
    terminology: Terminology | None,
    diags: list[Diagnostic],
    cache: dict[str, tuple[str, ...] | None],
) -> tuple[tuple[str, int], ...]:
    """The descendants a terminology gives for the `*` members of ``terminology`` systems,
    as ``(code, member index)``; PR344 once per code it cannot expand (`cache` remembers)."""
    out: list[tuple[str, int]] = []
    for index, (member, span) in enumerate(members):
        system = SYSTEMS.get(member.system)
        if not member.descendants or system is None or system.hierarchy != "terminology":
            continue
        if member.code not in cache:
            found = terminology.descendants(member.code) if terminology is not None else None
            cache[member.code] = None if found is None else tuple(sorted(set(found)))
            if found is None:
                diags.append(
                    warning(
                        "PR344",
                        f"the descendants of `{member.code}` are not known without a "
                        "terminology: `*` matches the code itself only",
                        span,
                        help="load the protocol with a terminology (`load_protocol(path, "
                        "terminology=…)`, e.g. `omop_terminology(cdm)`), or list the codes",
                    )
                )
        out.extend((code, index) for code in cache[member.code] or () if code != member.code)
    return tuple(sorted(out))


# --------------------------------------------------------------------------- value sets


def value_sets(
    file: ast.ProtocolFile,
    taken: Mapping[str, str],
    terminology: Terminology | None,
    diags: list[Diagnostic],
    cache: dict[str, tuple[str, ...] | None],
) -> dict[str, tuple[ValueSet, ast.Codes]]:
    """The checked value sets of a file, by name (those in error are left out).

    `taken` maps the names of facts and defines to their kind, for clashes (PR242); `cache`
    holds the expansions of `*` members (shared with the expression checker).
    """
    decls: dict[str, ast.Codes] = {}
    for item in file.items:
        if not isinstance(item, ast.Codes):
            continue
        if not _LOWER.match(item.name):
            diags.append(
                error(
                    "PR205",
                    f"value set name `{item.name}` is not lower case",
                    item.name_span,
                    help=f"write `{item.name.lower()}`",
                )
            )
        clash = "a value set" if item.name in decls else taken.get(item.name)
        if clash:
            diags.append(
                error(
                    "PR242",
                    f"`{item.name}` is declared twice (first as {_article(clash)})",
                    item.name_span,
                    help="give each value set its own name",
                )
            )
            continue
        decls[item.name] = item
    flat: dict[str, list[tuple[Member, Span | None]] | None] = {}
    for name in decls:
        _flatten(name, decls, flat, [], diags)
    out: dict[str, tuple[ValueSet, ast.Codes]] = {}
    for name, decl in decls.items():
        members = flat.get(name)
        if members is None:
            continue
        if not members:
            diags.append(_empty(decl.span, name))
            continue
        expanded = expand(members, terminology, diags, cache)
        out[name] = (ValueSet(name, tuple(m for m, _ in members), expanded), decl)
    return out


def _flatten(
    name: str,
    decls: Mapping[str, ast.Codes],
    flat: dict[str, list[tuple[Member, Span | None]] | None],
    path: list[str],
    diags: list[Diagnostic],
) -> list[tuple[Member, Span | None]] | None:
    """The members of value set `name` with nested sets inlined (None: in error)."""
    if name in flat:
        return flat[name]
    if name in path:
        cycle = " -> ".join([*path[path.index(name) :], name])
        diags.append(
            error(
                "PR243",
                f"value sets include each other: {cycle}",
                decls[name].name_span,
                help="a value set may list another one, but not itself, directly or not",
            )
        )
        flat[name] = None
        return None
    path.append(name)
    members: list[tuple[Member, Span | None]] = []
    seen: dict[tuple[str, bool], None] = {}
    failed = False
    for node in decls[name].members:
        if isinstance(node, ast.CodeLit):
            member = _member(node, diags)
            if member is None:
                failed = True
                continue
            key = (member.code, member.descendants)
            if key in seen:
                diags.append(
                    warning(
                        "PR245",
                        f"`{member.text()}` is listed twice in `{name}`",
                        node.span,
                        help="list each code once",
                    )
                )
                continue
            seen[key] = None
            members.append((member, node.span))
            continue
        if node.name not in decls:
            diags.append(
                error(
                    "PR241",
                    f"unknown value set `{node.name}`",
                    node.span,
                    label="not a value set this protocol declares",
                    help=did_you_mean(node.name, decls)
                    or f"declare it: `codes {node.name} = {{…}}`",
                )
            )
            failed = True
            continue
        inner = _flatten(node.name, decls, flat, path, diags)
        if inner is None:
            failed = True
            continue
        for member, span in inner:
            key = (member.code, member.descendants)
            if key not in seen:
                seen[key] = None
                members.append((_via(member, node.name), span))
    path.pop()
    flat[name] = None if failed else members
    return flat[name]


def _via(member: Member, name: str) -> Member:
    return member if member.via else Member(member.code, member.descendants, member.display, name)


def _empty(span: Span | None, name: str | None) -> Diagnostic:
    what = f"value set `{name}`" if name else "the set of codes"
    return error(
        "PR340",
        f"{what} is empty: nothing would ever match it",
        span,
        help="list at least one code, e.g. `{ICD10CM#N17*}`",
    )


def _article(kind: str) -> str:
    return kind if kind.startswith(("a ", "an ")) else f"a {kind}"


def unused_value_sets(
    sets: Mapping[str, tuple[ValueSet, ast.Codes]], used: set[str], included: set[str]
) -> list[Diagnostic]:
    """PR244 for each value set no expression and no other value set reads."""
    return [
        warning(
            "PR244",
            f"value set `{name}` is never used",
            decl.name_span,
            help=f"test codes with it (`x in {name}`), or remove it",
        )
        for name, (_, decl) in sets.items()
        if name not in used and name not in included
    ]


def included_sets(file: ast.ProtocolFile) -> set[str]:
    """The value sets other value sets list (they count as used)."""
    return {
        m.name
        for item in file.items
        if isinstance(item, ast.Codes)
        for m in item.members
        if isinstance(m, ast.Name)
    }


# --------------------------------------------------------------------------- expressions


class CodeChecks(_Base):
    """The terminology half of `ExprChecker` (see the module docstring)."""

    # Set by `check.check` through `init_codes`; a checker of a library has none.
    value_sets: Mapping[str, ValueSet] = MappingProxyType({})
    terminology: Terminology | None = None

    def init_codes(
        self,
        sets: Mapping[str, ValueSet],
        terminology: Terminology | None,
        cache: dict[str, tuple[str, ...] | None],
    ) -> None:
        self.value_sets = sets
        self.terminology = terminology
        self.expansions = cache
        self.used_value_sets: set[str] = set()

    def _mark_used(self, name: str) -> None:
        if "used_value_sets" not in self.__dict__:
            self.used_value_sets = set()
        self.used_value_sets.add(name)

    # ------------------------------------------------------------------ literals

    def _code_expr(self, node: ast.CodeLit | ast.ValueSetRef) -> ir.Node:
        """A code literal as a value: a `Const` of type `code`."""
        if isinstance(node, ast.ValueSetRef):  # pragma: no cover - only after `in`/`contains`
            return self._value_set_as_value(node)
        found: list[Diagnostic] = []
        code = resolve_code(node, found)
        self.diagnostics.extend(found)
        if code is None:
            return ir.Const(None, _error_type(), source=node)
        if node.descendants:
            self._error(
                "PR341",
                f"`{node.system}#{node.code}*` stands for many codes, not one",
                node.span,
                help=f"test membership: `x in {{{node.system}#{node.code}*}}`, or drop the `*`",
            )
            return ir.Const(None, _error_type(), source=node)
        return ir.Const(code, CODE, source=node)

    def _value_set_as_value(self, node: ast.Name | ast.ValueSetRef) -> ir.Node:
        name = node.name
        self._mark_used(name)
        self._error(
            "PR342",
            f"value set `{name}` is a set of codes, not a value",
            node.span,
            help=f"test a code with it: `x in {name}`, or a set of codes: "
            f"`diagnoses contains any of {name}`",
        )
        return ir.Const(None, _error_type(), source=node)

    # ------------------------------------------------------------------ routing

    def is_code_test(self, operand: ir.Node, items: tuple[ast.Expr, ...]) -> bool:
        """Whether `x in {…}` / `s contains …` is about codes: a code operand or code items."""
        element = operand.type.element if isinstance(operand.type, SetT) else operand.type
        if isinstance(element, CodeT):
            return True
        return any(
            isinstance(i, ast.CodeLit | ast.ValueSetRef)
            or (isinstance(i, ast.Name) and i.name in self.value_sets and not self._is_value(i))
            for i in items
        )

    def _is_value(self, node: ast.Name) -> bool:
        return (
            node.name in self.facts or node.name in self.define_names or node.name in self._choices
        )

    # ------------------------------------------------------------------ in and contains

    def _in_codes(self, node: ast.InSet, operand: ir.Node) -> ir.Node:
        """`x in aki`, `x not in {…}` on a code."""
        codes = self._codes_of(node.items, node.span)
        if not self._is_code(operand, "`in`"):
            return ir.InCodes(operand, codes or ValueSet(None, ()), node.negated, _error_type(),
                              source=node)  # fmt: skip
        if codes is None:
            return ir.InCodes(operand, ValueSet(None, ()), node.negated, _error_type(),
                              source=node)  # fmt: skip
        return ir.InCodes(operand, codes, node.negated, BOOL, source=node)

    def _contains_codes(self, node: ast.Contains, collection: ir.Node) -> ir.Node:
        """`s contains any of aki`, `s contains all of {…}`, `s contains ICD10CM#N17*`."""
        ctype = collection.type
        items = node.items
        if node.mode is ast.ContainsMode.ONE and isinstance(items[0], ast.Name):
            name = items[0].name
            if name in self.value_sets and not self._is_value(items[0]):
                self._mark_used(name)
                self._error(
                    "PR342",
                    f"`contains {name}` is ambiguous: `{name}` is a value set of several codes",
                    node.span,
                    help=f"write `contains any of {name}` or `contains all of {name}`",
                )
                return ir.ContainsCodes(collection, node.mode, ValueSet(None, ()), _error_type(),
                                        source=node)  # fmt: skip
        codes = self._codes_of(items, node.span)
        element = ctype.element if isinstance(ctype, SetT) else None
        if isinstance(ctype, ErrorT) or codes is None:
            return ir.ContainsCodes(collection, node.mode, codes or ValueSet(None, ()),
                                    _error_type(), source=node)  # fmt: skip
        if not isinstance(element, CodeT):
            self._error(
                "PR342",
                f"`{node.mode.value}` with codes reads a set of codes, not {_a(ctype)}",
                node.collection.span,
                help="declare the fact as `set of code`",
            )
            return ir.ContainsCodes(collection, node.mode, codes, _error_type(), source=node)
        return ir.ContainsCodes(collection, node.mode, codes, BOOL, source=node)

    def _is_code(self, operand: ir.Node, what: str) -> bool:
        t = operand.type
        if isinstance(t, CodeT):
            return True
        if isinstance(t, ErrorT):
            return False
        self._error(
            "PR342",
            f"{what} with codes tests a code, but this is {_a(t)}",
            operand.source.span if operand.source is not None else None,
            help="declare the fact as `code` (or `series of code`, read with `value`)",
        )
        return False

    def _codes_of(self, items: tuple[ast.Expr, ...], span: Span | None) -> ValueSet | None:
        """The value set that `in` / `contains` items stand for (None after an error)."""
        if len(items) == 1 and isinstance(items[0], ast.ValueSetRef):
            ref = items[0]
            found = self.value_sets.get(ref.name)
            self._mark_used(ref.name)
            if found is None:
                self._unknown_value_set(ref.name, ref.span)
                return None
            return found
        members: list[tuple[Member, Span | None]] = []
        failed = False
        for item in items:
            if isinstance(item, ast.CodeLit):
                found_diags: list[Diagnostic] = []
                member = _member(item, found_diags)
                self.diagnostics.extend(found_diags)
                if member is None:
                    failed = True
                else:
                    members.append((member, item.span))
            elif isinstance(item, ast.Name) and item.name in self.value_sets:
                self._mark_used(item.name)
                inner = self.value_sets[item.name]
                members.extend((_via(m, item.name), None) for m in inner.members)
            elif isinstance(item, ast.Name):
                self._unknown_value_set(item.name, item.span)
                failed = True
            else:
                self._error(
                    "PR342",
                    f"a set of codes holds codes and value sets, not `{item.span.text}`",
                    item.span,
                    help="write codes such as `ICD10CM#N17.9`, or names of value sets",
                )
                failed = True
        if failed:
            return None
        if not members:
            self.diagnostics.append(_empty(span, None))
            return None
        unique = list({(m.code, m.descendants): (m, s) for m, s in members}.values())
        cache = self.__dict__.setdefault("expansions", {})
        expanded = expand(unique, self.terminology, self.diagnostics, cache)
        return ValueSet(None, tuple(m for m, _ in unique), expanded)

    def _unknown_value_set(self, name: str, span: Span | None) -> None:
        self._error(
            "PR241",
            f"unknown value set `{name}`",
            span,
            label="not a value set this protocol declares",
            help=did_you_mean(name, self.value_sets) or f"declare it: `codes {name} = {{…}}`",
        )


def _error_type() -> Type:
    from .types import ERROR

    return ERROR


def _a(t: Any) -> str:
    text = str(t)
    return f"an {text}" if text[:1] in "aeiou" else f"a {text}"
