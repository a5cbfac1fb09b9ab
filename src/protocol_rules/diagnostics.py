"""Diagnostics: what every stage reports about a rules file or a patient record.

Passes return `Diagnostic` values; the API edge raises them together inside a `RulesError`.
Codes are stable and grouped: ``PR1xx`` syntax, ``PR2xx`` names, ``PR3xx`` types and units,
``PR4xx`` patient data, ``PR5xx`` screening populations and SQL engines, ``PR6xx`` the
authoring tools (lint findings, test files), ``PR7xx`` the language server, ``PR8xx`` data maps
and clinical data (OMOP CDM, FHIR). Each code has an entry on the docs
site (docs/diagnostics.md).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from .source import Span


class Severity(enum.StrEnum):
    """How bad a diagnostic is: an error stops the protocol from loading, a warning does not."""

    ERROR = "error"
    WARNING = "warning"


#: Every diagnostic code with a one-line summary; the docs page explains each with an example.
CODES: dict[str, str] = {
    # files
    "PR001": "cannot read a file",
    # syntax
    "PR101": "syntax error: unexpected token",
    "PR102": "syntax error: unexpected character",
    "PR103": "syntax error: unexpected end of file",
    "PR104": "unterminated string or unit",
    "PR105": "`==`, `=<`, `=>` or `<>` instead of a comparison operator",
    "PR106": "reserved word used as a name",
    "PR107": "expression nested too deeply",
    "PR108": "malformed literal (number, date or unit)",
    "PR109": "missing protocol header",
    "PR110": "misspelt duration word",
    # syntax of calculation
    "PR130": "`**` instead of `^`",
    "PR131": "`if` without `then` or `else`",
    # syntax: time, second edition
    "PR120": "`never` compared as a value instead of tested with `is never`",
    # syntax: terminology (docs/language/codes.md)
    "PR140": "malformed code (not the syntax or check digit of its system)",
    # names
    "PR201": "unknown name",
    "PR202": "duplicate criterion id",
    "PR203": "duplicate fact or define name",
    "PR204": "cycle among defines",
    "PR205": "name not in lower case",
    "PR206": "unknown function",
    "PR207": "unknown choice",
    "PR208": "duplicate choice or metadata key",
    "PR209": "fact declared but never used",
    "PR210": "define never used",
    "PR211": "protocol without criteria",
    "PR213": "expression nested too deeply through defines",
    # functions and libraries
    "PR230": "recursive function",
    "PR231": "unknown library",
    "PR232": "name clash between a library, the protocol or a built-in",
    "PR233": "library file refused (outside the protocol's folder, not `.rules`)",
    "PR234": "cycle among used files",
    "PR235": "library holds more than defines",
    "PR236": "function body reads a fact",
    "PR237": "function used as a value, or a value called",
    "PR238": "duplicate parameter",
    "PR239": "library used for nothing",
    # names: time, second edition
    "PR220": "`value` outside a `where` condition",
    # names: terminology
    "PR240": "unknown code system",
    "PR241": "unknown value set",
    "PR242": "value set name given twice, or to a fact or define too",
    "PR243": "cycle among value sets",
    "PR244": "value set never used",
    "PR245": "code listed twice in a value set",
    # types and units
    "PR301": "type mismatch",
    "PR302": "condition is not a boolean",
    "PR303": "invalid UCUM unit",
    "PR304": "incompatible units (different dimensions)",
    "PR305": "substance conversion needs a molar mass",
    "PR306": "series read without a window",
    "PR307": "window used outside an aggregate",
    "PR308": "malformed range",
    "PR309": "wrong number of arguments",
    "PR310": "option does not apply to this type",
    "PR311": "value outside the declared range",
    "PR312": "mixed or empty set",
    "PR313": "quantity fact without a range",
    "PR314": "constant too large: it overflows",
    "PR315": "unit of a calculation out of bounds",
    # calculation
    "PR330": "bad power: quantity exponent, or non-integer power of a quantity",
    "PR331": "branches of `if` (or operands of `first_known`) of different types",
    "PR332": "type of `unknown` cannot be inferred",
    "PR333": "argument does not fit its parameter (type or unit)",
    "PR334": "bad argument of a math function",
    "PR335": "comparison with `unknown`",
    "PR336": "body does not match the declared type",
    "PR337": "constant calculation without a value (domain error)",
    # types: time, second edition
    "PR320": "calendar duration that is not a whole number of months",
    "PR321": "window bound that is not a date or datetime",
    "PR322": "`is never` on a date that cannot be never",
    "PR323": "`where` on something that is not a window",
    "PR324": "`consecutive` without a `where` condition",
    "PR325": "duration word in a computed duration counts as a definite length",
    # types: terminology
    "PR340": "empty value set",
    "PR341": "code with `*` where one code is meant",
    "PR342": "codes mixed with values of another type",
    "PR343": "`*` on a code of a system without a hierarchy",
    "PR344": "descendants of a code not expanded (no terminology given)",
    # patient data
    "PR401": "patient record is not a JSON object",
    "PR402": "undeclared fact",
    "PR403": "wrong type of value",
    "PR404": "number is NaN or infinite",
    "PR405": "value outside the declared range",
    "PR406": "unknown or incompatible unit",
    "PR407": "malformed date or datetime",
    "PR408": "observation without `at`",
    "PR409": "choice not declared",
    "PR410": "missing `as_of`",
    "PR411": "malformed observation or quantity object",
    "PR412": "key given twice in a patient JSON object",
    "PR413": "patient JSON nested too deeply",
    "PR414": "observations after `as_of` not used",
    # patient data: time, second edition
    "PR420": "`never` for a date that is not declared `or never`",
    "PR421": "date of a `past` fact after `as_of`",
    # patient data: terminology
    "PR430": "malformed code value",
    "PR431": "code without a system",
    "PR432": "unknown code system in patient data",
    "PR433": "code that does not fit its system's syntax",
    # screening
    "PR501": "screening needs the `[screen]` extra (polars)",
    "PR502": "unknown screening engine",
    "PR503": "construct the engine cannot screen",
    "PR504": "criterion id clashes with a result column",
    "PR505": "unknown criterion in `without`",
    "PR506": "unknown result file type",
    "PR507": "data of a kind screening cannot read",
    "PR508": "unreadable data file or folder",
    "PR509": "layout table without a required column",
    "PR510": "unknown column in the layout",
    "PR511": "fact in the wrong table of the layout",
    "PR512": "patient listed twice in the patients table",
    "PR513": "observations of a patient not in the patients table",
    "PR520": "construct the SQL compiler cannot compile",
    "PR521": "something the SQL dialect cannot express",
    "PR522": "criterion id clashes with a SQL result column",
    "PR523": "unknown SQL dialect",
    "PR524": "the SQL engine's extra is not installed",
    "PR525": "database or table the SQL query cannot read",
    "PR526": "engine option the engine does not take",
    "PR527": "data Spark cannot read",
    "PR528": "the engine could not run the screening query",
    # authoring tools: lint findings (protocol-rules lint)
    "PR601": "criterion that can never be met",
    "PR602": "criterion that can never be not met",
    "PR603": "inclusion that implies an exclusion",
    "PR604": "protocol under which no patient can be eligible",
    "PR605": "redundant sub-expression",
    "PR606": "comparison decided by the declared range",
    "PR607": "two inclusions that no patient meets together",
    "PR608": "two exclusions of which every patient meets one",
    "PR620": "malformed `# lint: allow` comment",
    "PR621": "`# lint: allow` comment that silences nothing",
    # authoring tools: test files, lint and diff
    "PR630": "tests file unreadable or not TOML",
    "PR631": "tests file does not follow the format",
    "PR632": "unknown criterion or fact in a test case",
    "PR633": "patient file of a test case unreadable",
    "PR634": "no tests file beside the protocol",
    "PR640": "`lint` and `diff` need the `[lint]` extra (z3-solver)",
    # editors
    "PR701": "the language server needs the `[lsp]` extra (pygls)",
    # data maps (docs/clinical-data.md#the-data-map)
    "PR801": "data map unreadable or not TOML",
    "PR802": "data map format version missing or not supported",
    "PR803": "data map entry for a fact the protocol does not declare",
    "PR804": "unknown data model or source in a data map",
    "PR805": "unknown key in a data map",
    "PR806": "unknown `take` or person field in a data map",
    "PR807": "data map entry that cannot give its fact's type",
    "PR808": "malformed `within` or `absent` in a data map",
    "PR809": "data map entry without codes",
    "PR810": "malformed code in a data map",
    "PR811": "facts a data map leaves unknown",
    "PR812": "data map code not in the data's vocabulary",
    "PR813": "`*` on a data map code without descendants in its data model",
    # clinical data: OMOP CDM and FHIR adapters
    "PR850": "clinical data source cannot be read",
    "PR851": "OMOP table without a required column",
    "PR852": "clinical data row without a value",
    "PR853": "clinical data unit that is not UCUM or does not fit the fact",
    "PR854": "clinical data row without a time",
    "PR855": "invalid FHIR resource",
    "PR856": "FHIR resource without a patient",
    "PR857": "FHIR input needs the `[fhir]` extra",
    "PR858": "person not found in the clinical data",
    "PR859": "OMOP CDM without CONCEPT_ANCESTOR for a `*` code of the data map",
}


@attrs.frozen
class Related:
    """Another place a diagnostic is about, such as the first of two duplicates."""

    span: Span
    message: str

    def to_dict(self) -> dict[str, object]:
        span = self.span
        return {
            "message": self.message,
            "file": span.source.name,
            "line": span.line,
            "column": span.column,
            "end_line": span.end_line,
            "end_column": span.end_column,
        }


@attrs.frozen
class Diagnostic:
    """One finding: a stable code, a severity, a message, where, and what to do about it.

    The message is one lowercase line with user input in backticks; `help` says what to
    write instead; `label` is the short text under the underlined span; `related` lists other
    places it is about (the first occurrence of a duplicate), each shown with its own line.
    """

    code: str
    severity: Severity
    message: str
    span: Span | None
    help: str | None = None
    label: str | None = None
    path: str | None = None  # JSON path, for patient-data diagnostics
    notes: tuple[str, ...] = ()
    related: tuple[Related, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def location(self) -> str:
        """``file:line:col`` for rules files, the JSON path for patient data."""
        if self.span is not None:
            return str(self.span)
        return self.path or "<input>"

    def __str__(self) -> str:
        return f"{self.location()}: {self.severity.value}[{self.code}]: {self.message}"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form, as printed by ``protocol-rules check --format json``."""
        span = self.span
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "file": span.source.name if span else None,
            "line": span.line if span else None,
            "column": span.column if span else None,
            "end_line": span.end_line if span else None,
            "end_column": span.end_column if span else None,
            "path": self.path,
            "help": self.help,
            "label": self.label,
            "related": [r.to_dict() for r in self.related],
        }


