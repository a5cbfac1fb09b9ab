"""Data maps: where each fact of a protocol comes from in a clinical data model
(docs/clinical-data.md#the-data-map).

A data map is a TOML file beside the protocol::

    data_map = 1                     # the format version
    protocol = "NCT04194671"         # the id of the protocol it maps
    model = "omop"                   # "omop" (OMOP CDM 5.4) or "fhir" (FHIR R4)

    [facts.serum_creatinine]
    from = "measurement"             # an OMOP table, or a FHIR resource type
    codes = ["OMOP#3016723", "OMOP#3051825"]
    take = "all"                     # all | latest | first | any

A code may end with ``*``: the code and its descendants, as in a `codes` declaration of the
language (OMOP concepts through the CDM's CONCEPT_ANCESTOR, ICD-10-CM and other ``prefix``
systems by prefix; `codes.System.hierarchy`).

`load_data_map` reads and checks it against the protocol; every problem is a `Diagnostic`
(PR801-PR849) pointing at the file's line and column. The adapters (`sources.omop`,
`sources.fhir`) turn rows into patient records through the checked `DataMap`.
"""

from __future__ import annotations

import os
import re
import tomllib
from typing import Any

import attrs

from .check.types import BoolT, ChoiceT, CodeT, NumT, QtyT, SeriesT, SetT, TimeT
from .codes import SYSTEMS, CodeValueError, read_code, split
from .diagnostics import Diagnostic, RulesError, error, warning
from .source import Source, Span
from .suggestions import did_you_mean

__all__ = ["DataMap", "DataMapError", "FactMap", "load_data_map", "parse_data_map"]

VERSION = 1
MODELS = ("omop", "fhir")
#: The tables (OMOP) and resource types (FHIR) a fact may come from; `person` / `Patient` give
#: the person's own fields.
SOURCES: dict[str, tuple[str, ...]] = {
    "omop": (
        "person",
        "measurement",
        "observation",
        "condition_occurrence",
        "drug_exposure",
        "procedure_occurrence",
    ),
    "fhir": (
        "Patient",
        "Observation",
        "Condition",
        "MedicationRequest",
        "MedicationStatement",
        "Procedure",
    ),
}
PERSON = {"omop": "person", "fhir": "Patient"}
PERSON_FIELDS = ("age", "birth_date", "sex")
TAKES = ("all", "latest", "first", "any")
FACT_KEYS = ("from", "codes", "take", "field", "within", "absent", "note")
TOP_KEYS = ("data_map", "protocol", "model", "description", "facts")
DAYS = {"hour": 1 / 24, "day": 1.0, "week": 7.0, "month": 30.4375, "year": 365.25}


class DataMapError(RulesError):
    """A data map failed to load: TOML syntax, or entries that do not fit the protocol."""


@attrs.frozen
class FactMap:
    """Where one fact comes from: a source, the codes that select its rows, how to combine
    them (`take`), a person field, a look-back period (`within`, seconds) and what no row
    means (`absent`: ``"unknown"`` or ``"false"``).

    `descendants` are the codes of `codes` written with ``*``: they select their descendants
    too (`selects`)."""

    fact: str
    source: str
    codes: tuple[str, ...] = ()
    take: str = "all"
    field: str | None = None
    within: float | None = None
    absent: str = "unknown"
    descendants: tuple[str, ...] = ()

    def prefixes(self) -> tuple[str, ...]:
        """The codes of `descendants` whose system is hierarchical by prefix (ICD-10-CM, …):
        a row's code selects when it starts with one of them."""
        return tuple(c for c in self.descendants if SYSTEMS[split(c)[0]].hierarchy == "prefix")


@attrs.frozen
class DataMap:
    """A checked data map: the model, the protocol's facts it maps, and its warnings (among them
    the facts it leaves unknown)."""

    path: str
    model: str
    protocol_id: str
    facts: tuple[FactMap, ...]
    unmapped: tuple[str, ...]
    warnings: tuple[Diagnostic, ...] = ()
    protocol: Any = attrs.field(default=None, repr=False, eq=False)

    def fact(self, name: str) -> FactMap | None:
        return next((f for f in self.facts if f.fact == name), None)


