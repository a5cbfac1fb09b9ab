"""FHIR R4 adapter: Patient, Observation, Condition, MedicationRequest, MedicationStatement and
Procedure resources into patient records, through a data map (docs/clinical-data.md#fhir-r4).

`source` is a Bundle (a dict, or a ``.json`` file), a list of resources, an NDJSON bulk-export
file (``.ndjson``, one resource a line) or a folder of such files. Every resource is validated
with ``fhir.resources`` (the ``[fhir]`` extra; its R4B models, which read R4 resources of these
types); an invalid resource is reported (PR855) and skipped, the rest of its patient still read.

- Patient gives the birth date and the sex (``gender`` ``male`` / ``female``).
- A resource belongs to the patient its ``subject`` (``patient``) references: ``Patient/ID``,
  or the ``fullUrl`` of a Patient entry of the Bundle.
- Its codes are those of its CodeableConcept (``code``; ``medicationCodeableConcept``) whose
  system the language knows (http://loinc.org, http://snomed.info/sct, RxNorm, ICD-10-CM, …);
  other codings are ignored.
- An Observation's value is ``valueQuantity.value`` in the unit ``valueQuantity.code`` when
  its ``system`` is UCUM (http://unitsofmeasure.org).
- Times: Observation ``effective[x]`` (else ``issued``), Condition ``onset[x]`` (else
  ``recordedDate``), MedicationRequest ``authoredOn``, MedicationStatement ``effective[x]``
  (else ``dateAsserted``), Procedure ``performed[x]``; a period gives its start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..codes import CodeValueError, read_code
from ..datamap import DataMap
from ..diagnostics import Diagnostic, error, warning
from ..engines import ScreeningError
from ..facts import Invalid, parse_instant
from .clinical import Person, build_records
from .clinical_layout import build_layout
from .layout import Layout

__all__ = ["fhir_layout", "fhir_patients", "fhir_records", "read_resources"]

UCUM = "http://unitsofmeasure.org"
TYPES = (
    "Patient",
    "Observation",
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "Procedure",
)
#: resource type -> (code element, time elements in order of preference)
SPEC: dict[str, tuple[str, tuple[str, ...]]] = {
    "Observation": (
        "code",
        ("effectiveDateTime", "effectiveInstant", "effectivePeriod", "issued"),
    ),
    "Condition": ("code", ("onsetDateTime", "onsetPeriod", "recordedDate")),
    "MedicationRequest": ("medicationCodeableConcept", ("authoredOn",)),
    "MedicationStatement": (
        "medicationCodeableConcept",
        ("effectiveDateTime", "effectivePeriod", "dateAsserted"),
    ),
    "Procedure": ("code", ("performedDateTime", "performedPeriod")),
}


def fhir_patients(
    source: Any,
    data_map: DataMap,
    *,
    as_of: Any = None,
    problems: list[Diagnostic] | None = None,
) -> Iterator[dict[str, Any]]:
    """The patient records of every Patient of `source`, built through `data_map`.

    Each record has ``"id"`` (the Patient's id), ``"as_of"`` and the facts the map gives.
    Invalid resources and unusable values are skipped and reported in `problems` (warnings
    PR852-PR856). Raises `ScreeningError` when the source cannot be read (PR850) or
    ``fhir.resources`` is not installed (PR857).
    """
    yield from fhir_records(source, data_map, as_of=as_of, problems=problems)


def fhir_records(
    source: Any,
    data_map: DataMap,
    *,
    as_of: Any = None,
    problems: list[Diagnostic] | None = None,
) -> list[dict[str, Any]]:
    """`fhir_patients` as a list."""
    problems = problems if problems is not None else []
    persons, events = _read(source, problems)
    return build_records(persons.values(), events, data_map, as_of, problems)


def fhir_layout(
    source: Any,
    data_map: DataMap,
    *,
    as_of: Any = None,
    problems: list[Diagnostic] | None = None,
) -> Layout:
    """The Patients of `source` in the columnar layout, for `Protocol.screen`: the same
    patients as `fhir_patients`, built with whole-column operations."""
    import polars as pl

    problems = problems if problems is not None else []
    persons, events = _read(source, problems)
    people = pl.DataFrame(
        {
            "person": [p.id for p in persons.values()],
            "birth": [p.birth for p in persons.values()],
            "sex": [p.sex for p in persons.values()],
        },
        schema={"person": pl.String, "birth": pl.Float64, "sex": pl.String},
    )
    return build_layout(people, events, data_map, as_of, problems)


def _read(source: Any, problems: list[Diagnostic]) -> tuple[dict[str, Person], Any]:
    """The Patients of `source`, and the events of its other resources."""
    import polars as pl

    resources = read_resources(source, problems)
    persons: dict[str, Person] = {}
    urls: dict[str, str] = {}
    for _, full_url, resource in resources:
        if resource.get("resourceType") == "Patient" and isinstance(resource.get("id"), str):
            pid = resource["id"]
            persons[pid] = Person(pid, _birth(resource), _sex(resource))
            if full_url:
                urls[full_url] = pid
    rows: dict[str, list[Any]] = {k: [] for k in ("person", "source", "code", "at", "value")}
    rows.update(unit=[], row=[])
    for where, _, resource in resources:
        kind = resource.get("resourceType")
        if kind not in SPEC:
            continue
        person = _subject(resource, urls)
        if person is None or person not in persons:
            problems.append(
                warning(
                    "PR856",
                    "no `subject` referencing a Patient of the input; skipped",
                    None,
                    path=where,
                    help='reference the patient: "subject": {"reference": "Patient/ID"}',
                )
            )
            continue
        code_key, time_keys = SPEC[kind]
        at = _time(resource, time_keys)
        value, unit = _quantity(resource.get("valueQuantity"))
        for code in _codes(resource.get(code_key)):
            for key, item in zip(
                ("person", "source", "code", "at", "value", "unit", "row"),
                (person, kind, code, at, value, unit, where),
                strict=True,
            ):
                rows[key].append(item)
    events = pl.DataFrame(
        rows,
        schema={
            "person": pl.String,
            "source": pl.String,
            "code": pl.String,
            "at": pl.Float64,
            "value": pl.Float64,
            "unit": pl.String,
            "row": pl.String,
        },
    )
    return persons, events


# --------------------------------------------------------------------------- reading


def read_resources(source: Any, problems: list[Diagnostic]) -> list[tuple[str, str | None, dict]]:
    """(where, fullUrl, resource) of every valid resource of a supported type in `source`."""
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError:
        raise ScreeningError(
            [
                error(
                    "PR857",
                    "reading FHIR needs the `[fhir]` extra",
                    None,
                    path="fhir",
                    help="pip install 'protocol-rules[fhir]'",
                )
            ]
        ) from None
    out = []
    for where, full_url, resource in _raw(source):
        if not isinstance(resource, Mapping) or resource.get("resourceType") not in TYPES:
            continue
        name = f"{resource['resourceType']}/{resource.get('id', '?')}"
        label = f"{where} ({name})" if where else name
        try:
            get_fhir_model_class(resource["resourceType"]).model_validate(dict(resource))
        except Exception as exc:  # pydantic's ValidationError, or a model's own check
            detail = _first_error(exc)
            problems.append(
                warning(
                    "PR855",
                    f"not a valid FHIR R4 {resource['resourceType']}: {detail}",
                    None,
                    path=label,
                    help="the resource is skipped; fix it to the FHIR specification",
                )
            )
            continue
        out.append((label, full_url, dict(resource)))
    return out


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            place = ".".join(str(p) for p in first.get("loc", ()))
            return f"{place}: {first.get('msg')}" if place else str(first.get("msg"))
        except Exception:  # pragma: no cover - a validation error without details
            pass
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _raw(source: Any) -> Iterator[tuple[str, str | None, Any]]:
    if isinstance(source, Mapping):
        yield from _bundle(source, "")
        return
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if os.path.isdir(path):
            for entry in sorted(os.listdir(path)):
                if entry.lower().endswith((".json", ".ndjson", ".jsonl")):
                    yield from _raw(os.path.join(path, entry))
            return
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise _cannot(path, exc.strerror or type(exc).__name__) from None
        name = os.path.basename(path)
        if path.lower().endswith((".ndjson", ".jsonl")):
            for number, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        yield f"{name}:{number}", None, json.loads(line)
                    except ValueError as exc:
                        raise _cannot(f"{path}:{number}", f"not JSON: {exc}") from None
            return
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise _cannot(path, f"not JSON: {exc}") from None
        yield from _bundle(data, name)
        return
    if isinstance(source, Iterable):
        for position, resource in enumerate(source, 1):
            yield from (
                _bundle(resource, f"resource {position}")
                if isinstance(resource, Mapping) and resource.get("resourceType") == "Bundle"
                else [(f"resource {position}", None, resource)]
            )
        return
    raise _cannot(type(source).__name__, "not a Bundle, a list of resources, or a file")


def _bundle(data: Any, where: str) -> Iterator[tuple[str, str | None, Any]]:
    if isinstance(data, Mapping) and data.get("resourceType") == "Bundle":
        for number, entry in enumerate(data.get("entry") or [], 1):
            if isinstance(entry, Mapping):
                label = f"{where} entry {number}".strip()
                yield label, entry.get("fullUrl"), entry.get("resource")
    elif isinstance(data, Mapping):
        yield where, None, data
    else:
        raise _cannot(where or "input", "neither a Bundle nor a resource")


def _cannot(where: str, why: str) -> ScreeningError:
    return ScreeningError(
        [
            error(
                "PR850",
                f"cannot read FHIR input `{where}`: {why}",
                None,
                path=where,
                help="give a Bundle (.json), an NDJSON export (.ndjson) or a folder of them",
            )
        ]
    )


def _subject(resource: Mapping[str, Any], urls: dict[str, str]) -> str | None:
    ref = resource.get("subject") or resource.get("patient")
    text = ref.get("reference") if isinstance(ref, Mapping) else None
    if not isinstance(text, str):
        return None
    if text in urls:
        return urls[text]
    if text.startswith("Patient/"):
        return text.split("/", 2)[1]
    return None


def _codes(concept: Any) -> list[str]:
    out = []
    codings = concept.get("coding") if isinstance(concept, Mapping) else None
    for coding in codings or []:
        if not isinstance(coding, Mapping) or "system" not in coding or "code" not in coding:
            continue
        try:
            out.append(read_code({"system": coding["system"], "code": coding["code"]}))
        except CodeValueError:
            continue  # a local or unknown system: not a code the language can match
    return list(dict.fromkeys(out))


def _time(resource: Mapping[str, Any], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = resource.get(key)
        if isinstance(value, Mapping):  # a Period
            value = value.get("start")
        if isinstance(value, str):
            try:
                return parse_instant(value)
            except Invalid:
                return None
    return None


def _quantity(quantity: Any) -> tuple[float | None, str | None]:
    if not isinstance(quantity, Mapping):
        return None, None
    value = quantity.get("value")
    unit = quantity.get("code") if quantity.get("system") == UCUM else None
    return (float(value) if isinstance(value, int | float) else None), unit


def _birth(patient: Mapping[str, Any]) -> float | None:
    born = patient.get("birthDate")
    if not isinstance(born, str):
        return None
    try:
        return parse_instant(born if len(born) == 10 else (born + "-01-01")[:10])
    except Invalid:
        return None


def _sex(patient: Mapping[str, Any]) -> str | None:
    gender = patient.get("gender")
    return gender if gender in ("male", "female") else None
