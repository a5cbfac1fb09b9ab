"""protocol-rules: clinical-trial eligibility criteria as executable, explainable rules.

The public API. Load a protocol with `load_protocol` (or `parse_protocol` for text), then
call `Protocol.evaluate` with a patient record to get a `Result` that explains itself.
"""

from .datamap import DataMap, DataMapError, load_data_map
from .diagnostics import (
    Diagnostic,
    PatientDataError,
    ProtocolError,
    RulesError,
    Severity,
)
from .facts import UNKNOWN
from .protocol import Protocol, check_text, load_protocol, parse_protocol
from .result import CriterionResult, MissingFact, Observation, Outcome, Result, Status, Trace

__version__ = "0.1.0"

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
]
