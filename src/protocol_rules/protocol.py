"""The public face of a loaded protocol: `load_protocol`, `parse_protocol` and `Protocol`.

Loading runs the pipeline once — parse, check, compile — so that evaluating a patient does
no parsing, name lookup or unit parsing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .check import CheckedProtocol, CriterionInfo, DefineInfo, FactInfo, check
from .diagnostics import Diagnostic, ProtocolError, RulesError, file_error, sort_key
from .parser import has_errors, parse
from .source import Source, normalise, read_text

if TYPE_CHECKING:
    from .result import Result
    from .screening import Screening


def read_source(path: str | os.PathLike[str]) -> Source:
    """Read a rules file (see `source.read_text`). Raises `ProtocolError` (PR001) if it cannot."""
    name = os.fspath(path)
    try:
        return Source(name, read_text(name))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolError([file_error(name, exc)]) from None


def parse_protocol(text: str, filename: str = "<string>") -> Protocol:
    """Parse and check rules text. Raises `ProtocolError` carrying every diagnostic."""
    source = Source(filename, normalise(text))
    syntax, diagnostics = parse(source)
    if syntax is None:
        raise ProtocolError(diagnostics)
    checked, found = check(syntax)
    if checked is None or has_errors(diagnostics):
        raise ProtocolError(sorted(diagnostics + found, key=sort_key))
    return Protocol(checked, tuple(found))


def load_protocol(path: str | os.PathLike[str]) -> Protocol:
    """Load a ``.rules`` file. Raises `ProtocolError` for a missing, unreadable or bad file."""
    source = read_source(path)
    return parse_protocol(source.text, source.name)


def check_text(text: str, filename: str = "<string>") -> list[Diagnostic]:
    """Every diagnostic of rules text (errors and warnings), without raising."""
    source = Source(filename, normalise(text))
    syntax, diagnostics = parse(source)
    if syntax is None:
        return diagnostics
    return sorted(diagnostics + check(syntax)[1], key=sort_key)


class Protocol:
    """A checked, compiled protocol: metadata, facts, defines and criteria in file order."""

    def __init__(self, checked: CheckedProtocol, warnings: tuple[Diagnostic, ...] = ()) -> None:
        from .evaluate import compile_protocol

        self.checked = checked
        self.warnings = warnings
        self._program = compile_protocol(checked)

    @property
    def id(self) -> str:
        return self.checked.id

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.checked.metadata)

    @property
    def title(self) -> str | None:
        return self.metadata.get("title")

    @property
    def facts(self) -> tuple[FactInfo, ...]:
        return self.checked.facts

    @property
    def defines(self) -> tuple[DefineInfo, ...]:
        return self.checked.defines

    @property
    def criteria(self) -> tuple[CriterionInfo, ...]:
        return self.checked.criteria

    @property
    def source_name(self) -> str:
        return self.checked.source.name

    def fact(self, name: str) -> FactInfo:
        """The declared fact called `name` (KeyError if none)."""
        for fact in self.facts:
            if fact.name == name:
                return fact
        raise KeyError(name)

    def evaluate(
        self,
        patient: Mapping[str, Any],
        as_of: datetime | str | None = None,
        *,
        ignore_unknown: bool = False,
    ) -> Result:
        """Evaluate one patient record. Raises `PatientDataError` for malformed input."""
        return self._program.run(patient, as_of, ignore_unknown=ignore_unknown)

    def evaluate_many(
        self,
        patients: Iterable[Mapping[str, Any]],
        as_of: datetime | str | None = None,
        *,
        ignore_unknown: bool = False,
    ) -> Iterator[Result | RulesError]:
        """Evaluate patients lazily, one result per patient in order.

        A patient whose record is malformed yields its `PatientDataError` in its place, so
        one bad record does not abort the batch.
        """
        run = self._program.run
        for patient in patients:
            try:
                yield run(patient, as_of, ignore_unknown=ignore_unknown)
            except RulesError as exc:
                yield exc

    def screen(
        self,
        data: Any,
        as_of: datetime | str | None = None,
        engine: str = "polars",
        *,
        ignore_unknown: bool = False,
        progress: Any = None,
    ) -> Screening:
        """Screen a whole population; see the screening guide. Needs the ``[screen]`` extra.

        `data` is a list or iterator of patient records (with an ``"id"``), a JSON Lines file,
        the columnar layout (a folder or a Parquet / CSV file) or polars DataFrames in it.
        A malformed record gets status ``error`` with its diagnostics; nothing is dropped.
        """
        from .screening import screen

        return screen(self, data, as_of, engine, ignore_unknown=ignore_unknown, progress=progress)

    def __repr__(self) -> str:
        return f"<Protocol {self.id}: {len(self.facts)} facts, {len(self.criteria)} criteria>"
