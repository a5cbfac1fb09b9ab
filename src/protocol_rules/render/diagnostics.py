"""Diagnostics as text, in the style of modern compilers, or as JSON for editors and CI."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence

from ..diagnostics import Diagnostic, Severity
from ..source import Span
from .safe import printable

SCHEMA_VERSION = "1.0"

_COLORS = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "blue": "\x1b[1;34m", "bold": "\x1b[1m"}
_RESET = "\x1b[0m"


def use_color(stream: object) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


#: Longest source line shown whole; a longer one is cut around the span, with `…` at the cuts.
MAX_LINE = 120


def render_diagnostic(d: Diagnostic, color: bool = False) -> str:
    """One diagnostic: header, location, the source line with the span underlined, help.

    Text from the rules file (the source line, and the message, label and help that quote it)
    goes through `printable`: control characters and bidi overrides are shown escaped.
    """

    def paint(text: str, style: str) -> str:
        return f"{_COLORS[style]}{text}{_RESET}" if color else text

    severity = d.severity.value
    message = printable(d.message, newlines=False)
    lines = [paint(f"{severity}[{d.code}]", severity) + paint(f": {message}", "bold")]
    span = d.span
    if span is None:
        if d.path:
            lines.append(f" --> {printable(d.path, newlines=False)}")
        lines += _footer(d, " ", paint)
        return "\n".join(lines)
    places = [(span, d.label, "^", severity)]
    places += [(r.span, r.message, "-", "blue") for r in d.related]
    width = max(len(str(max(s.line, s.end_line))) for s, *_ in places)
    pad = " " * width
    for place in places:
        lines += _snippet(*place, pad, paint)
    lines += _footer(d, pad, paint)
    return "\n".join(lines)


def _snippet(span: Span, label: str | None, mark: str, style: str, pad: str, paint) -> list[str]:  # type: ignore[no-untyped-def]
    """`--> file:line:col`, the line, and the span underlined with `mark` and labelled."""
    bar = paint("|", "blue")
    line_no = span.line
    text = span.source.line_text(line_no)
    start = span.column - 1
    end = span.end_column - 1 if span.end_line == line_no else len(text)
    shown, start, end = _cut(text, start, max(end, start))
    before = printable(shown[:start], newlines=False)
    marked = printable(shown[start:end], newlines=False)
    after = printable(shown[end:], newlines=False)
    underline = "".join("\t" if c == "\t" else " " for c in before) + mark * max(1, len(marked))
    if label:
        underline += " " + printable(label, newlines=False)
    number = str(line_no).rjust(len(pad))
    return [
        f"{pad}{paint('-->', 'blue')} {printable(span.source.name, newlines=False)}:"
        f"{line_no}:{span.column}",
        f"{pad} {bar}",
        f"{paint(number, 'blue')} {bar} {before}{marked}{after}",
        f"{pad} {bar} {paint(underline, style)}",
        f"{pad} {bar}",
    ]


def _cut(text: str, start: int, end: int) -> tuple[str, int, int]:
    """A line of at most about `MAX_LINE` characters around ``[start, end)``, and the span in it."""
    if len(text) <= MAX_LINE:
        return text, start, end
    end = min(end, start + MAX_LINE // 2)  # a long span is shown by its beginning
    context = (MAX_LINE - (end - start)) // 2
    left = max(0, start - context)
    right = min(len(text), end + context)
    head = "…" if left > 0 else ""
    tail = "…" if right < len(text) else ""
    offset = len(head) - left
    return head + text[left:right] + tail, start + offset, end + offset


def _footer(d: Diagnostic, pad: str, paint) -> list[str]:  # type: ignore[no-untyped-def]
    out = [f"{pad} = note: {printable(note, newlines=False)}" for note in d.notes]
    if d.help:
        out.append(f"{pad} = {paint('help', 'bold')}: {printable(d.help, newlines=False)}")
    return out


def render_diagnostics(
    diagnostics: Iterable[Diagnostic], color: bool = False, name: str | None = None
) -> str:
    """All diagnostics, a blank line apart, then a summary line (naming the file if `name`)."""
    diagnostics = list(diagnostics)
    blocks = [render_diagnostic(d, color) for d in diagnostics]
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    if diagnostics:
        where = f"{printable(name, newlines=False)}: " if name else ""
        blocks.append(where + summary(errors, warnings))
    return "\n\n".join(blocks)


def summary(errors: int, warnings: int) -> str:
    def count(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    return f"{count(errors, 'error')}, {count(warnings, 'warning')}"


def diagnostics_json(files: Sequence[tuple[str, Sequence[Diagnostic]]]) -> str:
    """The JSON printed by ``check --format json``: one entry per file."""
    payload = {
        "schema_version": SCHEMA_VERSION,
        "files": [
            {
                "file": name,
                "ok": not any(d.is_error for d in diags),
                "diagnostics": [d.to_dict() for d in diags],
            }
            for name, diags in files
        ],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)
