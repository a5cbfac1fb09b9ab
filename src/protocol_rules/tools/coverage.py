"""Coverage of a protocol by its test cases, from the evaluation records (docs/testing-rules.md).

Three kinds of items, each covered or not:

- **outcomes**: for each criterion, `met`, `not_met` and `unknown`, each reached by some case;
- **operands** (MC/DC style, with masking for short-circuit): for each operand of an `and`,
  an `or`, an `at least N of` or an `at most N of`, the cases must show it *deciding* its
  decision once while true and once while false. An operand decides in a case when the
  decision's value is known and flipping that operand's value alone (true <-> false, the other
  operands as the case recorded them) would give the other known value; operands the evaluator
  did not evaluate (after an `and` met a false or an `or` a true) count as holding the value
  that does not decide (they are masked);
- **boundaries**: for each comparison of numbers, quantities or instants, a case whose two
  sides are equal (for `between`, one case on each end; for `time_since(x) OP D`, one on the
  day ``x + D`` equals `as_of`). Comparisons inside `any`/`all`/`where` count an observation
  on the threshold.

Nothing is evaluated here: every value is the one the interpreter recorded for the case (for
conditions run once per observation, the interpreter's own closure is run again on each
observation of the recorded window).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs
from attrs import define, frozen

from .. import ast
from ..calendar import DAY, NEVER, shift
from ..check import ir
from ..check.types import NumT, QtyT, TimeT
from ..evaluate import NOTRUN
from ..facts import UNKNOWN

if TYPE_CHECKING:
    from ..evaluate import Program
    from .runner import CaseResult

JSON_VERSION = "1.0"
U = UNKNOWN
OUTCOMES = ("met", "not_met", "unknown")


@define
class OperandItem:
    text: str
    line: int
    column: int
    decided_true: str | None = None  # the first case in which it decided while true
    decided_false: str | None = None

    @property
    def covered(self) -> bool:
        return self.decided_true is not None and self.decided_false is not None


@define
class DecisionItem:
    owner: str  # `I1`, or `define creatinine_doubled`
    kind: str  # `and`, `or`, `at least 2 of`, `at most 1 of`
    text: str
    line: int
    column: int
    operands: list[OperandItem]


@define
class BoundaryItem:
    owner: str
    text: str
    line: int
    column: int
    labels: list[str]  # `=` (one boundary), `low` and `high` for between, `x + D` for calendar
    reached: list[str | None]  # the first case on each boundary


@define
class OutcomeItem:
    id: str
    kind: str
    reached: dict[str, list[str]] = attrs.Factory(lambda: {o: [] for o in OUTCOMES})


@frozen
class Totals:
    covered: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 if not self.total else 100.0 * self.covered / self.total


@define
class Coverage:
    """What the cases reached; `percent` is covered items over all items, in percent."""

    protocol: str
    cases: int
    criteria: list[OutcomeItem]
    decisions: list[DecisionItem]
    boundaries: list[BoundaryItem]

    @property
    def outcome_totals(self) -> Totals:
        covered = sum(bool(cases) for c in self.criteria for cases in c.reached.values())
        return Totals(covered, 3 * len(self.criteria))

    @property
    def operand_totals(self) -> Totals:
        operands = [o for d in self.decisions for o in d.operands]
        return Totals(sum(o.covered for o in operands), len(operands))

    @property
    def boundary_totals(self) -> Totals:
        reached = [r for b in self.boundaries for r in b.reached]
        return Totals(sum(r is not None for r in reached), len(reached))

    @property
    def totals(self) -> Totals:
        parts = (self.outcome_totals, self.operand_totals, self.boundary_totals)
        return Totals(sum(p.covered for p in parts), sum(p.total for p in parts))

    @property
    def percent(self) -> float:
        return self.totals.percent

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape printed by ``protocol-rules test --coverage --format json``."""

        def totals(t: Totals) -> dict[str, Any]:
            return {"covered": t.covered, "total": t.total, "percent": round(t.percent, 2)}

        return {
            "version": JSON_VERSION,
            "protocol": self.protocol,
            "cases": self.cases,
            "percent": round(self.percent, 2),
            "totals": {
                "all": totals(self.totals),
                "outcomes": totals(self.outcome_totals),
                "operands": totals(self.operand_totals),
                "boundaries": totals(self.boundary_totals),
            },
            "criteria": [
                {"id": c.id, "kind": c.kind, "reached": {o: c.reached[o] for o in OUTCOMES}}
                for c in self.criteria
            ],
            "decisions": [
                {
                    "owner": d.owner,
                    "kind": d.kind,
                    "expr": d.text,
                    "line": d.line,
                    "column": d.column,
                    "operands": [
                        {
                            "expr": o.text,
                            "line": o.line,
                            "column": o.column,
                            "decided_true": o.decided_true,
                            "decided_false": o.decided_false,
                            "covered": o.covered,
                        }
                        for o in d.operands
                    ],
                }
                for d in self.decisions
            ],
            "boundaries": [
                {
                    "owner": b.owner,
                    "expr": b.text,
                    "line": b.line,
                    "column": b.column,
                    "boundaries": [
                        {"at": label, "case": case, "covered": case is not None}
                        for label, case in zip(b.labels, b.reached, strict=True)
                    ],
                }
                for b in self.boundaries
            ],
        }


