"""Traces of terminology nodes: which code matched which member of a value set, with the code's
display name when the patient record or the value set gives one (docs/language/codes.md).

Used by `trace.TraceBuilder` for `ir.InCodes` and `ir.ContainsCodes`: below the node, one trace
of kind ``code`` per match — `expr` is the member as written (``ICD10CM#N17*``), `value` the
patient's code that matched it (``ICD10CM#N17.0``), `given` its display name, if known. For
`contains all of`, a member that no code matches is listed too, unknown, with `why`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from . import ast
from .check import ir
from .codes import Member, display_of
from .result import Trace


def displays(patient: Mapping[str, Any]) -> dict[str, str]:
    """Display names of the codes a patient record sends as FHIR Codings with a `display`."""
    found: dict[str, str] = {}
    for value in _codings(patient.values()):
        pair = display_of(value)
        if pair is not None:
            found.setdefault(*pair)
    return found


def _codings(values: Any) -> Iterator[Any]:
    for value in values:
        if isinstance(value, Mapping):
            if "code" in value:
                yield value
            elif "value" in value:
                yield from _codings([value["value"]])
        elif isinstance(value, list | tuple):
            yield from _codings(value)


def matches(
    node: ir.InCodes | ir.ContainsCodes, value: Any, names: Mapping[str, str]
) -> tuple[Trace, ...]:
    """The `code` traces under a terminology node whose operand took `value` (a code, or a
    frozenset of codes; anything else gives none)."""
    if isinstance(node, ir.InCodes):
        codes = [value] if isinstance(value, str) else []
    else:
        codes = sorted(value) if isinstance(value, frozenset) else []
    if not codes and not isinstance(value, frozenset):
        return ()
    if isinstance(node, ir.ContainsCodes) and node.mode is ast.ContainsMode.ALL:
        out = []
        for member, matcher in zip(node.codes.members, node.codes.member_matchers(), strict=True):
            hit = next((c for c in codes if matcher.match(c) is not None), None)
            out.append(_trace(member, hit, names))
        return tuple(out)
    match = node.codes.matcher().match
    found = [(c, match(c)) for c in codes]
    return tuple(_trace(m, c, names) for c, m in found if m is not None)


def _trace(member: Member, code: str | None, names: Mapping[str, str]) -> Trace:
    display = (
        (names.get(code) or (member.display if code == member.code else None)) if code else None
    )
    via = f" (in `{member.via}`)" if member.via else ""
    return Trace(
        member.text() + via,
        "code",
        code,
        code is not None,
        given=display,
        why=None if code else "no code of the set matches it",
    )
