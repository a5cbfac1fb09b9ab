"""Test files: ``NAME.tests.toml`` beside ``NAME.rules``, read and checked (docs/testing-rules.md).

A tests file is TOML (format version 1, described by ``schemas/tests.schema.json``)::

    version = 1

    [[case]]
    name = "eligible"
    as_of = 2026-03-02T08:00:00Z
    status = "eligible"
    patient = "patients/eligible.json"        # a JSON file beside this one, or a table:

    [[case]]
    name = "young-low-egfr"
    base = "eligible"                         # start from that case's patient and as_of
    without = ["lvef"]                        # facts removed (absent: unknown)
    status = "ineligible"
    outcomes = { E9 = "met" }                 # only the criteria listed are checked
    [case.patient]                            # facts added or replaced
    age = 40
    baseline_egfr = 45

Loading checks the shape of every case (names, types, known keys) and, against the protocol,
that every criterion and fact it names exists; problems are `Diagnostic`s (PR630-PR634) that
point at the case in the file. TOML dates and datetimes in a patient become ISO strings, so a
case's patient is exactly the JSON record `protocol-rules eval` would read.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import frozen

from ..diagnostics import Diagnostic, RulesError, error
from ..source import Source, Span

if TYPE_CHECKING:
    from ..protocol import Protocol

#: The format version this module reads.
FORMAT_VERSION = 1
SUFFIX = ".tests.toml"
STATUSES = ("eligible", "ineligible", "indeterminate")
OUTCOMES = ("met", "not_met", "unknown")
_TOP_KEYS = {"version", "protocol", "as_of", "case"}
_CASE_KEYS = {
    "name",
    "description",
    "base",
    "without",
    "patient",
    "as_of",
    "status",
    "error",
    "outcomes",
    "missing",
    "deciding",
}
_PLURAL = {"criterion": "criteria", "fact": "facts"}
_CASE_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*case[ \t]*\]\]", re.MULTILINE)


@frozen
class TestCase:
    """One case: a patient, when to evaluate it, and what the protocol must say about it.

    `patient` is the record (a dict, as JSON would give it), after `base` and `without`;
    `patient_file` the file it was read from, if any. `status` or `error` (a PR4xx code the
    record must be refused with) is set; `outcomes`, `missing` and `deciding` are checked only
    when given.
    """

    __test__ = False  # not a pytest test class

    name: str
    patient: Mapping[str, Any]
    span: Span
    as_of: str | None = None
    status: str | None = None
    error: str | None = None
    outcomes: Mapping[str, str] = {}
    missing: tuple[str, ...] | None = None
    deciding: tuple[str, ...] | None = None
    description: str | None = None
    patient_file: str | None = None
    base: str | None = None


@frozen
class TestFile:
    """A loaded tests file: where it is, the protocol it tests and its cases, in file order."""

    __test__ = False

    path: str
    protocol_path: str
    cases: tuple[TestCase, ...]
    source: Source


def path_of_tests(protocol_path: str | os.PathLike[str]) -> Path:
    """``protocols/x.rules`` -> ``protocols/x.tests.toml``."""
    path = Path(protocol_path)
    stem = path.name[: -len(".rules")] if path.name.endswith(".rules") else path.stem
    return path.with_name(stem + SUFFIX)


def path_of_protocol(tests_path: str | os.PathLike[str]) -> Path:
    """``protocols/x.tests.toml`` -> ``protocols/x.rules``."""
    path = Path(tests_path)
    stem = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem
    return path.with_name(stem + ".rules")


def read_tests(path: str | os.PathLike[str]) -> tuple[TestFile | None, list[Diagnostic]]:
    """Read and check the shape of a tests file (not yet against its protocol)."""
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return None, [error("PR630", f"cannot read `{name}`: {reason}", None, path=name)]
    return parse_tests(text, name)


def parse_tests(text: str, name: str = "<tests>") -> tuple[TestFile | None, list[Diagnostic]]:
    """Parse tests-file text; `name` is its path (patient files are relative to its folder)."""
    source = Source(name, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [_toml_error(source, exc)]
    return _Reader(source, name).read(data)


def _toml_error(source: Source, exc: tomllib.TOMLDecodeError) -> Diagnostic:
    message = str(exc)
    found = re.search(r"\(at line (\d+), column (\d+)\)", message)
    span = None
    if found:
        line, column = int(found[1]), int(found[2])
        starts = [0, *(i + 1 for i, ch in enumerate(source.text) if ch == "\n")]
        if line - 1 < len(starts):
            start = min(starts[line - 1] + column - 1, len(source.text))
            span = source.span(start, min(start + 1, len(source.text)))
        message = message[: found.start()].strip()
    return error(
        "PR630",
        f"the tests file is not valid TOML: {message.lower()}",
        span,
        path=source.name,
        help="see https://toml.io; a case starts with `[[case]]`",
    )


class _Reader:
    """Checks the decoded TOML against format version 1 and builds `TestCase`s."""

    def __init__(self, source: Source, name: str) -> None:
        self.source = source
        self.folder = Path(name).parent
        self.diags: list[Diagnostic] = []
        self.by_name: dict[str, TestCase] = {}
        self.case_spans = self._case_spans()

    def _case_spans(self) -> list[Span]:
        text = self.source.text
        starts = [m.start() for m in _CASE_HEADER.finditer(text)]
        ends = [*starts[1:], len(text)] if starts else []
        return [self.source.span(a, b) for a, b in zip(starts, ends, strict=True)]

    def _header_span(self, index: int) -> Span:
        if index < len(self.case_spans):
            span = self.case_spans[index]
            end = self.source.text.find("\n", span.start)
            return self.source.span(span.start, end if end >= 0 else span.end)
        return self.source.span(0, 0)

    def _key_span(self, index: int | None, key: str) -> Span:
        """The `key = …` line inside case `index` (or at the top), else the case header."""
        if index is None:
            region = self.source.span(0, self.case_spans[0].start if self.case_spans else 0)
        elif index < len(self.case_spans):
            region = self.case_spans[index]
        else:
            return self.source.span(0, 0)
        pattern = re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=.*$", re.MULTILINE)
        found = pattern.search(self.source.text, region.start, region.end)
        if found:
            return self.source.span(
                found.start() + len(found[0]) - len(found[0].lstrip()), found.end()
            )
        return self._header_span(index) if index is not None else region

    def fail(self, message: str, span: Span | None, help: str | None = None) -> None:
        self.diags.append(error("PR631", message, span, help=help, path=self.source.name))

    def read(self, data: dict[str, Any]) -> tuple[TestFile | None, list[Diagnostic]]:
        for key in sorted(set(data) - _TOP_KEYS):
            self.fail(
                f"unknown key `{key}` at the top of the tests file",
                self._key_span(None, key),
                "the top level holds `version`, `protocol`, `as_of` and `[[case]]` tables",
            )
        version = data.get("version")
        if version != FORMAT_VERSION:
            shown = "missing" if version is None else f"`{version!r}`"
            self.fail(
                f"the format version is {shown}; this version of protocol-rules reads version "
                f"{FORMAT_VERSION}",
                self._key_span(None, "version") if version is not None else None,
                f"start the file with `version = {FORMAT_VERSION}`",
            )
        protocol = data.get("protocol")
        if protocol is not None and not isinstance(protocol, str):
            self.fail("`protocol` is a path (a string)", self._key_span(None, "protocol"))
            protocol = None
        default_as_of = self._instant(data.get("as_of"), None, "as_of")
        cases_data = data.get("case", [])
        if not isinstance(cases_data, list) or not all(isinstance(c, dict) for c in cases_data):
            self.fail("`case` is a list of tables: write each case under `[[case]]`", None)
            cases_data = []
        if not cases_data:
            self.fail("the tests file has no cases", None, "add a `[[case]]` table")
        cases: list[TestCase | None] = []
        for i, data_i in enumerate(cases_data):
            case = self._case(i, data_i, default_as_of)
            if case is not None and case.name in self.by_name:
                self.fail(
                    f"two cases are named `{case.name}`",
                    self._key_span(i, "name"),
                    "give each case its own name",
                )
            elif case is not None:
                self.by_name[case.name] = case
            cases.append(case)
        if self.diags:
            return None, self.diags
        name = self.source.name
        target = self.folder / protocol if protocol else path_of_protocol(name)
        built = tuple(c for c in cases if c is not None)
        return TestFile(name, os.fspath(target), built, self.source), []

    def _case(self, i: int, data: dict[str, Any], default_as_of: str | None) -> TestCase | None:
        before = len(self.diags)
        for key in sorted(set(data) - _CASE_KEYS):
            self.fail(
                f"unknown key `{key}` in a case",
                self._key_span(i, key),
                "a case holds name, description, base, patient, without, as_of, status "
                "(or error), outcomes, missing and deciding",
            )
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            self.fail(
                "a case needs a `name` (a string)",
                self._header_span(i),
                'add e.g. `name = "eligible-adult"`',
            )
            name = f"case {i + 1}"
        base = self._base(i, data.get("base"), name)
        patient, patient_file = self._patient(i, data.get("patient"), base)
        without = self._names(i, data, "without", name)
        if patient is not None and without:
            patient = {k: v for k, v in patient.items() if k not in without}
        status, error_code = data.get("status"), data.get("error")
        if (status is None) == (error_code is None):
            self.fail(
                f"case `{name}` needs exactly one of `status` and `error`",
                self._header_span(i),
                'add `status = "eligible"` (or "ineligible", "indeterminate"), or '
                '`error = "PR405"` for a record that must be refused',
            )
        if status is not None and status not in STATUSES:
            self.fail(
                f"case `{name}`: unknown status `{status}`",
                self._key_span(i, "status"),
                "write eligible, ineligible or indeterminate",
            )
        if error_code is not None and not (
            isinstance(error_code, str) and re.fullmatch(r"PR4\d\d", error_code)
        ):
            self.fail(
                f"case `{name}`: `error` is a patient-data code such as `PR405`",
                self._key_span(i, "error"),
            )
        outcomes = data.get("outcomes", {})
        if not isinstance(outcomes, dict) or not all(v in OUTCOMES for v in outcomes.values()):
            self.fail(
                f"case `{name}`: `outcomes` maps criterion ids to met, not_met or unknown",
                self._key_span(i, "outcomes"),
                'write e.g. `outcomes = { I1 = "met", E9 = "not_met" }`',
            )
            outcomes = {}
        missing = self._names(i, data, "missing", name)
        deciding = self._names(i, data, "deciding", name)
        description = data.get("description")
        if description is not None and not isinstance(description, str):
            self.fail(f"case `{name}`: `description` is a string", self._key_span(i, "description"))
        as_of = self._instant(data.get("as_of"), i, "as_of")
        as_of = as_of or (base.as_of if base is not None else None) or default_as_of
        if len(self.diags) > before or patient is None:
            return None
        return TestCase(
            name=name,
            patient=patient,
            span=self._header_span(i),
            as_of=as_of,
            status=status,
            error=error_code,
            outcomes=dict(outcomes),
            missing=missing,
            deciding=deciding,
            description=description,
            patient_file=patient_file,
            base=base.name if base is not None else None,
        )

    def _names(self, i: int, data: dict[str, Any], key: str, case: str) -> tuple[str, ...] | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(
                f"case `{case}`: `{key}` is a list of names",
                self._key_span(i, key),
                f'write e.g. `{key} = ["lvef"]`',
            )
            return None
        return tuple(value)

    def _instant(self, value: Any, i: int | None, key: str) -> str | None:
        if value is None:
            return None
        if isinstance(value, dt.datetime | dt.date | str):
            return _json_value(value)
        self.fail(f"`{key}` is a date-time such as 2026-03-02T08:00:00Z", self._key_span(i, key))
        return None

    def _base(self, i: int, value: Any, case: str) -> TestCase | None:
        if value is None:
            return None
        found = self.by_name.get(value) if isinstance(value, str) else None
        if found is None:
            from ..suggestions import did_you_mean

            self.fail(
                f"case `{case}`: `base` names no case above it: `{value}`",
                self._key_span(i, "base"),
                did_you_mean(str(value), self.by_name)
                or "`base` names an earlier case whose patient this one starts from",
            )
        return found

    def _patient(
        self, i: int, value: Any, base: TestCase | None
    ) -> tuple[dict[str, Any] | None, str | None]:
        if base is not None and (value is None or isinstance(value, dict)):
            merged = {**base.patient, **_json_value(value or {})}
            return merged, base.patient_file
        if isinstance(value, dict):
            return _json_value(value), None
        if isinstance(value, str):
            path = self.folder / value
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                self.diags.append(
                    error(
                        "PR633",
                        f"cannot read the patient file `{value}`: {reason}",
                        self._key_span(i, "patient"),
                        path=self.source.name,
                        help="the path is relative to the tests file's folder",
                    )
                )
                return None, None
            except json.JSONDecodeError as exc:
                self.diags.append(
                    error(
                        "PR633",
                        f"the patient file `{value}` is not valid JSON: {exc.msg} "
                        f"(`{path}:{exc.lineno}:{exc.colno}`)",
                        self._key_span(i, "patient"),
                        path=f"{path}:{exc.lineno}:{exc.colno}",
                    )
                )
                return None, None
            return record, os.fspath(path)
        self.fail(
            "a case needs a `patient`: an inline table or the path of a JSON file",
            self._header_span(i),
            'write `patient = "patients/eligible.json"`, or the facts under `[case.patient]`',
        )
        return None, None


def _json_value(value: Any) -> Any:
    """A TOML value as JSON would hold it: dates and datetimes become ISO strings."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() == dt.timedelta(0):
            return value.replace(tzinfo=None).isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def check_against(tests: TestFile, protocol: Protocol) -> list[Diagnostic]:
    """PR632 for each criterion id or fact name a case names that the protocol does not have."""
    from ..suggestions import did_you_mean

    ids = [c.id for c in protocol.criteria]
    facts = [f.name for f in protocol.facts]
    diags = []
    for case in tests.cases:
        named: list[tuple[str, Sequence[str], str]] = [
            *((cid, ids, "criterion") for cid in case.outcomes),
            *((cid, ids, "criterion") for cid in case.deciding or ()),
            *((fact, facts, "fact") for fact in case.missing or ()),
        ]
        for name, known, what in named:
            if name not in known:
                diags.append(
                    error(
                        "PR632",
                        f"case `{case.name}` names {what} `{name}`, which "
                        f"`{protocol.id}` does not have",
                        _name_span(tests.source, case.span, name),
                        path=tests.path,
                        help=did_you_mean(name, known)
                        or f"the {_PLURAL[what]} are: {', '.join(known)}",
                    )
                )
    return diags


def _name_span(source: Source, header: Span, name: str) -> Span:
    """Where a case (starting at `header`) writes `name`: as a string or as a key; else the
    case's header."""
    text = source.text
    following = _CASE_HEADER.search(text, header.end)
    end = following.start() if following else len(text)
    quoted = re.escape(json.dumps(name))
    pattern = re.compile(rf"{quoted}|(?<![\w\"]){re.escape(name)}(?=[ \t]*=)")
    found = pattern.search(text, header.start, end)
    return source.span(found.start(), found.end()) if found else header


def load_tests(path: str | os.PathLike[str], protocol: Protocol) -> TestFile:
    """Read a tests file and check it against `protocol`; raises `RulesError` if it is bad."""
    tests, diags = read_tests(path)
    if tests is None:
        raise RulesError(diags)
    diags = check_against(tests, protocol)
    if diags:
        raise RulesError(diags)
    return tests
