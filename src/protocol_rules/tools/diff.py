"""`protocol-rules diff OLD NEW`: what an amendment changes, criterion by criterion (docs/diff.md).

Criteria are matched by id. For each criterion in both versions, the text and note are
compared (a rewording) and so is the logic: identical expressions (whatever the layout) are
the same; otherwise the explicit encoding searches for a patient whose outcome differs, which
both protocols then evaluate (a confirmed witness), and failing that the abstract encoding
proves that no patient's outcome differs (the criteria are equivalent). Facts are compared by
declaration. With a population, both protocols screen it and the patients whose status
changes are counted by direction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from attrs import frozen

from .. import ast
from ..check.model import CheckedProtocol, CriterionInfo, FactInfo
from ..diagnostics import PatientDataError

if TYPE_CHECKING:
    from ..protocol import Protocol
    from .smt import Encoder

JSON_VERSION = "1.0"

#: Logic verdicts: the same expression; proved equivalent; a witness shows a difference; the
#: solver could not decide; absent on one side.
IDENTICAL, EQUIVALENT, DIFFERENT, UNDECIDED, NONE = (
    "identical",
    "equivalent",
    "different",
    "undecided",
    "none",
)


@frozen
class CriterionChange:
    """One criterion id across the two versions."""

    id: str
    change: str  # added, removed, changed (meaning), reworded (text only), unchanged
    old: CriterionInfo | None
    new: CriterionInfo | None
    logic: str  # one of the logic verdicts above
    reworded: tuple[str, ...] = ()  # which of `text`, `note` changed
    kind_changed: bool = False
    witness: dict[str, Any] | None = None
    witness_status: str = "none"
    outcomes: tuple[str, str] | None = None  # the witness's outcome under old, under new
    population: int | None = None  # patients whose outcome of this criterion changes


@frozen
class FactChange:
    name: str
    change: str  # added, removed, changed, described (the description only)
    old: str | None
    new: str | None


@frozen
class PopulationChange:
    """How many patients of a population change status, by direction."""

    source: str
    patients: int
    moves: tuple[tuple[str, str, int], ...]  # (old status, new status, patients), changes only

    @property
    def changed(self) -> int:
        return sum(n for _, _, n in self.moves)


@frozen
class DiffReport:
    old: str
    new: str
    criteria: tuple[CriterionChange, ...]
    facts: tuple[FactChange, ...]
    status_witness: dict[str, Any] | None  # a patient whose status differs, if one was found
    status_outcomes: tuple[str, str] | None
    statuses_equal: bool | None  # proved equal (True), shown different (False), or None
    population: PopulationChange | None
    seconds: float

    @property
    def same(self) -> bool:
        """Every patient gets the same outcome of every criterion, and no criterion or fact
        declaration was added, removed or changed (rewordings and descriptions aside)."""
        return all(c.change in ("unchanged", "reworded") for c in self.criteria) and all(
            f.change == "described" for f in self.facts
        )


# --------------------------------------------------------------------------- comparing


class _Differ:
    def __init__(self, old: Protocol, new: Protocol, as_of: float | None, timeout_ms: int):
        from .smt import Encoder

        self.old, self.new = old, new
        self.timeout = timeout_ms
        self.proofs = Encoder()
        self.models = Encoder(explicit=True, as_of=as_of)
        self.units = _unit_objects(old.checked, new.checked)

    def encode(self, encoder: Encoder, checked: CheckedProtocol, c: CriterionInfo) -> Any:
        return encoder.criterion(checked, c)

    def criterion(self, old: CriterionInfo, new: CriterionInfo) -> CriterionChange:
        reworded = tuple(
            name
            for name, a, b in (("text", old.text, new.text), ("note", old.note, new.note))
            if a != b
        )
        kind_changed = old.kind is not new.kind
        a_old = self.encode(self.proofs, self.old.checked, old)
        key_old = self.proofs.key(old.body)
        a_new = self.encode(self.proofs, self.new.checked, new)
        key_new = self.proofs.key(new.body)
        if key_old == key_new and not self.proofs.facts.conflicts and self._proved(a_old, a_new):
            logic = IDENTICAL
            witness, status, outcomes = None, "none", None
        else:
            logic, witness, status, outcomes = self._logic(old, new, a_old, a_new)
        changed = kind_changed or logic in (DIFFERENT, UNDECIDED)
        change = "changed" if changed else ("reworded" if reworded else "unchanged")
        return CriterionChange(
            new.id, change, old, new, logic, reworded, kind_changed, witness, status, outcomes
        )

    def _proved(self, a_old: Any, a_new: Any) -> bool:
        """The solver's proof that no patient's outcome differs."""
        from .smt import UNSAT, solve

        return solve(self.proofs, [_differs(a_old, a_new)], self.timeout)[0] == UNSAT

    def _logic(self, old: CriterionInfo, new: CriterionInfo, a_old: Any, a_new: Any) -> Any:
        from .smt import UNSAT, solve

        status, _ = solve(self.proofs, [_differs(a_old, a_new)], self.timeout)
        if status == UNSAT:
            return EQUIVALENT, None, "none", None
        x_old = self.encode(self.models, self.old.checked, old)
        x_new = self.encode(self.models, self.new.checked, new)
        facts = dict.fromkeys([*old.facts, *new.facts])

        def confirm(record: dict[str, Any]) -> bool:
            pair = self._outcomes(record, old.id, new.id)
            return pair is not None and pair[0] != pair[1]

        record, how = self._witness(
            [[_differs(x_old, x_new), x_old.known, x_new.known], [_differs(x_old, x_new)]],
            confirm,
            facts,
        )
        if record is None:
            return UNDECIDED, None, "none", None
        outcomes = self._outcomes(record, old.id, new.id)
        return (DIFFERENT if how == "confirmed" else UNDECIDED), record, how, outcomes

    def _witness(
        self, attempts: list[list[Any]], confirm: Any, facts: Iterable[str]
    ) -> tuple[dict[str, Any] | None, str]:
        """The first confirmed witness of the attempts (decided outcomes are tried first)."""
        from .smt import find_witness

        fallback: tuple[dict[str, Any] | None, str] = (None, "none")
        for formulas in attempts:
            record, how = find_witness(
                self.models,
                formulas,
                confirm,
                facts=list(facts),
                unit_objects=self.units,
                timeout_ms=self.timeout,
            )
            if how == "confirmed":
                return record, how
            if record is not None and fallback[0] is None:
                fallback = (record, how)
        return fallback

    def _outcomes(self, record: dict[str, Any], old_id: str, new_id: str) -> Any:
        try:
            a = self.old.evaluate(record).criterion(old_id).outcome.value
            b = self.new.evaluate(record).criterion(new_id).outcome.value
        except (PatientDataError, KeyError):
            return None
        return a, b

    def _status(self, old: bool) -> tuple[Any, Any]:
        """(eligible, ineligible) formulas of a protocol, in both encodings."""
        from .smt.values import tri_and, tri_not, tri_or

        protocol = self.old if old else self.new
        out = []
        for encoder in (self.proofs, self.models):
            parts = []
            for c in protocol.checked.criteria:
                value = encoder.criterion(protocol.checked, c)
                parts.append(value if c.kind is ast.CriterionKind.INCLUSION else tri_not(value))
            passes = tri_and(parts) if parts else tri_or([])
            out.append(passes)
        return out[0], out[1]

    def statuses(self) -> tuple[bool | None, dict[str, Any] | None, tuple[str, str] | None]:
        """Whether every patient gets the same status: proved (True), a confirmed witness
        (False), or undecided (None)."""
        import z3

        from .smt import UNSAT, solve

        a_old, x_old = self._status(True)
        a_new, x_new = self._status(False)
        if solve(self.proofs, [z3.Not(a_old.equals(a_new))], self.timeout)[0] == UNSAT:
            return True, None, None
        facts = dict.fromkeys(
            f for p in (self.old, self.new) for c in p.checked.criteria for f in c.facts
        )

        def confirm(record: dict[str, Any]) -> bool:
            pair = self._statuses(record)
            return pair is not None and pair[0] != pair[1]

        differs = z3.Not(x_old.equals(x_new))
        record, how = self._witness(
            [[differs, x_old.known, x_new.known], [differs]], confirm, facts
        )
        if how == "confirmed" and record is not None:
            return False, record, self._statuses(record)
        return None, None, None

    def _statuses(self, record: dict[str, Any]) -> tuple[str, str] | None:
        try:
            return self.old.evaluate(record).status.value, self.new.evaluate(record).status.value
        except PatientDataError:
            return None


def _differs(x: Any, y: Any) -> Any:
    import z3

    return z3.Not(x.equals(y))


def _unit_objects(old: CheckedProtocol, new: CheckedProtocol) -> list[str]:
    """Quantity facts the two declare in different units (a witness gives their unit)."""
    units = {f.name: f.unit for f in old.facts}
    return [f.name for f in new.facts if f.name in units and f.unit != units[f.name]]


def _declaration(f: FactInfo) -> str:
    parts = [str(f.type)]
    if f.low is not None:
        parts.append(f"range {f.low:g} to {f.high:g}")
    if f.molar_mass is not None:
        parts.append(f"molar_mass {f.molar_mass:g} 'g/mol'")
    if f.past:
        parts.append("past")
    return " ".join(parts)


def _fact_changes(old: CheckedProtocol, new: CheckedProtocol) -> list[FactChange]:
    before = {f.name: f for f in old.facts}
    after = {f.name: f for f in new.facts}
    out = []
    for name, f in before.items():
        if name not in after:
            out.append(FactChange(name, "removed", _declaration(f), None))
    for name, g in after.items():
        f = before.get(name)
        if f is None:
            out.append(FactChange(name, "added", None, _declaration(g)))
        elif _declaration(f) != _declaration(g) or _choices(f) != _choices(g):
            out.append(FactChange(name, "changed", _declaration(f), _declaration(g)))
        elif f.description != g.description:
            out.append(FactChange(name, "described", f.description, g.description))
    return out


def _choices(f: FactInfo) -> Any:
    t = f.type
    element = getattr(t, "element", t)
    return getattr(element, "choices", None)


# --------------------------------------------------------------------------- population


def population_change(
    old: Protocol, new: Protocol, data: Any, as_of: Any = None
) -> tuple[PopulationChange, dict[str, int]]:
    """Screen `data` with both protocols (the screening engine): status moves, and per
    criterion id the patients whose outcome changes."""
    before = old.screen(data, as_of=as_of, ignore_unknown=True).frame
    after = new.screen(data, as_of=as_of, ignore_unknown=True).frame
    moves: dict[tuple[str, str], int] = {}
    for a, b in zip(
        before.get_column("status").cast(str), after.get_column("status").cast(str), strict=True
    ):
        if a != b:
            moves[(a, b)] = moves.get((a, b), 0) + 1
    per_criterion = {}
    for cid in set(before.columns) & set(after.columns):
        if cid in ("patient_id", "status", "missing_facts", "error_code", "error_message"):
            continue
        a, b = before.get_column(cid).cast(str), after.get_column(cid).cast(str)
        per_criterion[cid] = int((a.fill_null("") != b.fill_null("")).sum())
    ordered = tuple(sorted(((a, b, n) for (a, b), n in moves.items()), key=lambda m: -m[2]))
    return PopulationChange(str(data), before.height, ordered), per_criterion


# --------------------------------------------------------------------------- entry point


def diff(
    old: Protocol,
    new: Protocol,
    *,
    population: Any = None,
    as_of: float | None = None,
    population_as_of: Any = None,
    timeout_ms: int = 10000,
) -> DiffReport:
    """Compare two versions of a protocol. Needs the ``[lint]`` extra (z3-solver); with a
    population, also the ``[screen]`` extra (polars)."""
    import attrs

    start = time.perf_counter()
    differ = _Differ(old, new, as_of, timeout_ms)
    before = {c.id: c for c in old.checked.criteria}
    after = {c.id: c for c in new.checked.criteria}
    changes: list[CriterionChange] = []
    for c in new.checked.criteria:
        if c.id in before:
            changes.append(differ.criterion(before[c.id], c))
        else:
            changes.append(CriterionChange(c.id, "added", None, c, NONE))
    for c in old.checked.criteria:
        if c.id not in after:
            changes.append(CriterionChange(c.id, "removed", c, None, NONE))
    facts = _fact_changes(old.checked, new.checked)
    if all(ch.change in ("unchanged", "reworded") for ch in changes) and not any(
        f.change != "described" for f in facts
    ):
        equal, witness, outcomes = True, None, None
    else:
        equal, witness, outcomes = differ.statuses()
    moved = None
    if population is not None:
        moved, per_criterion = population_change(old, new, population, population_as_of)
        changes = [attrs.evolve(ch, population=per_criterion.get(ch.id)) for ch in changes]
    return DiffReport(
        old.source_name,
        new.source_name,
        tuple(changes),
        tuple(facts),
        witness,
        outcomes,
        equal,
        moved,
        time.perf_counter() - start,
    )


# --------------------------------------------------------------------------- rendering


def _witness(record: dict[str, Any] | None) -> str:
    return json.dumps(record, ensure_ascii=False) if record is not None else "none"


def _logic_text(c: CriterionChange) -> str:
    if c.logic == IDENTICAL:
        return "same logic (identical expressions, proved)"
    if c.logic == EQUIVALENT:
        return "same logic (proved: no patient's outcome differs)"
    if c.logic == DIFFERENT and c.outcomes is not None:
        return f"logic changed: a patient is {c.outcomes[0]} before, {c.outcomes[1]} after"
    if c.logic == UNDECIDED:
        return "logic may have changed: neither a witness nor a proof was found"
    return ""


def diff_text(report: DiffReport) -> str:
    """The report for a terminal."""
    from ..render.safe import printable

    lines = [f"{printable(report.old)} -> {printable(report.new)}"]
    for c in report.criteria:
        if c.change == "unchanged":
            continue
        head = f"  {c.change:<9} {c.id}"
        if c.change in ("added", "removed"):
            info = c.new or c.old
            assert info is not None
            lines.append(f"{head}  ({info.kind.value}) {printable(info.text, newlines=False)}")
            continue
        lines.append(f"{head}  {_logic_text(c)}")
        if c.kind_changed:
            assert c.old is not None and c.new is not None
            lines.append(f"            was an {c.old.kind.value}, now an {c.new.kind.value}")
        for what in c.reworded:
            a = getattr(c.old, what) or ""
            b = getattr(c.new, what) or ""
            lines.append(f"            {what}: {printable(a, newlines=False)!r}")
            lines.append(f"                 -> {printable(b, newlines=False)!r}")
        if c.witness is not None:
            state = "confirmed by eval" if c.witness_status == "confirmed" else "NOT confirmed"
            lines.append(f"            witness ({state}): {_witness(c.witness)}")
        if c.population is not None:
            n = c.population
            verb = "patient changes" if n == 1 else "patients change"
            lines.append(f"            population: {n} {verb} outcome")
    for f in report.facts:
        lines.append(f"  fact {f.change:<9} {f.name}: {f.old or '-'} -> {f.new or '-'}")
    if report.statuses_equal is False and report.status_witness is not None:
        assert report.status_outcomes is not None
        a, b = report.status_outcomes
        lines.append(
            f"  status: a patient is {a} before, {b} after: {_witness(report.status_witness)}"
        )
    elif report.statuses_equal is True and not report.same:
        lines.append("  status: proved the same for every patient")
    if report.population is not None:
        pop = report.population
        lines.append(
            f"  population {printable(pop.source)}: {pop.changed} of {pop.patients} patients "
            "change status"
        )
        lines += [f"    {a} -> {b}: {n}" for a, b, n in pop.moves]
    verdict = "the two protocols mean the same" if report.same else "the protocols differ"
    counts = _counts(report.criteria)
    lines.append(f"{verdict}: {counts}")
    return "\n".join(lines)


def _counts(changes: Iterable[CriterionChange]) -> str:
    tally: dict[str, int] = {}
    for c in changes:
        tally[c.change] = tally.get(c.change, 0) + 1
    order = ("changed", "added", "removed", "reworded", "unchanged")
    return ", ".join(f"{tally[k]} {k}" for k in order if tally.get(k))


def diff_markdown(report: DiffReport) -> str:
    """An amendment report in Markdown."""
    from ..render.safe import markdown_text as md

    lines = [
        f"# Amendment report: {md(report.old)} → {md(report.new)}",
        "",
        "The two protocols **mean the same**: every patient gets the same outcome of every "
        "criterion."
        if report.same
        else f"The protocols **differ**: {_counts(report.criteria)}.",
        "",
    ]
    listed = [c for c in report.criteria if c.change != "unchanged"]
    if listed:
        lines += ["| criterion | change | logic | patients changing outcome |"]
        lines += ["| --- | --- | --- | ---: |"]
    for c in listed:
        pop = "" if c.population is None else str(c.population)
        lines.append(f"| {c.id} | {c.change} | {md(_logic_text(c)) or '–'} | {pop} |")
    same = [c.id for c in report.criteria if c.change == "unchanged"]
    if same:
        lines += ["", f"Unchanged (same text, logic proved the same): {', '.join(same)}."]
    for c in report.criteria:
        if c.change == "unchanged":
            continue
        info = c.new or c.old
        assert info is not None
        lines += ["", f"## {c.id} ({c.change})", "", md(info.text)]
        if c.old is not None and c.new is not None and c.logic != IDENTICAL:
            lines += ["", "Before:", "", *_fenced(_expr(c.old), "rules"), "", "After:", ""]
            lines += _fenced(_expr(c.new), "rules")
        for what in c.reworded:
            lines += ["", f"The {what} changed from", "", f"> {md(getattr(c.old, what) or '')}"]
            lines += ["", "to", "", f"> {md(getattr(c.new, what) or '')}"]
        if c.witness is not None:
            assert c.outcomes is not None
            lines += [
                "",
                f"A patient who is **{c.outcomes[0]}** before and **{c.outcomes[1]}** after "
                f"({_confirmation(c.witness_status)}):",
                "",
                *_fenced(json.dumps(c.witness, indent=2, ensure_ascii=False), "json"),
            ]
    if report.status_witness is not None and report.status_outcomes is not None:
        a, b = report.status_outcomes
        lines += ["", "## Status", "", f"A patient who is **{a}** before and **{b}** after:", ""]
        lines += _fenced(json.dumps(report.status_witness, indent=2, ensure_ascii=False), "json")
    elif report.statuses_equal and not report.same:
        lines += ["", "## Status", "", "Proved: every patient gets the same status."]
    if report.facts:
        lines += [
            "",
            "## Facts",
            "",
            "| fact | change | before | after |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {md(f.name)} | {f.change} | {md(f.old or '–')} | {md(f.new or '–')} |"
            for f in report.facts
        ]
    if report.population is not None:
        pop = report.population
        lines += [
            "",
            "## Population",
            "",
            f"{pop.changed} of {pop.patients} patients change status.",
        ]
        if pop.moves:
            lines += ["", "| before | after | patients |", "| --- | --- | ---: |"]
            lines += [f"| {a} | {b} | {n} |" for a, b, n in pop.moves]
    return "\n".join(lines) + "\n"


def _fenced(text: str, lang: str) -> list[str]:
    """A fenced block that the text cannot close (a fence longer than its backtick runs)."""
    import re

    from ..render.safe import printable

    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + lang, printable(text), fence]


def _confirmation(status: str) -> str:
    if status == "confirmed":
        return "confirmed by evaluating both versions"
    return "not confirmed by evaluation: inspect it"


def _expr(c: CriterionInfo) -> str:
    span = c.decl.expr.span
    return span.text if span is not None else ""


def diff_dict(report: DiffReport) -> dict[str, Any]:
    """The JSON shape of ``protocol-rules diff --format json``."""
    return {
        "version": JSON_VERSION,
        "old": report.old,
        "new": report.new,
        "same": report.same,
        "seconds": round(report.seconds, 3),
        "criteria": [
            {
                "id": c.id,
                "change": c.change,
                "kind": (c.new or c.old).kind.value,  # type: ignore[union-attr]
                "kind_changed": c.kind_changed,
                "logic": c.logic,
                "reworded": list(c.reworded),
                "witness": c.witness,
                "witness_status": c.witness_status,
                "outcomes": {"old": c.outcomes[0], "new": c.outcomes[1]} if c.outcomes else None,
                "population": c.population,
            }
            for c in report.criteria
        ],
        "facts": [
            {"name": f.name, "change": f.change, "old": f.old, "new": f.new} for f in report.facts
        ],
        "status": {
            "equal": report.statuses_equal,
            "witness": report.status_witness,
            "outcomes": (
                {"old": report.status_outcomes[0], "new": report.status_outcomes[1]}
                if report.status_outcomes
                else None
            ),
        },
        "population": (
            {
                "source": report.population.source,
                "patients": report.population.patients,
                "changed": report.population.changed,
                "moves": [
                    {"old": a, "new": b, "patients": n} for a, b, n in report.population.moves
                ],
            }
            if report.population is not None
            else None
        ),
    }