def error(code: str, message: str, span: Span | None, **kw: object) -> Diagnostic:
    """A diagnostic of severity error."""
    assert code in CODES, code
    return Diagnostic(code, Severity.ERROR, message, span, **kw)  # type: ignore[arg-type]


def warning(code: str, message: str, span: Span | None, **kw: object) -> Diagnostic:
    """A diagnostic of severity warning."""
    assert code in CODES, code
    return Diagnostic(code, Severity.WARNING, message, span, **kw)  # type: ignore[arg-type]


def file_error(path: str, exc: Exception, *, writing: bool = False) -> Diagnostic:
    """PR001 for a file that cannot be read (or written): missing, a directory, not UTF-8…"""
    if isinstance(exc, UnicodeDecodeError):
        reason = f"it is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        help_ = "save the file as UTF-8"
    elif isinstance(exc, IsADirectoryError):
        reason, help_ = "it is a directory", "name a file, e.g. `protocols/nct04194671.rules`"
    elif isinstance(exc, FileNotFoundError):
        reason, help_ = "no such file", "check the path and the current directory"
    elif isinstance(exc, PermissionError):
        reason, help_ = "permission denied", "check the file's permissions"
    else:
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        help_ = None
    verb = "write" if writing else "read"
    return error("PR001", f"cannot {verb} `{path}`: {reason}", None, path=path, help=help_)


