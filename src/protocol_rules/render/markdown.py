"""A result as a Markdown report: the verdict and what decides it, a table of criteria, then each
criterion's trace in a text block.

Reports are rendered as web pages, so every text taken from a rules file or a patient record is
escaped (`markdown_text`): a criterion text holding `<img onerror=…>` shows as text, never as
markup, and a trace cannot close its code block early.
"""

from __future__ import annotations

import re

from ..result import Outcome, Result, Status
from .safe import markdown_text
from .text import DEFAULT_WIDTH, trace_lines

_WORDS = {Outcome.MET: "met", Outcome.NOT_MET: "not met", Outcome.UNKNOWN: "**unknown**"}
_BACKTICKS = re.compile(r"`+")


def to_markdown(result: Result, brief: bool = False) -> str:
    """The report: verdict, deciding criteria, missing facts, warnings, criteria table, traces.

    `brief` keeps the traces of the deciding criteria only (the table still lists them all).
    """
    title = f" — {markdown_text(result.protocol_title)}" if result.protocol_title else ""
    lines = [f"# {markdown_text(result.protocol_id)}{title}", ""]
    as_of = result.as_of.isoformat().replace("+00:00", "Z") if result.as_of else "not given"
    lines += [f"**Status: {result.status.value}** (as of {as_of})", ""]
    deciding = result.deciding
    if result.status is Status.INELIGIBLE:
        lines += [f"Excluded by: {', '.join(c.id for c in deciding)}", ""]
    elif result.status is Status.INDETERMINATE:
        lines += [f"Still open: {', '.join(c.id for c in deciding)}", ""]
    lines += [
        f"- **{c.id}** ({c.kind}, {_WORDS[c.outcome]}): {markdown_text(c.text)}" for c in deciding
    ]
    if deciding:
        lines.append("")
    if result.missing_facts:
        lines += ["## Missing facts", ""]
        for m in result.missing_facts:
            what = f" — {markdown_text(m.description)}" if m.description else ""
            lines.append(f"- `{m.name}`{what}: {m.reason}; feeds {', '.join(m.criteria)}")
        lines.append("")
    if result.warnings:
        lines += ["## Warnings", ""]
        for w in result.warnings:
            advice = f" {markdown_text(w.help)}" if w.help else ""
            lines.append(f"- {w.code}: {markdown_text(w.message)}.{advice}")
        lines.append("")
    lines += ["## Criteria", "", "| id | kind | outcome | criterion |", "| --- | --- | --- | --- |"]
    for c in result.criteria:
        outcome = _WORDS[c.outcome] + (" ← deciding" if c.deciding else "")
        lines.append(f"| {c.id} | {c.kind} | {outcome} | {markdown_text(c.text)} |")
    lines.append("")
    for c in result.criteria:
        if brief and not c.deciding:
            continue
        lines += [f"### {c.id} ({c.kind}): {_WORDS[c.outcome]}", "", f"> {markdown_text(c.text)}"]
        lines.append("")
        if c.note:
            lines += [f"*Reading:* {markdown_text(c.note)}", ""]
        lines += _code_block(trace_lines(c.trace, width=DEFAULT_WIDTH))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _code_block(lines: list[str]) -> list[str]:
    """A fenced text block longer than any run of backticks inside it."""
    longest = max((len(run) for line in lines for run in _BACKTICKS.findall(line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", *lines, fence]
