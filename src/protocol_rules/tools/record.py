"""The evaluation record of one patient: the value each compiled node took (the trace's data).

`Program.run` keeps, per patient, the normalised facts ``F`` and the flat list ``V`` of the
value of every node (one slot per node of `Program.nodes`); traces are built from them on
demand. The coverage report reads the same record, so it never evaluates anything itself.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from attrs import frozen

if TYPE_CHECKING:
    from ..evaluate import Program
    from ..protocol import Protocol
    from ..result import Result


@frozen
class Record:
    """A result with the record it was built from: facts ``F`` (``as_of`` last) and values ``V``."""

    result: Result
    program: Program
    facts: list[Any]
    values: list[Any]


def evaluate_recorded(protocol: Protocol, patient: Mapping[str, Any], as_of: Any = None) -> Record:
    """`protocol.evaluate(patient, as_of)` with its evaluation record.

    Raises `PatientDataError` for a malformed record, as `evaluate` does.
    """
    from ..evaluate import Program

    result = protocol.evaluate(patient, as_of)
    program = protocol._program
    make = result._make_criteria
    if not (
        isinstance(make, functools.partial)
        and make.func is Program._criteria
        and len(make.args) >= 4
    ):  # pragma: no cover - a guard against a change of `Program.run`
        raise RuntimeError("the evaluation record of this result is not available")
    _program, _status, facts, values = make.args[:4]
    return Record(result, program, facts, values)
