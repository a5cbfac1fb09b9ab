"""A result as a Markdown report: a summary table, then each criterion's trace."""

from __future__ import annotations

from ..result import Outcome, Result, Status
from .text import trace_lines

_ICON = {Outcome.MET: "met", Outcome.NOT_MET: "not met", Outcome.UNKNOWN: "**unknown**"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(result: Result, brief: bool = False) -> str:
    """The report: verdict, criteria table, missing facts, and a trace per criterion.

    `brief` keeps the traces of the deciding criteria only (the table still lists them all).
    """
    title = f" — {result.protocol_title}" if result.protocol_title else ""
    lines = [f"# {result.protocol_id}{title}", ""]
    as_of = result.as_of.isoformat().replace("+00:00", "Z") if result.as_of else "not given"
    lines += [f"**Status: {result.status.value}** (as of {as_of})", ""]
    deciding = [c.id for c in result.deciding]
    if result.status is Status.INELIGIBLE:
        lines += [f"Excluded by: {', '.join(deciding)}", ""]
    elif result.status is Status.INDETERMINATE:
        lines += [f"Still open: {', '.join(deciding)}", ""]
    lines += ["| id | kind | outcome | criterion |", "| --- | --- | --- | --- |"]
    for c in result.criteria:
        outcome = _ICON[c.outcome] + (" ← deciding" if c.deciding else "")
        lines.append(f"| {c.id} | {c.kind} | {outcome} | {_cell(c.text)} |")
    if result.missing_facts:
        lines += ["", "## Missing facts", ""]
        for m in result.missing_facts:
            what = f" — {m.description}" if m.description else ""
            lines.append(f"- `{m.name}`{what}: {m.reason}; feeds {', '.join(m.criteria)}")
    lines += ["", "## Criteria", ""]
    for c in result.criteria:
        if brief and not c.deciding:
            continue
        lines += [f"### {c.id} ({c.kind}): {_ICON[c.outcome]}", "", f"> {c.text}", ""]
        if c.note:
            lines += [f"*Reading:* {c.note}", ""]
        lines += ["```text", *trace_lines(c.trace), "```", ""]
    return "\n".join(lines).rstrip() + "\n"
