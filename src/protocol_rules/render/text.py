"""A result as readable text for a terminal: the verdict and what decides it first, then each
criterion with the tree of its sub-expressions, in the spirit of pytest's assertion rewriting.

    E18  met      Platelet count <25,000/uL or other severe hematologic abnormalities, …
         platelet_count < 25000 '/uL' or severe_hematologic_abnormality  → true
         ├─ platelet_count = 24,000 /uL  <  25,000 /uL  → true
         └─ severe_hematologic_abnormality = false

Lines are wrapped to a width (the terminal's, from the command line), and every text that comes
from a rules file or a patient record goes through `printable`, so that a criterion text or a
record's value cannot move the cursor, recolour the terminal or reverse what a reader sees.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any

from ..near_miss import near_miss_text
from ..result import CriterionResult, MissingFact, Outcome, Result, Status, Trace
from .safe import printable

TIME_WORDS = {
    "a": "years",
    "mo": "months",
    "wk": "weeks",
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
}
#: Width of an explanation when none is given (the API); the command line passes the terminal's.
DEFAULT_WIDTH = 100
_NARROWEST = 40
_STYLE = {
    "green": "\x1b[32m",
    "red": "\x1b[31m",
    "yellow": "\x1b[33m",
    "bold": "\x1b[1m",
    "dim": "\x1b[2m",
}
_RESET = "\x1b[0m"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SIMPLE = {"fact", "literal", "observation", "parameter", "as_of"}
#: Nodes that list the observations of their window below them instead of their children.
_LISTS_OBSERVATIONS = {"aggregate", "consecutive"}
_TREE_PREFIX = re.compile(r"[ │├└─•·]*")
_GUIDES_BELOW = str.maketrans({"├": "│", "└": " ", "─": " ", "•": " ", "·": " "})
_UNBROKEN = ("not evaluated", "← still open", "← excludes the patient")
_WORDS = {Outcome.MET: "met", Outcome.NOT_MET: "not met", Outcome.UNKNOWN: "unknown"}
_STATUS_STYLE = {Status.ELIGIBLE: "green", Status.INELIGIBLE: "red", Status.INDETERMINATE: "yellow"}
NOT_EVALUATED = (
    "not evaluated: an operand that `and` or `or` did not need, because the other operand "
    "already decided the result."
)


class _Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, style: str) -> str:
        return f"{_STYLE[style]}{text}{_RESET}" if self.color else text


def _safe(text: str) -> str:
    """Untrusted text on one line, with control and bidi characters shown as escapes."""
    return printable(text, newlines=False)


# --------------------------------------------------------------------------- values


def number(value: float) -> str:
    """`24999` -> ``24,999``; `2.99768` -> ``2.9977``; `1e300` -> ``1e300``, not 301 digits."""
    if isinstance(value, bool):
        return str(value).lower()
    magnitude = abs(value)
    if magnitude >= 1e15 or 0 < magnitude < 1e-4 or magnitude != magnitude:
        mantissa, _, exponent = f"{value:.4e}".partition("e")
        if not exponent:  # inf or nan: evaluation makes none
            return mantissa
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    if float(value).is_integer():
        return f"{int(value):,}"
    if magnitude < 1:
        return f"{value:.4g}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def quantity(value: Any, unit: str | None) -> str:
    """A value with its unit, as shown in explanations."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = number(value)
        if unit and unit != "1":
            text += f" {TIME_WORDS.get(unit, unit)}"
        return text
    if isinstance(value, list):
        return "[" + ", ".join(quantity(v, unit) for v in value) + "]"
    return _safe(str(value))


def given_text(given: Any) -> str | None:
    """A fact's value as the patient record gave it, when it had its own unit."""
    if isinstance(given, dict) and "unit" in given:
        return f"{quantity(given.get('value'), None)} {_safe(str(given['unit']))}"
    return None


