"""Results of an evaluation: data only. Renderers live in `protocol_rules.render`.

A `Result` holds the status, each criterion's outcome and the missing facts, computed
eagerly; the trace of a criterion (the tree of its sub-expressions and the value each took)
is built from the evaluation's flat record only when someone asks for it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime
from typing import Any

from attrs import frozen

from .diagnostics import Diagnostic


class Status(enum.StrEnum):
    """The verdict on a patient for a whole protocol."""

    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    INDETERMINATE = "indeterminate"

    def __str__(self) -> str:
        return self.value


class Outcome(enum.StrEnum):
    """The outcome of one criterion: its condition is true, false or unknown."""

    MET = "met"
    NOT_MET = "not_met"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


@frozen
class Observation:
    """One observation of a series, as a window saw it."""

    at: str
    value: Any
    unit: str | None
    in_window: bool
    result: bool | None = None  # for `any`/`all`: did this observation pass the test?


@frozen
class Trace:
    """One sub-expression of a criterion as written in the file, and the value it took.

    `value` is JSON-ready: a boolean, a number (in `unit` for quantities), a string (choices,
    texts, ISO dates), a list (sets, windows), or None when `known` is false. `given` is the
    patient's value as sent (with its own unit) for a fact read. `why` says why an unknown is
    unknown. `evaluated` is false for an operand that a decided `and`/`or` did not need.
    """

    expr: str
    kind: str
    value: Any
    known: bool
    unit: str | None = None
    evaluated: bool = True
    why: str | None = None
    fact: str | None = None
    given: Any = None
    observations: tuple[Observation, ...] = ()
    children: tuple[Trace, ...] = ()
    line: int | None = None
    column: int | None = None

    def walk(self):  # type: ignore[no-untyped-def]
        """This node and all below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


@frozen
class MissingFact:
    """An absent fact that could still change an undecided verdict, and what it feeds."""

    name: str
    criteria: tuple[str, ...]
    reason: str  # "absent", "no observation in the window" or "more observations needed"
    description: str | None = None


class CriterionResult:
    """The outcome of one criterion; `trace` is built on first access."""

    __slots__ = (
        "_near_misses",
        "_trace",
        "_trace_builder",
        "deciding",
        "id",
        "kind",
        "near_miss_builder",
        "note",
        "outcome",
        "text",
    )

    def __init__(
        self,
        id: str,
        kind: str,
        text: str,
        note: str | None,
        outcome: Outcome,
        deciding: bool,
        trace_builder: Callable[[], Trace],
    ) -> None:
        self.id = id
        self.kind = kind
        self.text = text
        self.note = note
        self.outcome = outcome
        self.deciding = deciding
        self._trace_builder = trace_builder
        self._trace: Trace | None = None
        self.near_miss_builder: Callable[[], tuple[Any, ...]] | None = None
        self._near_misses: tuple[Any, ...] | None = None

    @property
    def near_misses(self) -> tuple[Any, ...]:
        """For an excluding criterion, the comparisons that alone keep the patient out, each
        with the distance from the patient's value to its threshold (`near_miss.NearMiss`)."""
        if self._near_misses is None:
            builder = self.near_miss_builder
            self._near_misses = builder() if builder is not None else ()
        return self._near_misses

    @property
    def trace(self) -> Trace:
        """The tree of this criterion's sub-expressions with the value each took."""
        if self._trace is None:
            self._trace = self._trace_builder()
        return self._trace

    @property
    def excludes(self) -> bool:
        """True when this criterion alone makes the patient ineligible."""
        if self.kind == "inclusion":
            return self.outcome is Outcome.NOT_MET
        return self.outcome is Outcome.MET

    def __repr__(self) -> str:
        return f"<CriterionResult {self.id} {self.outcome.value}>"


#: One letter per criterion outcome, as a `Result` keeps them (a string is not tracked by the
#: garbage collector, a tuple of objects is).
OUTCOME_CODES = {"m": Outcome.MET, "n": Outcome.NOT_MET, "u": Outcome.UNKNOWN}


class Result:
    """The verdict on one patient: status, criteria, missing facts, and renderers.

    A result stays small while it is kept: the outcomes are one short string, and the
    per-criterion objects (`criteria`, `deciding`, `criterion`) are built when asked for, not
    kept, so that holding many thousands of results does not make the garbage collector walk
    hundreds of thousands of objects.
    """

    __slots__ = (
        "_codes",
        "_ids",
        "_make_criteria",
        "as_of",
        "missing_facts",
        "protocol_id",
        "protocol_title",
        "status",
        "warnings",
    )

    def __init__(
        self,
        protocol_id: str,
        protocol_title: str | None,
        status: Status,
        make_criteria: Callable[[], tuple[CriterionResult, ...]],
        missing_facts: tuple[MissingFact, ...],
        as_of: datetime | None,
        warnings: tuple[Diagnostic, ...] = (),
        outcomes: tuple[tuple[str, ...], str] | None = None,
    ) -> None:
        self.protocol_id = protocol_id
        self.protocol_title = protocol_title
        self.status = status
        self._make_criteria = make_criteria
        # (criterion ids, one `OUTCOME_CODES` letter each), or None: read from `criteria`
        self._ids, self._codes = outcomes if outcomes is not None else ((), None)
        self.missing_facts = missing_facts
        self.as_of = as_of
        #: What the patient record held that the verdict did not use, such as observations
        #: after `as_of` (PR414): warnings, not errors, since the verdict stands.
        self.warnings = warnings

    @property
    def criteria(self) -> tuple[CriterionResult, ...]:
        """Every criterion's result, in file order; built on each access (keep the tuple to
        read it often: each criterion's trace is built once per `CriterionResult`)."""
        return self._make_criteria()

    def criterion(self, id: str) -> CriterionResult:
        """The result of the criterion with this id (KeyError if none)."""
        for c in self.criteria:
            if c.id == id:
                return c
        raise KeyError(id)

    @property
    def outcomes(self) -> dict[str, Outcome]:
        """Criterion id -> outcome (no per-criterion object is built)."""
        if self._codes is None:
            return {c.id: c.outcome for c in self.criteria}
        return dict(zip(self._ids, map(OUTCOME_CODES.__getitem__, self._codes), strict=True))

    @property
    def deciding(self) -> tuple[CriterionResult, ...]:
        """The criteria that exclude (ineligible) or that are still open (indeterminate)."""
        return tuple(c for c in self.criteria if c.deciding)

    @property
    def eligible(self) -> bool:
        return self.status is Status.ELIGIBLE

    def explain(self, color: bool = False, brief: bool = False, width: int | None = None) -> str:
        """Readable text for a terminal: the verdict, what decides it and what is missing, then
        every criterion with its tree (`brief`: only the deciding criteria's trees), wrapped to
        `width` columns (100 when None)."""
        from .render.text import explain

        return explain(self, color=color, brief=brief, width=width)

    def to_markdown(self) -> str:
        """A Markdown report of the verdict and each criterion's trace."""
        from .render.markdown import to_markdown

        return to_markdown(self)

    def to_dict(self, traces: bool = True) -> dict[str, Any]:
        """The documented JSON shape (see `protocol_rules/schemas/result.schema.json`)."""
        from .render.json import to_dict

        return to_dict(self, traces=traces)

    def to_json(self, indent: int | None = None, traces: bool = True) -> str:
        """`to_dict` as strict JSON text: compact by default, indented with `indent=2`."""
        from .render.json import to_json

        return to_json(self, indent=indent, traces=traces)

    def __repr__(self) -> str:
        return f"<Result {self.protocol_id}: {self.status.value}>"
