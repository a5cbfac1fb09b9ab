"""Diagnostics as text, in the style of modern compilers, or as JSON for editors and CI."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence

from ..diagnostics import Diagnostic, Severity

SCHEMA_VERSION = "1.0"

_COLORS = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "blue": "\x1b[1;34m", "bold": "\x1b[1m"}
_RESET = "\x1b[0m"


def use_color(stream: object) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def render_diagnostic(d: Diagnostic, color: bool = False) -> str:
    """One diagnostic: header, location, the source line with the span underlined, help."""

    def paint(text: str, style: str) -> str:
        return f"{_COLORS[style]}{text}{_RESET}" if color else text

    severity = d.severity.value
    lines = [paint(f"{severity}[{d.code}]", severity) + paint(f": {d.message}", "bold")]
    span = d.span
    if span is None:
        if d.path:
            lines.append(f" --> {d.path}")
        lines += _footer(d, " ", paint)
        return "\n".join(lines)
    line_no = span.line
    width = len(str(max(line_no, span.end_line)))
    pad = " " * width
    lines.append(f"{pad}{paint('-->', 'blue')} {span.source.name}:{line_no}:{span.column}")
    lines.append(f"{pad} {paint('|', 'blue')}")
    text = span.source.line_text(line_no)
    lines.append(f"{paint(str(line_no).rjust(width), 'blue')} {paint('|', 'blue')} {text}")
    start_col = span.column
    end_col = span.end_column if span.end_line == line_no else len(text) + 1
    marks = "^" * max(1, end_col - start_col)
    label = f" {d.label}" if d.label else ""
    underline = " " * (start_col - 1) + marks + label
    lines.append(f"{pad} {paint('|', 'blue')} {paint(underline, severity)}")
    lines.append(f"{pad} {paint('|', 'blue')}")
    lines += _footer(d, pad, paint)
    return "\n".join(lines)


def _footer(d: Diagnostic, pad: str, paint) -> list[str]:  # type: ignore[no-untyped-def]
    out = [f"{pad} = note: {note}" for note in d.notes]
    if d.help:
        out.append(f"{pad} = {paint('help', 'bold')}: {d.help}")
    return out


def render_diagnostics(diagnostics: Iterable[Diagnostic], color: bool = False) -> str:
    """All diagnostics, a blank line apart, then a summary line."""
    diagnostics = list(diagnostics)
    blocks = [render_diagnostic(d, color) for d in diagnostics]
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    if diagnostics:
        blocks.append(summary(errors, warnings))
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