def describe(trace: Trace) -> str:
    """`platelet_count = 24,000 /uL` for reads and computed values, the text for literals."""
    expr = _safe(trace.expr)
    if trace.kind == "literal":
        if trace.unit and trace.unit not in TIME_WORDS and trace.unit not in trace.expr:
            expr += f" (= {quantity(trace.value, trace.unit)})"
        return expr
    if not trace.evaluated:
        return f"{expr} (not evaluated)"
    text = f"{expr} = {quantity(trace.value, trace.unit)}"
    given = given_text(trace.given)
    if given and trace.given.get("unit") != trace.unit:
        text += f" (given as {given})"
    return text


# --------------------------------------------------------------------------- trace trees


def trace_lines(trace: Trace, paint: _Painter | None = None, width: int | None = None) -> list[str]:
    """The lines of one trace tree, root first, children drawn with box characters.

    With a `width`, a line longer than it continues on the next lines, indented under its node.
    """
    paint = paint or _Painter(False)
    kids = _shown_children(trace)
    head = _headline(trace, paint)
    lines = _wrap(head, width, "│  " if kids else "   ") if width else [head]
    for n, child in enumerate(kids):
        last = n == len(kids) - 1
        sub = trace_lines(child, paint, max(_NARROWEST // 2, width - 3) if width else None)
        lines.append(("└─ " if last else "├─ ") + sub[0])
        lines.extend(("   " if last else "│  ") + line for line in sub[1:])
    lines.extend(_observation_lines(trace))
    return lines


def _headline(trace: Trace, paint: _Painter) -> str:
    if trace.kind == "code":  # terminology: a code that matched a member of a value set
        return code_line(trace)
    arrow = f"  → {_paint_value(trace, paint)}"
    if trace.kind == "comparison":
        return _compact(trace, arrow)
    if trace.kind in _SIMPLE or trace.kind in _LISTS_OBSERVATIONS:
        if not trace.known:
            return f"{_safe(trace.expr)}  → {_paint_value(trace, paint)}"
        return describe(trace)
    return f"{_safe(trace.expr)}{arrow}"


def code_line(trace: Trace) -> str:
    """`ICD10CM#N17.0 "Acute kidney failure with tubular necrosis" matches ICD10CM#N17*`."""
    if not trace.known:
        return f"{trace.expr}: no match" + (f" ({trace.why})" if trace.why else "")
    display = f' "{trace.given}"' if trace.given else ""
    return f"{trace.value}{display} matches {trace.expr}"


def _compact(trace: Trace, arrow: str) -> str:
    """`platelet_count = 24,000 /uL  <  25,000 /uL  → true` for a comparison of simple operands."""
    if len(trace.children) == 2 and all(c.kind in _SIMPLE for c in trace.children):
        left, right = trace.children
        op = trace.expr[len(left.expr) : len(trace.expr) - len(right.expr)].strip()
        if op in ("<", "<=", ">", ">=", "=", "!="):
            return f"{describe(left)}  {op}  {_right(right)}{arrow}"
    return f"{_safe(trace.expr)}{arrow}"


def _right(trace: Trace) -> str:
    if trace.kind == "literal" and trace.unit and trace.value is not None:
        return quantity(trace.value, trace.unit)
    return describe(trace)


def _shown_children(trace: Trace) -> list[Trace]:
    if trace.kind in _SIMPLE:
        return []
    if trace.kind == "comparison" and all(c.kind in _SIMPLE for c in trace.children):
        return []
    if trace.kind in _LISTS_OBSERVATIONS:
        return []  # its window's observations are listed below it instead
    if trace.kind in ("window", "quantified", "filter"):
        return []  # observations are listed below the node
    # A called function's body (kind `body`) is in the trace data, not in this summary.
    return [
        c
        for c in trace.children
        if (c.kind != "literal" or trace.kind == "count") and c.kind != "body"
    ]


def _window_of(trace: Trace) -> Trace | None:
    """The window an aggregate reads, through the defines that hold it."""
    window = trace.children[0] if trace.children else None
    while window is not None and window.kind == "define" and window.children:
        window = window.children[0]
    return window


def _observation_lines(trace: Trace) -> list[str]:
    source = trace
    if trace.kind == "aggregate":
        source = _window_of(trace) or trace
    observations = source.observations
    if not observations:
        if trace.kind in ("quantified", "consecutive", "filter") and trace.known:
            return ["   no observation in the window"]
        return []
    inside = [o for o in observations if o.in_window]
    lines = [f"   {len(inside)} of {len(observations)} observations in the window:"]
    if source.kind == "filter":
        passed = sum(1 for o in observations if o.result)
        lines = [f"   {passed} of {len(observations)} observations in the window pass `where`:"]
    elif source.kind == "consecutive":
        lines = [f"   {len(observations)} observations in the window, in time order:"]
    for o in observations:
        mark = "•" if o.in_window else "·"
        extra = ""
        if o.result is not None:
            extra = "  → true" if o.result else "  → false"
        where = "" if o.in_window else "  (outside the window)"
        lines.append(f"     {mark} {o.at}  {quantity(o.value, o.unit)}{extra}{where}")
    return lines


def _verdict(trace: Trace) -> str:
    if not trace.evaluated:
        return "not evaluated"
    if not trace.known:
        return "unknown" + (f" ({_safe(trace.why)})" if trace.why else "")
    return quantity(trace.value, trace.unit)


def _paint_value(trace: Trace, paint: _Painter) -> str:
    text = _verdict(trace)
    if trace.value is True:
        return paint(text, "green")
    if trace.value is False:
        return paint(text, "red")
    if not trace.known:
        return paint(text, "yellow")
    return text


# --------------------------------------------------------------------------- wrapping


def _wrap(line: str, width: int, indent: str) -> list[str]:
    """`line` cut at spaces into lines of at most `width` visible characters (colour codes do
    not count), the continuations starting with `indent`. A word longer than a line stays
    whole; runs of spaces inside a line are kept."""
    if _visible(line) <= width:
        return [line]
    return list(_wrapped(line, width, indent))


@lru_cache(maxsize=4096)  # criterion texts and notes are the same for every patient
def _wrapped(line: str, width: int, indent: str) -> tuple[str, ...]:
    glued = line.replace("→ ", "→\0")
    for phrase in _UNBROKEN:
        glued = glued.replace(phrase, phrase.replace(" ", "\0"))
    parts = re.split(r"( +)", glued)  # `→` stays with the value after it
    measure = _visible if "\x1b" in line else len
    lines: list[str] = []
    current, length = parts[0], measure(parts[0])
    for space, word in zip(parts[1::2], parts[2::2], strict=True):
        size = measure(word)
        if length + len(space) + size > width and current.strip():
            lines.append(current)
            current, length = indent + word, len(indent) + size
        else:
            current += space + word
            length += len(space) + size
    lines.append(current)
    return tuple(line.replace("\0", " ") for line in lines)  # `printable` leaves no NUL


def _visible(text: str) -> int:
    return len(_ANSI.sub("", text)) if "\x1b" in text else len(text)


def terminal_width(stream: Any = None) -> int:
    """The width to wrap to: ``COLUMNS``, else the terminal's, else `DEFAULT_WIDTH`."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return max(_NARROWEST, int(columns))
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        try:
            return max(_NARROWEST, os.get_terminal_size(stream.fileno()).columns)
        except (OSError, ValueError):
            pass
    return DEFAULT_WIDTH


# --------------------------------------------------------------------------- the explanation


def explain(
    result: Result, color: bool = False, brief: bool = False, width: int | None = None
) -> str:
    """The whole explanation: verdict, deciding criteria, missing facts, warnings, then every
    criterion with its trace (`brief`: the deciding criteria's traces only).

    Lines are wrapped to `width` columns (`DEFAULT_WIDTH` when None).
    """
    paint = _Painter(color)
    width = max(_NARROWEST, width or DEFAULT_WIDTH)
    lines = _summary(result, paint, width)
    skipped = False  # whether a trace shows an operand that was not evaluated
    for kind, heading in (
        ("inclusion", "Inclusion criteria (each must be met)"),
        ("exclusion", "Exclusion criteria (each must be not met)"),
    ):
        group = [c for c in result.criteria if c.kind == kind]
        if group:
            lines += ["", paint(heading, "bold")]
            for c in group:
                traces = not brief or c.deciding
                lines += _criterion_block(c, paint, width, traces)
                skipped = skipped or (traces and any(not t.evaluated for t in c.trace.walk()))
    if skipped:  # said once here rather than at every such operand
        lines += ["", *_wrap(NOT_EVALUATED, width, "  ")]
    return "\n".join(
        part
        for line in lines
        for part in (_wrap(line, width, _continuation(line)) if len(line) > width else (line,))
    )


def _continuation(line: str) -> str:
    """How a line that is still too long continues: under its tree guides, indented."""
    prefix = _TREE_PREFIX.match(line).group()  # type: ignore[union-attr]
    return (
        prefix.replace("├─", "│ ").replace("└─", "  ").replace("•", " ").replace("·", " ") + "   "
    )


def _summary(result: Result, paint: _Painter, width: int) -> list[str]:
    """What a reader needs first: the verdict, what decides it, what is missing."""
    title = f" — {_safe(result.protocol_title)}" if result.protocol_title else ""
    lines = _wrap(paint(f"{_safe(result.protocol_id)}{title}", "bold"), width, "  ")
    status = paint(result.status.value.upper(), _STATUS_STYLE[result.status])
    as_of = f"  (as of {result.as_of.isoformat().replace('+00:00', 'Z')})" if result.as_of else ""
    lines += _wrap(f"status: {status}{as_of}", width, "  ")
    deciding = result.deciding
    if result.status is Status.INELIGIBLE:
        lines.append("excluded by: " + ", ".join(c.id for c in deciding))
    elif result.status is Status.INDETERMINATE:
        lines.append("still open: " + ", ".join(c.id for c in deciding))
    else:
        lines.append("every inclusion criterion is met and every exclusion criterion is not met")
    for c in deciding:
        head = f"  {c.id:<4} {c.kind} {_WORDS[c.outcome]}: "
        lines += _wrap(head + _safe(c.text), width, " " * 7)
    if result.missing_facts:
        lines += ["", paint("Missing facts that could decide it", "bold")]
        lines += [line for m in result.missing_facts for line in _missing(m, width)]
    if result.warnings:
        lines += ["", paint("Warnings", "bold")]
        for w in result.warnings:
            lines += _wrap(f"  - {_safe(w.message)}", width, "    ")
            if w.help:
                lines += _wrap(f"    {_safe(w.help)}", width, "    ")
    return lines


def _missing(m: MissingFact, width: int) -> list[str]:
    what = f" — {_safe(m.description)}" if m.description else ""
    text = f"  - {_safe(m.name)}{what} ({m.reason}; feeds {', '.join(m.criteria)})"
    return _wrap(text, width, "    ")


def _criterion_block(c: CriterionResult, paint: _Painter, width: int, traces: bool) -> list[str]:
    excludes = c.excludes
    style = "yellow" if c.outcome is Outcome.UNKNOWN else ("red" if excludes else "green")
    flag = ""
    if c.deciding:
        flag = "  ← excludes the patient" if excludes else "  ← still open"
    head = f"  {c.id:<4} {paint(f'{_WORDS[c.outcome]:<8}', style)} {_safe(c.text)}"
    lines = _wrap(head + paint(flag, "bold"), width, " " * 16)
    if c.note:
        lines += _wrap(f"       note: {_safe(c.note)}", width, " " * 13)
    for m in c.near_misses:
        lines += _wrap(f"       near miss: {_safe(near_miss_text(m))}", width, " " * 18)
    if traces:
        lines.extend("       " + line for line in trace_lines(c.trace, paint, width - 7))
    return lines
