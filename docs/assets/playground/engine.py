"""The playground's side of the engine, run by Pyodide in the browser (docs/playground.md).

`run(rules, patient)` checks the rules and evaluates the patient record with the real engine
and answers in JSON: the diagnostics (with offsets in UTF-16 units, as JavaScript counts), the
verdict, the deciding criteria, the missing facts and the explanation. A checked protocol is
kept while its text does not change, so that editing the patient does not check the rules
again. tests/test_playground.py runs it natively too.
"""

import json
import time

from protocol_rules import ProtocolError, RulesError, parse_protocol
from protocol_rules.render.diagnostics import render_diagnostic

FILENAME = "nct04194671.rules"
_last = {"text": None, "protocol": None, "diagnostics": []}


def _utf16(text, offset):
    return len(text[:offset].encode("utf-16-le")) // 2


def _diagnostic(d, text):
    span = d.span
    where = {}
    if span is not None and span.source.text == text:
        where = {
            "start": _utf16(text, span.start),
            "end": _utf16(text, max(span.end, span.start + 1)),
            "line": span.line,
            "column": span.column,
        }
    return {
        "code": d.code,
        "severity": d.severity.value,
        "message": d.message,
        "help": d.help,
        "path": d.path,
        "text": render_diagnostic(d),
        **where,
    }


def _check(rules):
    if _last["text"] != rules:
        try:
            protocol = parse_protocol(rules, FILENAME)
            found = list(protocol.warnings)
        except ProtocolError as exc:
            protocol, found = None, list(exc.diagnostics)
        _last.update(text=rules, protocol=protocol, diagnostics=found)
    return _last["protocol"], _last["diagnostics"]


def run(rules, patient):
    """Check `rules` and evaluate the JSON text `patient`; the answer as JSON text."""
    started = time.perf_counter()
    protocol, found = _check(rules)
    answer = {
        "diagnostics": [_diagnostic(d, rules) for d in found],
        "status": None,
        "patient_errors": [],
    }
    if protocol is not None:
        try:
            record = json.loads(patient)
        except json.JSONDecodeError as exc:
            answer["patient_errors"].append(
                {
                    "code": "PR401",
                    "message": f"not valid JSON: {exc.msg}",
                    "line": exc.lineno,
                    "column": exc.colno,
                    "help": 'a patient is a JSON object such as {"age": 54}',
                }
            )
        else:
            try:
                result = protocol.evaluate(record)
            except RulesError as exc:
                answer["patient_errors"] += [_diagnostic(d, "") for d in exc.diagnostics]
            else:
                answer.update(
                    status=result.status.value,
                    deciding=[c.id for c in result.deciding],
                    missing=[m.name for m in result.missing_facts],
                    explanation=result.explain(),
                )
    answer["milliseconds"] = round((time.perf_counter() - started) * 1000, 1)
    return json.dumps(answer)