# --------------------------------------------------------------------------- collecting


def _text(node: ir.Node) -> str:
    return " ".join(node.source.span.text.split())


def _is_ordered(node: ir.Node) -> bool:
    t = node.type
    return isinstance(t, QtyT | TimeT | NumT)


class _Static:
    """The items of a program, found once: decisions and comparisons by slot, with owners."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.decisions: dict[int, DecisionItem] = {}
        self.boundaries: dict[int, BoundaryItem] = {}
        self.seen: set[int] = set()
        define_slots = {slot: name for name, slot in program.define_roots.items()}
        self.define_names = define_slots
        for (root, _), info in zip(program.roots, program.checked.criteria, strict=True):
            self._walk(root, info.id)

    def _walk(self, i: int, owner: str) -> None:
        if i in self.seen:
            return
        self.seen.add(i)
        program = self.program
        node = program.nodes[i]
        if i in self.define_names:
            owner = f"define {self.define_names[i]}"
        span = node.source.span
        match node:
            case ir.Logic(op=op):
                self.decisions[i] = self._decision(i, owner, op.value)
            case ir.Count(op=op, n=n):
                word = "at least" if op is ast.CountOp.AT_LEAST else "at most"
                self.decisions[i] = self._decision(i, owner, f"{word} {n} of")
            case ir.Compare(left=left, right=right) if _is_ordered(left) and not (
                isinstance(left, ir.Const) and isinstance(right, ir.Const)
            ):
                self.boundaries[i] = BoundaryItem(
                    owner, _text(node), span.line, span.column, ["="], [None]
                )
            case ir.Between(operand=operand) if _is_ordered(operand):
                self.boundaries[i] = BoundaryItem(
                    owner, _text(node), span.line, span.column, ["low", "high"], [None, None]
                )
            case ir.CalendarCompare(amounts=amounts):
                labels = [f"+ {_text(a)}" for a in amounts]
                self.boundaries[i] = BoundaryItem(
                    owner, _text(node), span.line, span.column, labels, [None] * len(labels)
                )
        for child in program.children[i]:
            self._walk(child, owner)

    def _decision(self, i: int, owner: str, kind: str) -> DecisionItem:
        nodes = self.program.nodes
        operands = []
        for child in self.program.children[i]:
            span = nodes[child].source.span
            operands.append(OperandItem(_text(nodes[child]), span.line, span.column))
        span = nodes[i].source.span
        return DecisionItem(owner, kind, _text(nodes[i]), span.line, span.column, operands)


def _kleene(node: ir.Node, values: list[Any]) -> Any:
    """The value of a decision from its operands' values (True, False or U)."""
    if isinstance(node, ir.Logic):
        stop = node.op is not ast.LogicOp.AND  # and stops at False, or at True
        if any(v is stop for v in values):
            return stop
        return U if any(v is U for v in values) else not stop
    assert isinstance(node, ir.Count)
    true = sum(v is True for v in values)
    unknown = sum(v is U for v in values)
    if node.op is ast.CountOp.AT_LEAST:
        return True if true >= node.n else (False if true + unknown < node.n else U)
    return True if true + unknown <= node.n else (False if true > node.n else U)


