"""protocol-rules: clinical-trial eligibility criteria as executable, explainable rules.

The public API. Load a protocol with `load_protocol` (or `parse_protocol` for text), then
call `Protocol.evaluate` with a patient record to get a `Result` that explains itself.

Names are imported on first use (PEP 562), so that ``protocol-rules check`` does not load the
evaluator and its renderers: a command-line run starts in a fraction of the time.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .datamap import DataMap, DataMapError, load_data_map
    from .diagnostics import Diagnostic, PatientDataError, ProtocolError, RulesError, Severity
    from .facts import UNKNOWN
    from .patient_json import read_patient_json
    from .protocol import Protocol, check_text, load_protocol, parse_protocol
    from .result import CriterionResult, MissingFact, Observation, Outcome, Result, Status, Trace

#: Where each public name lives.
_HOMES = {
    "DataMap": "datamap",
    "DataMapError": "datamap",
    "load_data_map": "datamap",
    "Diagnostic": "diagnostics",
    "PatientDataError": "diagnostics",
    "ProtocolError": "diagnostics",
    "RulesError": "diagnostics",
    "Severity": "diagnostics",
    "UNKNOWN": "facts",
    "read_patient_json": "patient_json",
    "Protocol": "protocol",
    "check_text": "protocol",
    "load_protocol": "protocol",
    "parse_protocol": "protocol",
    "CriterionResult": "result",
    "MissingFact": "result",
    "Observation": "result",
    "Outcome": "result",
    "Result": "result",
    "Status": "result",
    "Trace": "result",
}

__all__ = [
    "UNKNOWN",
    "CriterionResult",
    "DataMap",
    "DataMapError",
    "Diagnostic",
    "MissingFact",
    "Observation",
    "Outcome",
    "PatientDataError",
    "Protocol",
    "ProtocolError",
    "Result",
    "RulesError",
    "Severity",
    "Status",
    "Trace",
    "__version__",
    "check_text",
    "load_data_map",
    "load_protocol",
    "parse_protocol",
    "read_patient_json",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