def load_data_map(path: str | os.PathLike[str], protocol: Any) -> DataMap:
    """Read and check the data map at `path` for `protocol` (a `Protocol`).

    Raises `DataMapError` carrying every error; warnings (facts left unknown, …) are kept in
    `DataMap.warnings`.
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DataMapError(
            [error("PR801", f"cannot read data map `{name}`: {reason}", None, path=name)]
        ) from None
    return parse_data_map(text, protocol, name)


def parse_data_map(text: str, protocol: Any, filename: str = "<data map>") -> DataMap:
    """`load_data_map` on text."""
    source = Source(filename, text)
    where = _Locator(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataMapError([_toml_error(source, exc)]) from None
    diags: list[Diagnostic] = []
    _check_top(data, where, protocol, diags)
    model = data.get("model") if data.get("model") in MODELS else None
    facts: list[FactMap] = []
    declared = {f.name: f for f in protocol.facts}
    entries = data.get("facts", {})
    if not isinstance(entries, dict):
        diags.append(_err("PR802", "`facts` is a table of facts", where.key(None, "facts")))
        entries = {}
    for name, entry in entries.items():
        span = where.table(name)
        if name not in declared:
            guess = did_you_mean(name, list(declared))
            diags.append(
                _err(
                    "PR803",
                    f"`{name}` is not a fact of protocol {protocol.id}",
                    span,
                    help=guess if guess else "map a fact the protocol declares",
                    label="unknown fact",
                )
            )
            continue
        if not isinstance(entry, dict):
            diags.append(_err("PR802", f"`facts.{name}` is a table", span))
            continue
        if model is not None:
            mapped = _fact_map(name, entry, declared[name], model, where, diags)
            if mapped is not None:
                facts.append(mapped)
    if any(d.is_error for d in diags):
        raise DataMapError(diags)
    unmapped = tuple(f.name for f in protocol.facts if f.name not in entries)
    warnings = list(diags)
    if unmapped:
        warnings.append(
            warning(
                "PR811",
                f"{len(unmapped)} facts have no source in this data map and stay unknown: "
                + ", ".join(f"`{n}`" for n in unmapped),
                where.key(None, "model"),
                help="map them if the data holds them; otherwise results list them as missing",
                label="these facts stay unknown",
            )
        )
    return DataMap(
        filename,
        str(model),
        str(data.get("protocol")),
        tuple(facts),
        unmapped,
        tuple(warnings),
        protocol,
    )


def _check_top(
    data: dict[str, Any], where: _Locator, protocol: Any, diags: list[Diagnostic]
) -> None:
    version = data.get("data_map")
    if version != VERSION:
        diags.append(
            _err(
                "PR802",
                "missing `data_map = 1`"
                if version is None
                else f"data map format `{version}` is not supported",
                where.key(None, "data_map"),
                help="start the file with `data_map = 1` (the format version this release reads)",
            )
        )
    model = data.get("model")
    if model not in MODELS:
        diags.append(
            _err(
                "PR804",
                f"unknown data model `{model}`" if model is not None else "missing `model`",
                where.key(None, "model"),
                help='write `model = "omop"` (OMOP CDM 5.4) or `model = "fhir"` (FHIR R4)',
                label="not a data model",
            )
        )
    named = data.get("protocol")
    if named is not None and named != protocol.id:
        diags.append(
            _err(
                "PR803",
                f"this data map is for protocol `{named}`, not `{protocol.id}`",
                where.key(None, "protocol"),
                help="use the data map written for this protocol",
                label="another protocol",
            )
        )
    for key in data:
        if key not in TOP_KEYS:
            diags.append(
                _err(
                    "PR805",
                    f"unknown key `{key}`",
                    where.key(None, key),
                    help="the keys are " + ", ".join(f"`{k}`" for k in TOP_KEYS),
                )
            )


def _fact_map(
    name: str,
    entry: dict[str, Any],
    fact: Any,
    model: str,
    where: _Locator,
    diags: list[Diagnostic],
) -> FactMap | None:
    before = len(diags)
    for key in entry:
        if key not in FACT_KEYS:
            guess = did_you_mean(key, list(FACT_KEYS))
            diags.append(
                _err(
                    "PR805",
                    f"unknown key `{key}` in `facts.{name}`",
                    where.key(name, key),
                    help=guess
                    if guess
                    else "the keys are " + ", ".join(f"`{k}`" for k in FACT_KEYS),
                )
            )
    source = entry.get("from")
    if source not in SOURCES[model]:
        guess = did_you_mean(str(source), list(SOURCES[model])) if source else None
        diags.append(
            _err(
                "PR804",
                f"`{source}` is not a source of the {model} model"
                if source is not None
                else f"`facts.{name}` has no `from`",
                where.key(name, "from") if source is not None else where.table(name),
                help=guess
                if guess
                else "the sources are " + ", ".join(f"`{s}`" for s in SOURCES[model]),
                label="unknown source",
            )
        )
        return None
    type_ = fact.type
    if source == PERSON[model]:
        field = entry.get("field")
        if field not in PERSON_FIELDS:
            diags.append(
                _err(
                    "PR806",
                    f"`{field}` is not a field of `{source}`"
                    if field is not None
                    else f"`facts.{name}` from `{source}` needs a `field`",
                    where.key(name, "field") if field is not None else where.table(name),
                    help="the fields are `age`, `birth_date` and `sex`",
                )
            )
            return None
        wants = {"age": (QtyT, NumT), "birth_date": (TimeT,), "sex": (ChoiceT,)}[field]
        if not isinstance(type_, wants) or (
            isinstance(type_, QtyT) and field == "age" and not _is_time(type_.unit)
        ):
            diags.append(
                _err(
                    "PR807",
                    f"`{field}` cannot give fact `{name}` of type {type_}",
                    where.key(name, "field"),
                    help={
                        "age": "age fits a quantity in years ('a') or a number",
                        "birth_date": "birth_date fits a date fact",
                        "sex": "sex fits a `one of` fact with `male` and `female`",
                    }[field],
                )
            )
            return None
        return FactMap(name, source, field=field)
    codes, descendants = _codes(name, entry.get("codes"), model, where, diags)
    take = entry.get("take", _default_take(type_))
    if take not in TAKES:
        diags.append(
            _err(
                "PR806",
                f'unknown `take = "{take}"`',
                where.key(name, "take"),
                help="`take` is `all` (a series or set), `latest`, `first` or `any` (a boolean)",
            )
        )
        return None
    if not _take_fits(take, type_):
        diags.append(
            _err(
                "PR807",
                f'`take = "{take}"` cannot give fact `{name}` of type {type_}',
                where.key(name, "take") if "take" in entry else where.table(name),
                help=_take_help(type_),
                label="does not fit the fact",
            )
        )
    within = None
    if "within" in entry:
        within = _duration(entry["within"])
        if within is None:
            diags.append(
                _err(
                    "PR808",
                    f"`within = {entry['within']!r}` is not a period",
                    where.key(name, "within"),
                    help='write a period such as "9 months", "30 days" or "1 year"',
                )
            )
    absent = entry.get("absent", "unknown")
    if absent not in ("unknown", "false") or (absent == "false" and not isinstance(type_, BoolT)):
        diags.append(
            _err(
                "PR808",
                f"`absent = {absent!r}` does not fit fact `{name}`",
                where.key(name, "absent"),
                help='`absent` is "unknown" (the default) or, for a boolean, "false": no row '
                "means the condition is known not to be there",
            )
        )
    if len(diags) > before:
        return None
    return FactMap(name, source, codes, take, None, within, absent, descendants)


def _codes(
    name: str, raw: Any, model: str, where: _Locator, diags: list[Diagnostic]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The canonical codes of `facts.NAME.codes`, and those of them written with ``*``."""
    span = where.key(name, "codes")
    if not isinstance(raw, list) or not raw:
        diags.append(
            _err(
                "PR809",
                f"`facts.{name}` needs `codes`, a non-empty list",
                span if raw is not None else where.table(name),
                help='list the codes that select the rows: codes = ["OMOP#3016723"]'
                if model == "omop"
                else 'list the codes that select the resources: codes = ["LOINC#2160-0"]',
            )
        )
        return (), ()
    out = []
    below = []
    for item in raw:
        if isinstance(item, int) and not isinstance(item, bool) and model == "omop":
            item = f"OMOP#{item}"
        star = isinstance(item, str) and item.endswith("*")
        try:
            code = read_code(item[:-1] if star else item)
        except CodeValueError as exc:
            diags.append(
                _err(
                    "PR810",
                    f"code {item!r} in `facts.{name}`: {exc.message}",
                    span,
                    help=exc.hint or "write SYSTEM#code, e.g. OMOP#3016723 or LOINC#2160-0",
                    label="bad code",
                )
            )
            continue
        out.append(code)
        if star:
            refusal = _no_descendants(code, model)
            if refusal is None:
                below.append(code)
            else:
                diags.append(
                    _err(
                        "PR813",
                        f"`{item}` in `facts.{name}`: {refusal}",
                        span,
                        help=f'write "{code}" without `*`, or list the codes one by one',
                        label="no descendants here",
                    )
                )
    return tuple(dict.fromkeys(out)), tuple(dict.fromkeys(below))