def deciding_operands(node: ir.Node, value: Any, operands: list[Any]) -> list[int]:
    """Indexes of the operands that decide a decision's `value` (see the module docstring)."""
    if value is not True and value is not False:
        return []
    masked = node.op is ast.LogicOp.AND if isinstance(node, ir.Logic) else U
    filled = [masked if v is NOTRUN else v for v in operands]
    out = []
    for k, v in enumerate(filled):
        if v is not True and v is not False:
            continue
        flipped = [*filled[:k], not v, *filled[k + 1 :]]
        other = _kleene(node, flipped)
        if other is not U and other is not value:
            out.append(k)
    return out


def _equal(a: Any, b: Any) -> bool:
    if a is U or b is U or a is NOTRUN or b is NOTRUN or a is NEVER or b is NEVER:
        return False
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        return False
    if isinstance(a, bool) or isinstance(b, bool) or not (math.isfinite(a) and math.isfinite(b)):
        return False
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


class _Scan:
    """Marks the items one case reached, from its record."""

    def __init__(self, static: _Static, case: str, F: list[Any]) -> None:
        self.static = static
        self.program = static.program
        self.case = case
        self.F = F

    def scan(self, i: int, V: list[Any], seen: set[int]) -> None:
        if i in seen:
            return
        seen.add(i)
        program = self.program
        node = program.nodes[i]
        if V[i] is NOTRUN:
            return
        decision = self.static.decisions.get(i)
        if decision is not None:
            operands = [V[c] for c in program.children[i]]
            for k in deciding_operands(node, V[i], operands):
                item = decision.operands[k]
                if operands[k] is True and item.decided_true is None:
                    item.decided_true = self.case
                elif operands[k] is False and item.decided_false is None:
                    item.decided_false = self.case
        boundary = self.static.boundaries.get(i)
        if boundary is not None:
            self._boundary(i, node, boundary, V)
        if isinstance(node, ir.Quantified | ir.Filter | ir.Consecutive):
            self._per_observation(i, V)
            return
        for child in program.children[i]:
            self.scan(child, V, seen)

    def _boundary(self, i: int, node: ir.Node, item: BoundaryItem, V: list[Any]) -> None:
        kids = self.program.children[i]
        hits: list[bool]
        match node:
            case ir.Compare():
                hits = [_equal(V[kids[0]], V[kids[1]])]
            case ir.Between():
                x, low, high = (V[k] for k in kids)
                hits = [_equal(x, low), _equal(x, high)]
            case ir.CalendarCompare():
                hits = self._calendar_hits(node, kids, V)
            case _:  # pragma: no cover - only those nodes are boundary items
                hits = []
        for k, hit in enumerate(hits):
            if hit and item.reached[k] is None:
                item.reached[k] = self.case

    def _calendar_hits(
        self, node: ir.CalendarCompare, kids: tuple[int, ...], V: list[Any]
    ) -> list[bool]:
        since = kids[0]
        x = V[self.program.children[since][0]]
        as_of = self.F[-1]
        if x is U or x is NOTRUN or x is NEVER or as_of is U:
            return [False] * len(node.durations)
        operand = node.since.operand if isinstance(node.since, ir.TimeSince) else None
        date = operand is not None and isinstance(operand.type, TimeT) and not operand.type.has_time
        hits = []
        for duration in node.durations:
            moment = as_of - as_of % DAY if date and not duration.has_time else as_of
            hits.append(_equal(moment, shift(x, duration)))
        return hits

    def _per_observation(self, i: int, V: list[Any]) -> None:
        """Scan a condition run once per observation: re-run it on each observation."""
        program = self.program
        window_slot, condition_slot = program.children[i][:2]
        self.scan(window_slot, V, set())
        window = V[window_slot]
        detail = program.details.get(i)
        condition = program.fns[condition_slot]
        if window is U or window is NOTRUN or detail is None or condition is None:
            return
        element = detail - 1  # the slot of the observation under test, made just before
        for x in window[1]:
            W = V.copy()
            W[element] = x
            condition(self.F, W)
            self.scan(condition_slot, W, set())


