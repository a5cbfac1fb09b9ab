"""A result as a readable tree for a terminal, in the spirit of pytest's assertion rewriting.

✗ E18  met  "Platelet count <25,000/uL or other severe hematologic abnormalities, …"
    platelet_count < 25000 '/uL' or severe_hematologic_abnormality  → true
    ├─ platelet_count = 24,000 /uL  <  25,000 /uL  → true
    └─ severe_hematologic_abnormality = false
"""

from __future__ import annotations

from typing import Any

from ..near_miss import near_miss_text
from ..result import CriterionResult, Outcome, Result, Status, Trace

TIME_WORDS = {
    "a": "years",
    "mo": "months",
    "wk": "weeks",
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
}
_STYLE = {
    "green": "\x1b[32m",
    "red": "\x1b[31m",
    "yellow": "\x1b[33m",
    "bold": "\x1b[1m",
    "dim": "\x1b[2m",
}
_RESET = "\x1b[0m"
_SIMPLE = {"fact", "literal", "observation", "parameter", "as_of"}
#: Nodes that list the observations of their window below them instead of their children.
_LISTS_OBSERVATIONS = {"aggregate", "consecutive"}


class _Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, style: str) -> str:
        return f"{_STYLE[style]}{text}{_RESET}" if self.color else text


def number(value: float) -> str:
    """`24999` -> ``24,999``; `2.99768` -> ``2.9977``."""
    if isinstance(value, bool):
        return str(value).lower()
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return text if text not in ("0", "-0") else f"{value:.4g}"


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
    return str(value)


def given_text(given: Any) -> str | None:
    """A fact's value as the patient record gave it, when it had its own unit."""
    if isinstance(given, dict) and "unit" in given:
        return f"{quantity(given.get('value'), None)} {given['unit']}"
    return None


def describe(trace: Trace) -> str:
    """`platelet_count = 24,000 /uL` for reads and computed values, the text for literals."""
    if trace.kind == "literal":
        shown = trace.expr
        if trace.unit and trace.unit not in TIME_WORDS and trace.unit not in trace.expr:
            shown += f" (= {quantity(trace.value, trace.unit)})"
        return shown
    if not trace.evaluated:
        return f"{trace.expr} (not evaluated)"
    text = f"{trace.expr} = {quantity(trace.value, trace.unit)}"
    given = given_text(trace.given)
    if given and trace.given.get("unit") != trace.unit:
        text += f" (given as {given})"
    return text


def _verdict(trace: Trace) -> str:
    if not trace.evaluated:
        return "not evaluated"
    if not trace.known:
        return "unknown" + (f" ({trace.why})" if trace.why else "")
    return quantity(trace.value, trace.unit)


def trace_lines(trace: Trace, paint: _Painter | None = None) -> list[str]:
    """The lines of one trace tree, root first, children drawn with box characters."""
    paint = paint or _Painter(False)
    lines = [_headline(trace, paint)]
    kids = _shown_children(trace)
    for n, child in enumerate(kids):
        last = n == len(kids) - 1
        sub = trace_lines(child, paint)
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
            return f"{trace.expr}  → {_paint_value(trace, paint)}"
        return describe(trace)
    return f"{trace.expr}{arrow}"


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
    return f"{trace.expr}{arrow}"


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


def _observation_lines(trace: Trace) -> list[str]:
    source = trace
    if trace.kind == "aggregate" and trace.children:
        source = trace.children[0]
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
            extra = "  ✓" if o.result else "  ✗"
        where = "" if o.in_window else "  (outside the window)"
        lines.append(f"     {mark} {o.at}  {quantity(o.value, o.unit)}{extra}{where}")
    return lines


def _paint_value(trace: Trace, paint: _Painter) -> str:
    text = _verdict(trace)
    if trace.value is True:
        return paint(text, "green")
    if trace.value is False:
        return paint(text, "red")
    if not trace.known:
        return paint(text, "yellow")
    return text


_MARK = {Outcome.MET: "✓", Outcome.NOT_MET: "✗", Outcome.UNKNOWN: "?"}
_STATUS_STYLE = {Status.ELIGIBLE: "green", Status.INELIGIBLE: "red", Status.INDETERMINATE: "yellow"}


def _criterion_block(c: CriterionResult, paint: _Painter, traces: bool) -> list[str]:
    good = (c.outcome is Outcome.MET) == (c.kind == "inclusion")
    mark = _MARK[c.outcome] if c.outcome is Outcome.UNKNOWN else ("✓" if good else "✗")
    style = "yellow" if c.outcome is Outcome.UNKNOWN else ("green" if good else "red")
    deciding = "  ← deciding" if c.deciding else ""
    head = f"{paint(mark, style)} {c.id:<4} {paint(f'{c.outcome.value:<8}', style)} {c.text}"
    lines = [head + paint(deciding, "bold")]
    if c.note:
        lines.append(f"       note: {c.note}")
    lines.extend(f"       near miss: {near_miss_text(m)}" for m in c.near_misses)
    if traces:
        lines.extend("       " + line for line in trace_lines(c.trace, paint))
    return lines


def explain(result: Result, color: bool = False, brief: bool = False) -> str:
    """The whole explanation. `brief` shows traces only for the deciding criteria."""
    paint = _Painter(color)
    title = f" — {result.protocol_title}" if result.protocol_title else ""
    lines = [paint(f"{result.protocol_id}{title}", "bold")]
    status = paint(result.status.value.upper(), _STATUS_STYLE[result.status])
    as_of = f"  (as of {result.as_of.isoformat().replace('+00:00', 'Z')})" if result.as_of else ""
    lines.append(f"status: {status}{as_of}")
    deciding = [c.id for c in result.deciding]
    if result.status is Status.INELIGIBLE:
        lines.append("excluded by: " + ", ".join(deciding))
    elif result.status is Status.INDETERMINATE:
        lines.append("still open: " + ", ".join(deciding))
    for kind, heading in (("inclusion", "Inclusion criteria"), ("exclusion", "Exclusion criteria")):
        group = [c for c in result.criteria if c.kind == kind]
        if not group:
            continue
        lines += ["", paint(heading, "bold")]
        for c in group:
            lines += _criterion_block(c, paint, traces=not brief or c.deciding)
    if result.missing_facts:
        lines += ["", paint("Missing facts that could decide it", "bold")]
        for m in result.missing_facts:
            what = f" — {m.description}" if m.description else ""
            lines.append(f"  - {m.name}{what} ({m.reason}; feeds {', '.join(m.criteria)})")
    return "\n".join(lines)