def _no_descendants(code: str, model: str) -> str | None:
    """Why ``code*`` cannot select descendants in `model` (None when it can): OMOP finds them
    through CONCEPT_ANCESTOR (and prefix systems through CONCEPT codes); FHIR resources carry
    no hierarchy, so there only prefix systems have descendants."""
    system = SYSTEMS[split(code)[0]]
    if system.hierarchy == "none":
        return f"{system.title} codes have no descendants"
    if system.hierarchy == "terminology" and model == "fhir":
        return (
            f"FHIR resources carry no {system.title} hierarchy, so descendants cannot be "
            "found (only systems hierarchical by prefix, such as ICD-10-CM, can use `*` here)"
        )
    return None


def _is_time(unit: str) -> bool:
    from . import units

    try:
        units.conversion(unit, "a")
    except Exception:
        return False
    return True


def _default_take(type_: Any) -> str:
    if isinstance(type_, SeriesT | SetT):
        return "all"
    if isinstance(type_, BoolT):
        return "any"
    return "latest"


def _take_fits(take: str, type_: Any) -> bool:
    if take == "all":
        return (isinstance(type_, SeriesT) and isinstance(type_.element, QtyT | NumT | CodeT)) or (
            isinstance(type_, SetT) and isinstance(type_.element, CodeT)
        )
    if take == "any":
        return isinstance(type_, BoolT)
    return isinstance(type_, QtyT | NumT | TimeT | CodeT)


