"""`protocol-rules lint`: what no test case shows, proved by the Z3 solver (docs/lint.md).

Each check is a question to the solver about every patient the facts' declarations allow,
asked of the abstract encoding (`smt.encode`), whose "no such patient" is a proof. Each
finding carries a witness: a patient record found with the explicit encoding and evaluated
by the interpreter, which must show what the finding says (`confirmed`); a witness the
interpreter does not confirm is reported as such, never presented as evidence.

- PR601 a criterion no patient meets; PR602 one no patient fails (met whenever decided);
- PR603 an inclusion whose patients all meet an exclusion (or leave it open);
- PR607 two inclusions no patient meets together; PR608 two exclusions no patient fails both;
- PR604 no patient can be eligible (when no finding above already says so);
- PR605 an operand of `and`, `or` or `at least`/`at most` that never changes the value of its
  criterion (or define): replaced by its neutral value (`true` in an `and`, `false` in an
  `or` or a count), nothing changes for any patient;
- PR606 a comparison of a fact (or an aggregate of a series) with a constant that has the same
  result over the fact's whole declared `range`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import attrs
from attrs import frozen

from .. import ast
from ..check import ir
from ..check.model import CheckedProtocol, CriterionInfo
from ..check.types import NumT, QtyT
from ..diagnostics import Diagnostic, PatientDataError, warning
from ..source import Span
from .allow import Allow, read_allows, unused

if TYPE_CHECKING:
    from ..protocol import Protocol
    from .smt import Encoder, Tri

JSON_VERSION = "1.0"


@frozen
class Finding:
    """One lint finding: a diagnostic (code, message, span, help), the criteria it is about,
    and a witness patient with what it shows when evaluated.

    `witness_status` is ``confirmed`` (the interpreter shows it), ``unconfirmed`` (the
    interpreter does not: the witness is shown for inspection only) or ``none``.
    """

    diagnostic: Diagnostic
    criteria: tuple[str, ...]
    witness: dict[str, Any] | None
    witness_status: str
    shows: str
    silenced: str | None = None

    @property
    def code(self) -> str:
        return self.diagnostic.code


@frozen
class LintReport:
    """Everything `lint` found in one protocol."""

    protocol: str
    findings: tuple[Finding, ...]  # in file order, not silenced
    silenced: tuple[Finding, ...]
    problems: tuple[Diagnostic, ...]  # malformed or unused allow comments (PR620, PR621)
    undecided: tuple[str, ...]  # questions the solver could not answer in time
    abstracted: tuple[str, ...]  # constructs the proofs treat as free values
    seconds: float

    @property
    def clean(self) -> bool:
        return not self.findings and not self.problems


# --------------------------------------------------------------------------- the linter


class _Linter:
    def __init__(self, protocol: Protocol, as_of: float | None, timeout_ms: int) -> None:
        from .smt import Encoder

        self.protocol = protocol
        self.checked: CheckedProtocol = protocol.checked
        self.timeout = timeout_ms
        self.proofs = Encoder()
        self.models = Encoder(explicit=True, as_of=as_of)
        self.findings: list[Finding] = []
        self.undecided: list[str] = []
        self.a: dict[str, Tri] = {}
        self.x: dict[str, Tri] = {}
        self.criteria = list(self.checked.criteria)
        for c in self.criteria:
            self.a[c.id] = self.proofs.criterion(self.checked, c)
            self.x[c.id] = self.models.criterion(self.checked, c)

    # ------------------------------------------------------------------ solver helpers

    def never(self, formulas: list[Any], question: str) -> bool:
        """True when no patient satisfies `formulas` (a proof); False when one may."""
        from .smt import UNKNOWN, solve

        status, _ = solve(self.proofs, formulas, self.timeout)
        if status == UNKNOWN:
            self.undecided.append(question)
        return status == "unsat"

    def witness(
        self,
        attempts: list[list[Any]],
        confirm: Callable[[dict[str, Any]], bool],
        facts: Iterable[str],
    ) -> tuple[dict[str, Any] | None, str]:
        """The first confirmed witness of the attempts (formulas of the explicit encoding)."""
        from .smt import find_witness

        names = list(facts)
        fallback: tuple[dict[str, Any] | None, str] = (None, "none")
        for formulas in attempts:
            record, status = find_witness(
                self.models, formulas, confirm, facts=names, timeout_ms=self.timeout
            )
            if status == "confirmed":
                return record, status
            if record is not None and fallback[0] is None:
                fallback = (record, status)
        empty = {"as_of": self.as_of_text()}
        if fallback[0] is None and self._confirms(confirm, empty):
            return empty, "confirmed"
        return fallback

    def as_of_text(self) -> str:
        from datetime import UTC, datetime

        assert self.models.as_of_value is not None
        moment = datetime.fromtimestamp(self.models.as_of_value, UTC)
        return moment.isoformat().replace("+00:00", "Z")

    @staticmethod
    def _confirms(confirm: Callable[[dict[str, Any]], bool], record: dict[str, Any]) -> bool:
        try:
            return confirm(record)
        except PatientDataError:
            return False

    def outcomes(self, record: dict[str, Any]) -> dict[str, str]:
        result = self.protocol.evaluate(record)
        out = {c.id: c.outcome.value for c in result.criteria}
        out["status"] = result.status.value
        return out

    def confirm_outcomes(self, wanted: dict[str, Iterable[str]]) -> Callable[[dict], bool]:
        def confirm(record: dict[str, Any]) -> bool:
            try:
                got = self.outcomes(record)
            except PatientDataError:
                return False
            return all(got[k] in v for k, v in wanted.items())

        return confirm

    def add(
        self,
        code: str,
        message: str,
        span: Span | None,
        help: str,
        criteria: Iterable[str],
        witness: tuple[dict[str, Any] | None, str],
        shows: str,
    ) -> None:
        record, status = witness
        diagnostic = warning(code, message, span, help=help)
        self.findings.append(Finding(diagnostic, tuple(criteria), record, status, shows))

    # ------------------------------------------------------------------ checks

    def run(self) -> None:
        never_met, never_failed = self.constant_criteria()
        self.conflicts(never_met, never_failed)
        self.no_eligible(never_met, never_failed)
        self.redundant(never_met | never_failed)
        self.ranges()

    def constant_criteria(self) -> tuple[set[str], set[str]]:
        never_met, never_failed = set(), set()
        for c in self.criteria:
            a, x = self.a[c.id], self.x[c.id]
            span = _expr_span(c)
            if self.never([a.t], f"can {c.id} be met?"):
                never_met.add(c.id)
                self.add(
                    "PR601",
                    f"{c.kind.value} {c.id} can never be met",
                    span,
                    _help_never_met(c),
                    [c.id],
                    self.witness(
                        [[x.f], [x.unknown]],
                        self.confirm_outcomes({c.id: ("not_met", "unknown")}),
                        c.facts,
                    ),
                    f"{c.id} is not met",
                )
            if self.never([a.f], f"can {c.id} be not met?"):
                never_failed.add(c.id)
                self.add(
                    "PR602",
                    f"{c.kind.value} {c.id} can never be not met: it is met whenever it is decided",
                    span,
                    _help_never_failed(c),
                    [c.id],
                    self.witness(
                        [[x.t], [x.unknown]],
                        self.confirm_outcomes({c.id: ("met", "unknown")}),
                        c.facts,
                    ),
                    f"{c.id} is met",
                )
        return never_met, never_failed

    def _passes(self, c: CriterionInfo, encoding: dict[str, Tri]) -> Any:
        """The formula "c does not exclude": an inclusion met, an exclusion not met."""
        value = encoding[c.id]
        return value.t if c.kind is ast.CriterionKind.INCLUSION else value.f

    def _blocked(self, never_met: set[str], never_failed: set[str]) -> set[str]:
        """Criteria that exclude every patient on their own (already reported)."""
        out = set()
        for c in self.criteria:
            inclusion = c.kind is ast.CriterionKind.INCLUSION
            if (inclusion and c.id in never_met) or (not inclusion and c.id in never_failed):
                out.add(c.id)
        return out

    def conflicts(self, never_met: set[str], never_failed: set[str]) -> None:
        blocked = self._blocked(never_met, never_failed)
        timed = {c.id for c in self.criteria if _reads_time(c.body, self.checked)}
        for i, first in enumerate(self.criteria):
            for second in self.criteria[i + 1 :]:
                if first.id in blocked or second.id in blocked:
                    continue
                shared = set(first.facts) & set(second.facts)
                if not shared and not (first.id in timed and second.id in timed):
                    continue
                self.conflict(first, second)

    def conflict(self, first: CriterionInfo, second: CriterionInfo) -> None:
        inc = ast.CriterionKind.INCLUSION
        a, b = (first, second) if first.kind is inc or second.kind is not inc else (second, first)
        both = [self._passes(a, self.a), self._passes(b, self.a)]
        if not self.never(both, f"can {a.id} and {b.id} both pass?"):
            return
        xa, xb = self.x[a.id], self.x[b.id]
        facts = dict.fromkeys([*a.facts, *b.facts])
        span = b.decl.id_span
        if a.kind is inc and b.kind is inc:
            self.add(
                "PR607",
                f"no patient can meet both inclusion {a.id} and inclusion {b.id}",
                span,
                f"the two contradict each other: check the thresholds of {a.id} and {b.id}",
                [a.id, b.id],
                self.witness(
                    [[xa.t, xb.f], [xa.t]],
                    self.confirm_outcomes({a.id: ("met",), b.id: ("not_met", "unknown")}),
                    facts,
                ),
                f"{a.id} is met and {b.id} is not",
            )
        elif a.kind is inc:
            self.add(
                "PR603",
                f"inclusion {a.id} implies exclusion {b.id}: no patient who meets {a.id} can "
                f"have {b.id} not met",
                span,
                f"every patient {a.id} lets in, {b.id} excludes (or leaves open): check the "
                "thresholds of both",
                [a.id, b.id],
                self.witness(
                    [[xa.t, xb.t], [xa.t]],
                    self.confirm_outcomes({a.id: ("met",), b.id: ("met", "unknown")}),
                    facts,
                ),
                f"{a.id} is met and so is {b.id}",
            )
        else:
            self.add(
                "PR608",
                f"every patient meets exclusion {a.id} or exclusion {b.id}: no patient can "
                "have both not met",
                span,
                f"together {a.id} and {b.id} exclude everyone: check their thresholds",
                [a.id, b.id],
                self.witness(
                    [[xa.f, xb.t], [xa.f]],
                    self.confirm_outcomes({a.id: ("not_met",), b.id: ("met", "unknown")}),
                    facts,
                ),
                f"{a.id} is not met and {b.id} is met",
            )

    def no_eligible(self, never_met: set[str], never_failed: set[str]) -> None:
        explained = self._blocked(never_met, never_failed) or any(
            f.code in ("PR603", "PR607", "PR608") for f in self.findings
        )
        if explained or not self.criteria:
            return
        passes = [self._passes(c, self.a) for c in self.criteria]
        if not self.never(passes, "can a patient be eligible?"):
            return
        inclusions = [c for c in self.criteria if c.kind is ast.CriterionKind.INCLUSION]
        facts = dict.fromkeys(f for c in inclusions for f in c.facts)
        header = self.checked.syntax.header
        self.add(
            "PR604",
            "no patient can be eligible under this protocol",
            header.span if header is not None else None,
            "the criteria together exclude everyone; look for thresholds that contradict "
            "each other across three or more criteria",
            [c.id for c in self.criteria],
            self.witness(
                [[self.x[c.id].t for c in inclusions]],
                self.confirm_outcomes({"status": ("ineligible", "indeterminate")}),
                facts,
            ),
            "the patient is not eligible",
        )

    # ------------------------------------------------------------------ redundancy

    def redundant(self, constant: set[str]) -> None:
        for c in self.criteria:
            if c.id in constant:
                continue
            for node, k in _operands(c.body):
                self.redundant_operand(c, None, node, k)
        used = _defines_used(self.checked)
        for d in self.checked.defines:
            if d.origin is not None or d.name not in used:
                continue
            for node, k in _operands(d.body):
                self.redundant_operand(None, d, node, k)

    def redundant_operand(self, c: CriterionInfo | None, d: Any, node: ir.Node, k: int) -> None:

        operand = _kids(node)[k]
        neutral = _neutral(node)
        replacement = ir.Const(neutral, operand.type, source=operand.source)
        body = c.body if c is not None else d.body
        changed = _replace(body, node, _with_operand(node, k, replacement))
        owner = c.id if c is not None else f"define {d.name}"
        self.proofs.use(self.checked)
        before, after = self.proofs.encode(body), self.proofs.encode(changed)
        if not self.never([_differs(before, after)], f"is an operand of {owner} redundant?"):
            return
        modified = _modified(self.checked, c, d, changed)
        models: Encoder = self.models
        models.use(self.checked)
        x_operand = models.encode(operand)
        decisive = x_operand.t if neutral is False else x_operand.f
        ids = [c.id] if c is not None else [i.id for i in self.criteria if d.name in _reads(i)]
        facts = dict.fromkeys(f for i in self.criteria if i.id in ids for f in i.facts)
        confirm = self._confirm_same(modified, ids, operand, not neutral)
        word = {"and": "true", "or": "false"}.get(_kind_word(node), "false")
        text = " ".join(operand.source.span.text.split())
        self.add(
            "PR605",
            f"`{_short(text)}` never changes the value of {owner}",
            operand.source.span,
            f"replaced by `{word}` it gives the same result for every patient: remove it, or "
            "check whether another operand was meant",
            ids,
            self.witness([[decisive, *(self.x[i].known for i in ids)], [decisive]], confirm, facts),
            f"`{_short(text)}` is {str(not neutral).lower()} and {', '.join(ids)} "
            f"come{'s' if len(ids) == 1 else ''} out the same without it",
        )

    def _confirm_same(
        self, modified: CheckedProtocol, ids: list[str], operand: ir.Node, value: bool
    ) -> Callable[[dict], bool]:
        from ..evaluate import Program
        from .record import evaluate_recorded

        program = Program(modified)

        def confirm(record: dict[str, Any]) -> bool:
            try:
                rec = evaluate_recorded(self.protocol, record)
                other = program.run(record)
            except PatientDataError:
                return False
            before = {c.id: c.outcome for c in rec.result.criteria}
            after = {c.id: c.outcome for c in other.criteria}
            if any(before[i] != after[i] for i in ids):
                return False
            return value in _operand_values(rec, operand)

        return confirm

    # ------------------------------------------------------------------ ranges

    def ranges(self) -> None:
        seen: set[int] = set()
        bodies = [(c.id, c.body) for c in self.criteria]
        used = _defines_used(self.checked)
        bodies += [
            (f"define {d.name}", d.body)
            for d in self.checked.defines
            if d.origin is None and d.name in used
        ]
        for owner, body in bodies:
            for node in _walk(body):
                if id(node) in seen or not isinstance(node, ir.Compare | ir.Between):
                    continue
                seen.add(id(node))
                fixed = _decided_by_range(node, self.checked)
                if fixed is not None:
                    self.range_finding(owner, node, *fixed)

    def range_finding(
        self,
        owner: str,
        node: ir.Node,
        value: bool,
        read: ir.Node,
        bound: float,
        name: str,
        low: float,
        high: float,
    ) -> None:
        from .smt import real

        models = self.models
        models.use(self.checked)
        x = models.encode(read)
        text = " ".join(node.source.span.text.split())
        ids = (
            [owner]
            if not owner.startswith("define ")
            else [c.id for c in self.criteria if owner[7:] in _reads(c)]
        )
        facts = dict.fromkeys(f for c in self.criteria if c.id in ids for f in c.facts)
        facts.setdefault(name, None)
        confirm = self._confirm_node(node, value)
        unit = _unit(read)
        self.add(
            "PR606",
            f"`{_short(text)}` is {'always' if value else 'never'} true: `{name}` is declared "
            f"in the range {low:g} to {high:g}{unit}",
            node.source.span,
            "check the threshold and its unit against the fact's declared range",
            ids,
            self.witness([[x.known, x.v == real(bound)]], confirm, facts),
            f"with `{name}` at {bound:g}{unit}, `{_short(text)}` is {str(value).lower()}",
        )

    def _confirm_node(self, node: ir.Node, value: bool) -> Callable[[dict], bool]:
        from .record import evaluate_recorded

        def confirm(record: dict[str, Any]) -> bool:
            try:
                rec = evaluate_recorded(self.protocol, record)
            except PatientDataError:
                return False
            return value in _operand_values(rec, node)

        return confirm


# --------------------------------------------------------------------------- IR helpers


def _kids(node: ir.Node) -> tuple[ir.Node, ...]:
    if isinstance(node, ir.Logic):
        return node.operands
    if isinstance(node, ir.Count):
        return node.conditions
    return ()


def _kind_word(node: ir.Node) -> str:
    return node.op.value if isinstance(node, ir.Logic) else "count"


def _neutral(node: ir.Node) -> bool:
    return isinstance(node, ir.Logic) and node.op is ast.LogicOp.AND


def _with_operand(node: ir.Node, k: int, new: ir.Node) -> ir.Node:
    kids = list(_kids(node))
    kids[k] = new
    if isinstance(node, ir.Logic):
        return attrs.evolve(node, operands=tuple(kids))
    return attrs.evolve(node, conditions=tuple(kids))


def _operands(body: ir.Node) -> Iterator[tuple[ir.Node, int]]:
    """(decision, operand index) for every `and`/`or`/count operand outside `where`, `any`,
    `all` conditions and function bodies."""
    for node in _walk(body):
        for k in range(len(_kids(node))):
            yield node, k


def _walk(node: ir.Node) -> Iterator[ir.Node]:
    """Nodes of an expression, outside per-observation conditions and function bodies."""
    yield node
    match node:
        case ir.Quantified(window=w) | ir.Filter(window=w) | ir.Consecutive(window=w):
            yield from _walk(w)
            return
        case ir.FunctionCall(args=args):
            for a in args:
                yield from _walk(a)
            return
    try:
        children = ir.children(node)
    except AssertionError:  # a node kind this version does not know
        return
    for child in children:
        yield from _walk(child)


def _replace(node: Any, target: ir.Node, new: ir.Node) -> Any:
    """`node` with `target` (by identity) replaced by `new`, rebuilding the path to it."""
    if node is target:
        return new
    if isinstance(node, tuple):
        items = tuple(_replace(x, target, new) for x in node)
        return node if all(a is b for a, b in zip(items, node, strict=True)) else items
    if not attrs.has(type(node)) or not hasattr(node, "type"):
        return node
    changes = {}
    for f in attrs.fields(type(node)):
        if f.name in ("source", "type"):
            continue
        value = getattr(node, f.name)
        replaced = _replace(value, target, new)
        if replaced is not value:
            changes[f.name] = replaced
    return attrs.evolve(node, **changes) if changes else node


def _modified(checked: CheckedProtocol, c: CriterionInfo | None, d: Any, body: ir.Node) -> Any:
    if c is not None:
        criteria = tuple(attrs.evolve(i, body=body) if i is c else i for i in checked.criteria)
        return attrs.evolve(checked, criteria=criteria)
    defines = tuple(attrs.evolve(i, body=body) if i is d else i for i in checked.defines)
    return attrs.evolve(checked, defines=defines)


def _differs(x: Any, y: Any) -> Any:
    import z3

    from .smt import Tri

    if isinstance(x, Tri):
        return z3.Not(x.equals(y))
    return z3.Or(x.known != y.known, z3.And(x.known, x.v != y.v))


def _operand_values(record: Any, node: ir.Node) -> list[Any]:
    """The values `node` takes for a recorded patient, computed by its own closure (so an
    operand an `and` or `or` skipped is computed all the same)."""
    program = record.program
    out = []
    for i, n in enumerate(program.nodes):
        fn = program.fns[i]
        if n is node and fn is not None:
            out.append(fn(record.facts, list(record.values)))
    return out


def _defines_used(checked: CheckedProtocol) -> set[str]:
    out: set[str] = set()
    for c in checked.criteria:
        out |= _reads(c)
    return out


def _reads(c: CriterionInfo) -> set[str]:
    found = set()
    for node in _walk(c.body):
        if isinstance(node, ir.DefineRef):
            found.add(node.name)
    return found


def _reads_time(node: ir.Node, checked: CheckedProtocol) -> bool:
    bodies = {d.name: d.body for d in checked.defines}
    stack, seen = [node], set()
    while stack:
        n = stack.pop()
        if isinstance(n, ir.AsOf | ir.TimeSince | ir.Window | ir.CalendarCompare):
            return True
        if isinstance(n, ir.DefineRef) and n.name not in seen:
            seen.add(n.name)
            if n.name in bodies:
                stack.append(bodies[n.name])
        try:
            stack.extend(ir.children(n))
        except AssertionError:
            continue
    return False


def _ranged(node: ir.Node, checked: CheckedProtocol) -> tuple[float, float, str, bool] | None:
    """(low, high, fact, integer) of a read whose values the declared range bounds."""
    factor, offset = 1.0, 0.0
    if isinstance(node, ir.Convert):
        factor, offset = node.conversion.factor, node.conversion.offset
        node = node.operand
    if isinstance(node, ir.Aggregate) and node.function in (
        "max",
        "min",
        "latest",
        "earliest",
        "mean",
    ):
        window = node.window
        while isinstance(window, ir.Filter):
            window = window.window
        node = window.series if isinstance(window, ir.Window) else window
    if not isinstance(node, ir.FactRef):
        return None
    info = next((f for f in checked.facts if f.name == node.name), None)
    if info is None or info.low is None or info.high is None:
        return None
    low, high = info.low * factor + offset, info.high * factor + offset
    if low > high:
        low, high = high, low
    integer = isinstance(info.type, NumT) and info.type.integer and factor == 1.0
    return low, high, node.name, integer


def _decided_by_range(node: ir.Node, checked: CheckedProtocol) -> Any:
    """(value, read, bound, fact, low, high) when the range alone decides the comparison."""
    import math

    if isinstance(node, ir.Between):
        read, consts = node.operand, (node.low, node.high)
        ranged = _ranged(read, checked)
        if ranged is None or not all(_number(c) for c in consts):
            return None
        low, high, name, integer = ranged
        a, b = (float(c.value) for c in consts)  # type: ignore[attr-defined]
        if a <= low and high <= b:
            return True, read, low, name, low, high
        if b < low or a > high:
            return False, read, low if b < low else high, name, low, high
        return None
    if not isinstance(node, ir.Compare):
        return None
    op, read, const = node.op, node.left, node.right
    if _number(read) and not _number(const):
        op, read, const = _FLIP.get(op, op), const, read
    ranged = _ranged(read, checked)
    if ranged is None or not _number(const):
        return None
    low, high, name, integer = ranged
    if integer:
        low, high = math.ceil(low), math.floor(high)
    c = float(const.value)  # type: ignore[attr-defined]
    test = _TESTS[op]
    at_low, at_high = test(low, c), test(high, c)
    if op in (ast.CompareOp.EQ, ast.CompareOp.NE):
        if low <= c <= high and low != high:
            return None
        value = at_low
    elif at_low != at_high:
        return None
    else:
        value = at_low
    bound = low if abs(low - c) <= abs(high - c) else high
    return value, read, bound, name, low, high


def _number(node: ir.Node) -> bool:
    return (
        isinstance(node, ir.Const)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    )


_TESTS: dict[ast.CompareOp, Callable[[float, float], bool]] = {
    ast.CompareOp.LT: lambda a, b: a < b,
    ast.CompareOp.LE: lambda a, b: a <= b,
    ast.CompareOp.GT: lambda a, b: a > b,
    ast.CompareOp.GE: lambda a, b: a >= b,
    ast.CompareOp.EQ: lambda a, b: a == b,
    ast.CompareOp.NE: lambda a, b: a != b,
}
_FLIP = {
    ast.CompareOp.LT: ast.CompareOp.GT,
    ast.CompareOp.LE: ast.CompareOp.GE,
    ast.CompareOp.GT: ast.CompareOp.LT,
    ast.CompareOp.GE: ast.CompareOp.LE,
}


def _unit(node: ir.Node) -> str:
    t = node.type
    if isinstance(t, QtyT) and t.unit != "1":
        return f" '{t.unit}'"
    return ""


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _expr_span(c: CriterionInfo) -> Span:
    expr = c.decl.expr
    return expr.span if expr.span is not None else c.decl.id_span


def _help_never_met(c: CriterionInfo) -> str:
    if c.kind is ast.CriterionKind.INCLUSION:
        return "no patient can be eligible while it stays: check its thresholds and units"
    return "it never excludes anyone: check its thresholds and units, or remove it"


def _help_never_failed(c: CriterionInfo) -> str:
    if c.kind is ast.CriterionKind.INCLUSION:
        return "it never excludes anyone (only leaves some open): check its thresholds"
    return "it excludes every patient it decides: check its thresholds and units"


# --------------------------------------------------------------------------- entry point


def lint(protocol: Protocol, *, as_of: float | None = None, timeout_ms: int = 10000) -> LintReport:
    """Lint a loaded protocol. Needs the ``[lint]`` extra (z3-solver)."""
    start = time.perf_counter()
    linter = _Linter(protocol, as_of, timeout_ms)
    linter.run()
    findings = sorted(linter.findings, key=_order)
    items = _item_spans(protocol.checked)
    allows, problems = read_allows(protocol.checked.source, items)
    kept, silenced = [], []
    for f in findings:
        reason = _silencing(f, allows, protocol.checked)
        if reason is None:
            kept.append(f)
        else:
            silenced.append(attrs.evolve(f, silenced=reason))
    problems += unused(allows)
    abstracted = {**linter.proofs.abstracted, **linter.models.abstracted}
    return LintReport(
        protocol.source_name,
        tuple(kept),
        tuple(silenced),
        tuple(problems),
        tuple(linter.undecided),
        tuple(abstracted),
        time.perf_counter() - start,
    )


def _order(f: Finding) -> tuple[int, str]:
    span = f.diagnostic.span
    return (span.start if span is not None else -1, f.code)


def _item_spans(checked: CheckedProtocol) -> list[Span]:
    syntax = checked.syntax
    spans = [syntax.header.span] if syntax.header is not None else []
    spans += [item.span for item in syntax.items if item.span is not None]
    return sorted(spans, key=lambda s: s.start)


def _silencing(f: Finding, allows: list[Allow], checked: CheckedProtocol) -> str | None:
    """The reason of the allow comment that silences `f`, if any (and marks it used)."""
    decls = {c.id: c.decl.span for c in checked.criteria}
    scopes = {decls[i].start for i in f.criteria if i in decls}
    span = f.diagnostic.span
    for a in allows:
        if f.code not in a.codes or a.scope is False:
            continue
        if a.scope is None and f.code == "PR604":
            a.used = True
            return a.reason
        if isinstance(a.scope, Span) and (
            a.scope.start in scopes
            or (span is not None and a.scope.start <= span.start < a.scope.end)
        ):
            a.used = True
            return a.reason
    return None


# --------------------------------------------------------------------------- rendering


def _witness_note(f: Finding) -> str:
    import json

    if f.witness is None:
        return "witness: none found (the finding is a proof; no example patient shows it)"
    shown = json.dumps(f.witness, ensure_ascii=False)
    how = {
        "confirmed": f"confirmed by eval: {f.shows}",
        "unconfirmed": "NOT confirmed by eval: inspect it before relying on it",
        "none": "the explicit search found none",
    }[f.witness_status]
    return f"witness ({how}): {shown}"


def lint_text(report: LintReport, color: bool = False) -> str:
    """The report for a terminal: each finding as a diagnostic with its witness, then a
    summary line."""
    from ..render.diagnostics import render_diagnostic
    from ..render.safe import printable

    blocks = []
    for f in report.findings:
        d = attrs.evolve(f.diagnostic, notes=(*f.diagnostic.notes, _witness_note(f)))
        blocks.append(printable(render_diagnostic(d, color)))
    blocks += [printable(render_diagnostic(d, color)) for d in report.problems]
    for f in report.silenced:
        where = f.diagnostic.span or report.protocol
        blocks.append(f"silenced {f.code} at {where}: {printable(f.silenced or '')}")
    if report.undecided:
        blocks.append("undecided (the solver gave up): " + "; ".join(report.undecided))
    n = len(report.findings) + len(report.problems)
    summary = f"{report.protocol}: {n} finding{'' if n == 1 else 's'}"
    if report.silenced:
        summary += f", {len(report.silenced)} silenced"
    if report.abstracted:
        summary += "\nabstracted (treated as free values): " + ", ".join(report.abstracted)
    if report.undecided:
        summary += (
            f"\nundecided ({len(report.undecided)} question(s) the solver could not answer "
            "in time; raise --timeout): " + "; ".join(printable(q) for q in report.undecided)
        )
    blocks.append(summary)
    return "\n\n".join(blocks)


def lint_dict(report: LintReport) -> dict[str, Any]:
    """The JSON shape of ``protocol-rules lint --format json`` (one protocol)."""

    def finding(f: Finding) -> dict[str, Any]:
        out = f.diagnostic.to_dict()
        out.pop("path", None)
        out.pop("label", None)
        out.update(
            criteria=list(f.criteria),
            witness=f.witness,
            witness_status=f.witness_status,
            shows=f.shows,
        )
        if f.silenced is not None:
            out["silenced"] = f.silenced
        return out

    return {
        "protocol": report.protocol,
        "clean": report.clean,
        "seconds": round(report.seconds, 3),
        "findings": [finding(f) for f in report.findings],
        "silenced": [finding(f) for f in report.silenced],
        "problems": [d.to_dict() for d in report.problems],
        "undecided": list(report.undecided),
        "abstracted": list(report.abstracted),
    }
