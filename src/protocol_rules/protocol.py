"""The public face of a loaded protocol: `load_protocol`, `parse_protocol` and `Protocol`.

Loading runs the pipeline once — parse, check, compile — so that evaluating a patient does
no parsing, name lookup or unit parsing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .check import CheckedProtocol, CriterionInfo, DefineInfo, FactInfo, check
from .diagnostics import Diagnostic, ProtocolError, RulesError, error, file_error, sort_key
from .parser import has_errors, parse
from .source import Source, normalise, read_text

if TYPE_CHECKING:
    from .codes import Terminology
    from .result import Result
    from .screening import Screening

PathLike = str | os.PathLike[str]


def read_source(path: PathLike) -> Source:
    """Read a rules file (see `source.read_text`). Raises `ProtocolError` (PR001) if it cannot."""
    name = os.fspath(path)
    try:
        return Source(name, read_text(name))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolError([file_error(name, exc)]) from None


def parse_protocol(
    text: str,
    filename: str = "<string>",
    *,
    folder: PathLike | None = None,
    terminology: Terminology | None = None,
) -> Protocol:
    """Parse and check rules text. Raises `ProtocolError` carrying every diagnostic.

    `folder` is where `use "file.rules"` finds library files (by default the folder of
    `filename` when it names a file; a protocol given as text alone can use only the shipped
    libraries). `terminology` gives the descendants of value-set members written with `*`
    whose hierarchy only a terminology knows (SNOMED CT, RxNorm, OMOP concepts): see
    docs/language/codes.md.
    """
    source = Source(filename, normalise(text))
    syntax, found = parse(source)
    if syntax is None:
        raise ProtocolError(found)
    checked, diagnostics = _check(syntax, filename, folder, terminology)
    if has_errors(found):  # a mistake the parser recovered from (PR110)
        checked, diagnostics = None, sorted([*found, *diagnostics], key=sort_key)
    if checked is None:
        if not any(d.is_error for d in diagnostics):  # a library file: nothing to evaluate
            diagnostics = [
                error(
                    "PR109",
                    "this file is a library (defines only), not a protocol",
                    None,
                    path=filename,
                    help='use it from a protocol: `use "' + Path(filename).name + '"`',
                ),
                *diagnostics,
            ]
        raise ProtocolError(diagnostics)
    return Protocol(checked, tuple(diagnostics))


def _check(
    syntax: Any, filename: str, folder: PathLike | None, terminology: Terminology | None = None
) -> tuple[CheckedProtocol | None, list[Diagnostic]]:
    """Resolve the libraries the file uses, then check it (diagnostics of both, in order)."""
    from .library import resolve

    path = Path(filename)
    is_file = folder is None and filename not in ("", "-") and path.is_file()
    where = Path(folder) if folder is not None else (path.parent if is_file else None)
    resolved, found = resolve(syntax, where, path if is_file else None)
    checked, diagnostics = check(syntax, resolved, terminology)
    if any(d.is_error for d in found):
        checked = None
    return checked, sorted([*found, *diagnostics], key=sort_key)


def load_protocol(
    path: str | os.PathLike[str], *, terminology: Terminology | None = None
) -> Protocol:
    """Load a ``.rules`` file. Raises `ProtocolError` for a missing, unreadable or bad file.

    `terminology` expands value-set members written with `*` (see `parse_protocol`).
    """
    source = read_source(path)
    return parse_protocol(source.text, source.name, terminology=terminology)


def check_text(
    text: str,
    filename: str = "<string>",
    *,
    folder: PathLike | None = None,
    terminology: Terminology | None = None,
) -> list[Diagnostic]:
    """Every diagnostic of rules text (errors and warnings), without raising.

    A library file (defines and `use`s only, no header) is checked as a library.
    """
    source = Source(filename, normalise(text))
    syntax, diagnostics = parse(source)
    if syntax is None:
        return diagnostics
    checked = _check(syntax, filename, folder, terminology)[1]
    return sorted([*diagnostics, *checked], key=sort_key)


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
        engine_options: Mapping[str, Any] | None = None,
    ) -> Screening:
        """Screen a whole population; see the screening guide. Needs the ``[screen]`` extra.

        `data` is a list or iterator of patient records (with an ``"id"``), a JSON Lines file,
        the columnar layout (a folder or a Parquet / CSV file) or polars DataFrames in it.
        A malformed record gets status ``error`` with its diagnostics; nothing is dropped.

        With ``engine="duckdb"`` a layout path, a DuckDB database file or a DuckDB connection
        is screened in place (DuckDB reads it; only the result comes into Python), and
        `engine_options` may hold ``memory_limit`` (``"1GB"``), ``temp_directory`` and
        ``threads``. With ``engine="spark"`` a path Spark reads (a folder, ``file:``,
        ``s3a://``, ``hdfs://``) holding the layout's Parquet is read by Spark; the options are
        ``session`` (a ``SparkSession``; default the active one) and ``master``.
        """
        from .screening import screen

        return screen(
            self,
            data,
            as_of,
            engine,
            ignore_unknown=ignore_unknown,
            progress=progress,
            engine_options=engine_options,
        )

    def __repr__(self) -> str:
        return f"<Protocol {self.id}: {len(self.facts)} facts, {len(self.criteria)} criteria>"
