"""The facts a protocol needs: a table for people, a JSON Schema for screening forms.

The JSON Schema describes exactly what `Protocol.evaluate` accepts, so an integration can
validate patient records before sending them.
"""

from __future__ import annotations

from typing import Any

from ..check.types import BoolT, ChoiceT, CodeT, NumT, QtyT, SeriesT, SetT, TextT, TimeT, Type
from ..protocol import Protocol
from .text import number

_QUANTITY_OBJECT = "quantity object {value, unit}"


def _scalar_schema(type_: Type, low: float | None, high: float | None) -> dict[str, Any]:
    match type_:
        case BoolT():
            return {"type": "boolean"}
        case NumT(integer=integer):
            schema: dict[str, Any] = {"type": "integer" if integer else "number"}
            if low is not None:
                schema.update(minimum=low, maximum=high)
            return schema
        case QtyT(unit=unit):
            bare: dict[str, Any] = {"type": "number", "description": f"in {unit}"}
            if low is not None:
                bare.update(minimum=low, maximum=high)
            return {
                "oneOf": [
                    bare,
                    {
                        "type": "object",
                        "required": ["value"],
                        "additionalProperties": False,
                        "properties": {
                            "value": {"type": "number"},
                            "unit": {"type": "string", "description": "a UCUM unit"},
                        },
                    },
                ]
            }
        case TimeT(has_time=has_time, never=never):
            instant = {"type": "string", "format": "date-time" if has_time else "date"}
            if never:  # `date or never`: known not to have happened
                return {"anyOf": [instant, {"const": "never"}]}
            return instant
        case TextT():
            return {"type": "string"}
        case ChoiceT(choices=choices):
            return {"enum": list(choices)}
        case CodeT():
            return CODE_SCHEMA
    raise AssertionError(type_)  # pragma: no cover


#: A code in a patient record (docs/patient-data.md#codes): ``"SYSTEM#code"`` or a FHIR Coding.
CODE_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "type": "string",
            "pattern": "^[A-Za-z][A-Za-z0-9_ -]*#.+$",
            "description": "SYSTEM#code, e.g. LOINC#2160-0 or ICD10CM#N17.9",
        },
        {
            "type": "object",
            "description": "a FHIR Coding; system is a URI (http://loinc.org) or a name (LOINC)",
            "required": ["system", "code"],
            "additionalProperties": False,
            "properties": {
                "system": {"type": "string"},
                "code": {"type": "string"},
                "display": {"type": "string"},
                "version": {"type": "string"},
                "userSelected": {"type": "boolean"},
            },
        },
    ]
}


def fact_schema(type_: Type, low: float | None, high: float | None) -> dict[str, Any]:
    """The JSON Schema of one fact's value (null always allowed: it means unknown)."""
    if isinstance(type_, SeriesT):
        element = type_.element
        value = _scalar_schema(element, low, high)
        props: dict[str, Any] = {"value": value, "at": {"type": "string", "format": "date-time"}}
        if isinstance(element, QtyT):
            props["value"] = {"type": "number"}
            props["unit"] = {"type": "string", "description": "a UCUM unit"}
        schema: dict[str, Any] = {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["value", "at"],
                "additionalProperties": False,
                "properties": props,
            },
        }
    elif isinstance(type_, SetT):
        schema = {"type": "array", "items": _scalar_schema(type_.element, None, None)}
    else:
        schema = _scalar_schema(type_, low, high)
    return {"anyOf": [schema, {"type": "null"}]}


def patient_schema(protocol: Protocol) -> dict[str, Any]:
    """A JSON Schema (2020-12) for the patient records `protocol` accepts."""
    properties: dict[str, Any] = {
        "as_of": {"type": "string", "format": "date-time", "description": "the evaluation time"},
    }
    for fact in protocol.facts:
        schema = fact_schema(fact.type, fact.low, fact.high)
        used_by = [c.id for c in protocol.criteria if fact.name in c.facts]
        text = fact.description or ""
        if fact.unit:
            text += f" (unit {fact.unit})"
        if fact.past:
            text += " (not after as_of)"
        if used_by:
            text += f" — used by {', '.join(used_by)}"
        schema["description"] = text.strip(" —")
        properties[fact.name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Patient record for {protocol.id}",
        "description": "Fact name -> value. Absent or null means unknown.",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }


def type_text(type_: Type) -> str:
    match type_:
        case QtyT(unit=unit):
            return f"quantity '{unit}'"
        case SeriesT(element=element):
            return f"series of {type_text(element)}"
        case SetT(element=element):
            return f"set of {type_text(element)}"
        case ChoiceT(choices=choices):
            return "one of " + ", ".join(choices)
    return str(type_)


def facts_table(protocol: Protocol) -> str:
    """A plain-text table: fact, type, range, criteria, description."""
    rows = [("fact", "type", "range", "criteria", "description")]
    for fact in protocol.facts:
        used_by = ", ".join(c.id for c in protocol.criteria if fact.name in c.facts)
        range_ = f"{number(fact.low)} to {number(fact.high)}" if fact.low is not None else ""
        kind = type_text(fact.type) + (" past" if fact.past else "")
        if len(kind) > 40:
            kind = kind[:37] + "..."
        rows.append((fact.name, kind, range_, used_by, fact.description or ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) for i in range(4)] + [row[4]]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  -----------")
    return "\n".join(lines)
