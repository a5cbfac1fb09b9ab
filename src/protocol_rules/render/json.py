"""A result as JSON data, in the documented shape of ``schemas/result.schema.json``.

The shape is versioned by `SCHEMA_VERSION`: fields are only ever added within a major version.
"""

from __future__ import annotations

import json
from typing import Any

from ..near_miss import near_miss_dict
from ..result import Result, Trace
from .safe import json_text

SCHEMA_VERSION = "1.1"  # 1.1: `warnings`; trace kinds of calculations and function calls


def trace_dict(trace: Trace) -> dict[str, Any]:
    """A trace node as JSON data; optional fields are left out when empty."""
    out: dict[str, Any] = {
        "expr": trace.expr,
        "kind": trace.kind,
        "value": trace.value,
        "known": trace.known,
        "evaluated": trace.evaluated,
    }
    for key in ("unit", "why", "fact", "line", "column"):
        value = getattr(trace, key)
        if value is not None:
            out[key] = value
    if trace.fact is not None:
        out["given"] = trace.given
    if trace.observations:
        out["observations"] = [
            {
                k: v
                for k, v in (
                    ("at", o.at),
                    ("value", o.value),
                    ("unit", o.unit),
                    ("in_window", o.in_window),
                    ("result", o.result),
                )
                if v is not None
            }
            for o in trace.observations
        ]
    if trace.children:
        out["children"] = [trace_dict(c) for c in trace.children]
    return out


def to_dict(result: Result, traces: bool = True) -> dict[str, Any]:
    """The whole result as JSON data."""
    criteria = []
    for c in result.criteria:
        entry: dict[str, Any] = {
            "id": c.id,
            "kind": c.kind,
            "text": c.text,
            "note": c.note,
            "outcome": c.outcome.value,
            "deciding": c.deciding,
        }
        if traces:
            entry["trace"] = trace_dict(c.trace)
        if c.near_misses:  # see protocol_rules.near_miss
            entry["near_misses"] = [near_miss_dict(m) for m in c.near_misses]
        criteria.append(entry)
    return {
        "schema_version": SCHEMA_VERSION,
        "protocol": {"id": result.protocol_id, "title": result.protocol_title},
        "status": result.status.value,
        "as_of": result.as_of.isoformat().replace("+00:00", "Z") if result.as_of else None,
        "deciding": [c.id for c in result.deciding],
        "criteria": criteria,
        "missing_facts": [
            {
                "name": m.name,
                "criteria": list(m.criteria),
                "reason": m.reason,
                "description": m.description,
            }
            for m in result.missing_facts
        ],
        "warnings": [
            {"code": w.code, "message": w.message, "path": w.path, "help": w.help}
            for w in result.warnings
        ],
    }


def to_json(result: Result, indent: int | None = None, traces: bool = True) -> str:
    """`to_dict` as JSON text: compact by default (the fast C encoder), indented on request.

    Strict JSON (never `NaN` or `Infinity`), and safe to print: characters that could hide
    or rewrite text on a terminal (C1 controls, bidi overrides, lone surrogates) are written as
    `\\uXXXX` escapes, which JSON readers turn back into the same strings.
    """
    text = json.dumps(
        to_dict(result, traces=traces), indent=indent, ensure_ascii=False, allow_nan=False
    )
    return json_text(text)