def coverage(program: Program, results: Iterable[CaseResult], protocol_name: str) -> Coverage:
    """The coverage of `program`'s protocol by the cases' results (refused cases add nothing)."""
    static = _Static(program)
    criteria = [OutcomeItem(c.id, c.kind.value) for c in program.checked.criteria]
    count = 0
    for result in results:
        count += 1
        record = result.record
        if record is None:
            continue
        name = result.case.name
        for item, c in zip(criteria, record.result.criteria, strict=True):
            item.reached[c.outcome.value].append(name)
        scan = _Scan(static, name, record.facts)
        seen: set[int] = set()
        for root, _ in program.roots:
            scan.scan(root, record.values, seen)
    return Coverage(
        protocol_name,
        count,
        criteria,
        list(static.decisions.values()),
        list(static.boundaries.values()),
    )


# --------------------------------------------------------------------------- text


def coverage_text(cov: Coverage, full: bool = True) -> str:
    """The report for a terminal: totals, then per criterion, decision and comparison."""
    from ..render.safe import printable

    def line(name: str, t: Totals) -> str:
        return f"  {name:<11}{t.covered:>4}/{t.total:<4} {t.percent:6.1f}%"

    out = [
        f"coverage of {printable(cov.protocol)} by {cov.cases} case"
        f"{'' if cov.cases == 1 else 's'}: {cov.percent:.1f}%",
        line("outcomes", cov.outcome_totals),
        line("operands", cov.operand_totals),
        line("boundaries", cov.boundary_totals),
        "",
        "outcomes (cases reaching each):",
        f"  {'criterion':<10} {'met':>5} {'not_met':>8} {'unknown':>8}",
    ]
    for c in cov.criteria:
        cells = [str(len(c.reached[o])) if c.reached[o] else "-" for o in OUTCOMES]
        mark = "" if all(c.reached[o] for o in OUTCOMES) else "   ← missing"
        out.append(f"  {c.id:<10} {cells[0]:>5} {cells[1]:>8} {cells[2]:>8}{mark}")
    out += ["", "operands (seen deciding while true / while false):"]
    for d in cov.decisions:
        if not full and all(o.covered for o in d.operands):
            continue
        out.append(f"  {d.owner}  {d.kind}  (line {d.line}): {printable(d.text, newlines=False)}")
        for o in d.operands:
            t = "✓" if o.decided_true else "✗"
            f = "✓" if o.decided_false else "✗"
            out.append(f"    {t} true  {f} false   {printable(o.text, newlines=False)}")
    out += ["", "boundaries (a case exactly on the threshold):"]
    for b in cov.boundaries:
        if not full and all(r is not None for r in b.reached):
            continue
        marks = "  ".join(
            f"{'✓' if r else '✗'} {label}" for label, r in zip(b.labels, b.reached, strict=True)
        )
        out.append(f"  {b.owner}  (line {b.line}): {printable(b.text, newlines=False)}   {marks}")
    return "\n".join(out)