def _take_help(type_: Any) -> str:
    if isinstance(type_, SeriesT | SetT):
        return 'a series or a set takes `take = "all"`'
    if isinstance(type_, BoolT):
        return 'a boolean takes `take = "any"`: true when a row is found'
    if isinstance(type_, QtyT | NumT | TimeT | CodeT):
        return 'one value takes `take = "latest"` or `"first"` (a date: the time of that row)'
    return f"facts of type {type_} cannot come from rows in this version; leave it unmapped"


_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(hour|day|week|month|year)s?\s*$")


def _duration(text: Any) -> float | None:
    """Seconds in a period such as ``"9 months"`` (a month is 30.4375 days, a year 365.25)."""
    if not isinstance(text, str):
        return None
    found = _PERIOD.match(text)
    if not found:
        return None
    return float(found.group(1)) * DAYS[found.group(2)] * 86400.0


# --------------------------------------------------------------------------- locations


class _Locator:
    """Spans of the tables and keys of a TOML text (line-based: `[facts.NAME]` headers and
    `key = …` lines), so diagnostics point at file:line:col."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.tables: dict[str | None, Span] = {}
        self.keys: dict[tuple[str | None, str], Span] = {}
        table: str | None = None
        offset = 0
        for line in source.text.splitlines(keepends=True):
            stripped = line.strip()
            lead = len(line) - len(line.lstrip())
            header = re.match(r"\[\s*facts\.\"?([^\]\"]+)\"?\s*\]", stripped)
            if header:
                table = header.group(1).strip()
                self.tables[table] = Span(source, offset + lead, offset + lead + len(stripped))
            elif stripped.startswith("["):
                table = None
            else:
                key = re.match(r"([A-Za-z0-9_\-]+)\s*=", stripped)
                if key:
                    end = offset + len(line.rstrip("\r\n"))
                    self.keys.setdefault((table, key.group(1)), Span(source, offset + lead, end))
            offset += len(line)

    def table(self, name: str) -> Span:
        return self.tables.get(name) or self._start()

    def key(self, table: str | None, key: str) -> Span:
        found = self.keys.get((table, key))
        if found is not None:
            return found
        return (
            self.tables.get(table) if table is not None and table in self.tables else self._start()
        )

    def _start(self) -> Span:
        first = self.source.text.split("\n", 1)[0]
        return Span(self.source, 0, max(len(first), 1) if self.source.text else 0)


def _toml_error(source: Source, exc: tomllib.TOMLDecodeError) -> Diagnostic:
    message = str(exc)
    found = re.search(r"\(at line (\d+), column (\d+)\)", message)
    span = None
    if found:
        line, column = int(found.group(1)), int(found.group(2))
        starts = [0] + [i + 1 for i, ch in enumerate(source.text) if ch == "\n"]
        start = min(starts[min(line, len(starts)) - 1] + column - 1, len(source.text))
        span = Span(source, start, min(start + 1, len(source.text)))
        message = message[: found.start()].strip()
    return error(
        "PR801",
        f"the data map is not valid TOML: {message}",
        span,
        path=source.name,
        help="a data map is TOML: see docs/clinical-data.md#the-data-map",
        label="here",
    )


def _err(code: str, message: str, span: Span | None, **kw: Any) -> Diagnostic:
    return error(code, message, span, **kw)