def sort_key(d: Diagnostic) -> tuple[str, int, str]:
    return (d.span.source.name if d.span else "", d.span.start if d.span else 0, d.code)


class RulesError(Exception):
    """The one base class of every error a user can cause. Carries its diagnostics.

    ``str(error)`` shows every diagnostic as ``protocol-rules check`` prints it (source line,
    underline, label, help), so a traceback in an embedding application shows the fix, as
    Python's own `SyntaxError` does; ``error.summary`` is the first one on one line.
    """

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        first = next(iter(self.errors), self.diagnostics[0] if self.diagnostics else None)
        more = len(self.errors) - 1
        summary = str(first) if first else "rules error"
        if more > 0:
            summary += f" (and {more} more error{'s' if more > 1 else ''})"
        self.summary = summary
        super().__init__(summary)

    def __str__(self) -> str:
        if not self.diagnostics:
            return self.summary
        from .render.diagnostics import render_diagnostics

        return f"{self.summary}\n\n{render_diagnostics(self.diagnostics)}"

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if not d.is_error)


class ProtocolError(RulesError):
    """A rules file failed to load: syntax, names, types or units. See `.diagnostics`."""


class PatientDataError(RulesError):
    """A patient record is malformed. Each diagnostic names the fact and the JSON path."""

    @property
    def fact(self) -> str | None:
        """The fact the first error is about, if any."""
        path = self.diagnostics[0].path if self.diagnostics else None
        if not path or not path.startswith("$."):
            return None
        return path[2:].split(".")[0].split("[")[0]
