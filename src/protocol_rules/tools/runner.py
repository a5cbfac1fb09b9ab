"""The test runner: each case of a tests file through `Protocol.evaluate`, compared with what it
expects (docs/testing-rules.md).

A case passes when the status (or the patient-data error it expects) matches, every outcome it
lists matches, and its lists of missing facts and deciding criteria, when given, match as sets.
A failure is shown as a diff of outcomes, followed by the explanation of the criteria that
decided the verdict and of those that did not come out as expected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from attrs import frozen

from ..diagnostics import Diagnostic, PatientDataError
from ..render.safe import printable
from .record import Record, evaluate_recorded
from .testfile import _CASE_HEADER, TestCase, TestFile

if TYPE_CHECKING:
    from ..protocol import Protocol


@frozen
class Mismatch:
    """One thing a case expected that did not happen: `what` is ``status``, ``error``,
    ``missing``, ``deciding`` or a criterion id."""

    what: str
    expected: str
    got: str


@frozen
class CaseResult:
    """The result of one case: its record (None when the patient was refused) and mismatches."""

    case: TestCase
    record: Record | None
    refused: PatientDataError | None
    mismatches: tuple[Mismatch, ...]

    @property
    def passed(self) -> bool:
        return not self.mismatches


def run_case(protocol: Protocol, case: TestCase) -> CaseResult:
    """Evaluate one case and compare; never raises for bad patient data (that is a mismatch,
    unless the case expects it)."""
    try:
        record = evaluate_recorded(protocol, case.patient, case.as_of)
    except PatientDataError as exc:
        codes = [d.code for d in exc.diagnostics]
        if case.error is not None and case.error in codes:
            return CaseResult(case, None, exc, ())
        expected = f"error {case.error}" if case.error else (case.status or "")
        got = "refused: " + "; ".join(str(d) for d in exc.diagnostics)
        return CaseResult(case, None, exc, (Mismatch("status", expected, got),))
    return CaseResult(case, record, None, tuple(_compare(case, record)))


def _compare(case: TestCase, record: Record) -> Iterable[Mismatch]:
    result = record.result
    if case.error is not None:
        yield Mismatch("error", case.error, f"accepted ({result.status.value})")
        return
    if case.status is not None and result.status.value != case.status:
        yield Mismatch("status", case.status, result.status.value)
    outcomes = {c.id: c.outcome.value for c in result.criteria}
    for cid, expected in case.outcomes.items():
        if outcomes.get(cid) != expected:
            yield Mismatch(cid, expected, outcomes.get(cid, "absent"))
    if case.missing is not None:
        got = sorted(m.name for m in result.missing_facts)
        if sorted(set(case.missing)) != got:
            yield Mismatch("missing", _list(sorted(set(case.missing))), _list(got))
    if case.deciding is not None:
        got_deciding = sorted(c.id for c in result.deciding)
        if sorted(set(case.deciding)) != got_deciding:
            yield Mismatch("deciding", _list(sorted(set(case.deciding))), _list(got_deciding))


def _list(names: list[str]) -> str:
    return "[" + ", ".join(names) + "]"


def run_tests(protocol: Protocol, tests: TestFile) -> list[CaseResult]:
    """Every case of a tests file, in file order."""
    return [run_case(protocol, case) for case in tests.cases]


# --------------------------------------------------------------------------- rendering


def failure_text(result: CaseResult, where: str | None = None) -> str:
    """A failed case: what differs (status, outcomes, lists) and why, from the traces."""
    from ..render.text import trace_lines

    case = result.case
    where = where or str(case.span)
    lines = [f"FAIL {printable(case.name, newlines=False)}  ({where})"]
    if case.description:
        lines.append(f"  {printable(case.description, newlines=False)}")
    lists = [m for m in result.mismatches if m.what in ("status", "error", "missing", "deciding")]
    criteria = [m for m in result.mismatches if m not in lists]
    for m in lists:
        if m.what == "status" and result.refused is not None:
            lines.append(f"  status: expected {m.expected}, got the record refused:")
            lines += [f"    {_refusal(case, d)}" for d in result.refused.diagnostics]
            continue
        lines.append(f"  {m.what}: expected {m.expected}, got {printable(m.got)}")
    if criteria:
        width = max(len("criterion"), *(len(m.what) for m in criteria))
        lines.append(f"  {'criterion':<{width}}  {'expected':<9} got")
        lines += [f"  {m.what:<{width}}  {m.expected:<9} {m.got}" for m in criteria]
    record = result.record
    if record is None:
        return "\n".join(lines)
    res = record.result
    shown = {c.id for c in res.deciding} | {m.what for m in criteria}
    explained = [c for c in res.criteria if c.id in shown]
    if explained:
        lines.append(f"  why ({res.status.value}):")
    for c in explained:
        mark = "  ← deciding" if c.deciding else ""
        lines.append(f"    {c.id} {c.outcome.value}: {printable(c.text, newlines=False)}{mark}")
        lines += ["      " + printable(line) for line in trace_lines(c.trace)]
    if res.missing_facts:
        names = ", ".join(m.name for m in res.missing_facts)
        lines.append(f"  missing facts: {names}")
    return "\n".join(lines)


def _refusal(case: TestCase, d: Diagnostic) -> str:
    """A patient-data diagnostic of a case, with where the tests file writes that fact."""
    text = printable(f"{d.location()}: {d.severity.value}[{d.code}]: {d.message}")
    written = _written_at(case, d.path)
    return f"{text}  ({written})" if written else text


def _written_at(case: TestCase, path: str | None) -> str | None:
    """``file:line:col`` of the key a JSON path starts with, in the case's own patient table
    (None for a patient from a file or from `base`, or a key not found)."""
    found = re.match(r"\$\.([A-Za-z_][A-Za-z0-9_]*)", path or "")
    if found is None or case.patient_file is not None:
        return None
    source = case.span.source
    following = _CASE_HEADER.search(source.text, case.span.end)
    end = following.start() if following else len(source.text)
    key = re.compile(rf"(?m)(?:^[ \t]*|[{{,][ \t]*){re.escape(found[1])}[ \t]*=")
    at = key.search(source.text, case.span.start, end)
    if at is None:
        return None
    start = at.end() - len(at[0].lstrip("{, \t"))
    return str(source.span(start, start))


def summary_text(results: list[CaseResult]) -> str:
    failed = sum(not r.passed for r in results)
    passed = len(results) - failed
    return f"{passed} passed, {failed} failed"
