"""Hypothesis strategies for testing protocols and the engine, outside the evaluation pipeline.

For protocol authors and for the engine's own property tests:

- `patients(protocol)` draws valid patient records for a protocol, biased toward the values
  that decide it: every threshold the protocol compares a fact with (read from the checked
  protocol, through unit conversions, multipliers such as ``2 * baseline_creatinine`` and
  defines), every window edge, every date at which a `time_since` condition flips;
- `boundaries(protocol)` lists those thresholds;
- `expressions(facts)` and `protocols()` draw random well-typed rules text, and
  `grammar_programs()` any text the grammar accepts (for parsers, formatters, error paths).

Needs Hypothesis, which the ``testing`` extra installs (``pip install 'protocol-rules[testing]'``);
the engine itself does not.

    from hypothesis import given
    from protocol_rules import load_protocol
    from protocol_rules.testing import patients

    protocol = load_protocol("protocols/nct04194671.rules")

    @given(patients(protocol))
    def test_never_crashes(patient):
        protocol.evaluate(patient)
"""

try:
    import hypothesis  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without Hypothesis installed
    raise ImportError(
        "protocol_rules.testing needs Hypothesis; install the `testing` extra: "
        "pip install 'protocol-rules[testing]'"
    ) from exc

from .boundaries import Boundaries, Linear, boundaries
from .exact import CANDIDATE_UNITS, compatible_units, exact_in
from .patients import SIGNIFICANT_DIGITS, patients
from .programs import expressions, grammar_programs, protocols, reserved_words

__all__ = [
    "CANDIDATE_UNITS",
    "SIGNIFICANT_DIGITS",
    "Boundaries",
    "Linear",
    "boundaries",
    "compatible_units",
    "exact_in",
    "expressions",
    "grammar_programs",
    "patients",
    "protocols",
    "reserved_words",
]
