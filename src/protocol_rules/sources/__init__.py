"""The doors in for screening: patient data as users have it, read into a `Population`.

- a list or iterator of patient records (dicts, as `evaluate` takes them, with an ``"id"``),
  or a JSON Lines file (``.jsonl``, ``.ndjson``): `records`;
- the columnar layout (scalar facts wide, series and sets long): a folder or a pair of Parquet
  or CSV files, polars DataFrames, or a `layout.Layout`: `layout`.

`convert` turns JSON Lines into the layout on disk. Clinical data goes through a data map
(`protocol_rules.load_data_map`): `omop_patients` reads an OMOP CDM, `fhir_patients` FHIR R4
resources, each into patient records (docs/clinical-data.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..diagnostics import error
from ..engines import ScreeningError
from .convert import to_layout
from .fhir import fhir_layout, fhir_patients
from .layout import Layout, from_layout, read_layout, write_layout
from .omop import omop_layout, omop_patients, omop_terminology
from .population import Population
from .records import from_records, read_jsonl

JSONL = (".jsonl", ".ndjson")


def read(
    data: Any,
    protocol: Any,
    as_of: float | None,
    *,
    ignore_unknown: bool = False,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> Population:
    """A `Population` from any of the inputs in the module docstring."""
    import polars as pl

    program = protocol._program
    if isinstance(data, Layout):
        return from_layout(data, program, as_of, ignore_unknown=ignore_unknown)
    if isinstance(data, pl.DataFrame | pl.LazyFrame):
        return from_layout(Layout(data), program, as_of, ignore_unknown=ignore_unknown)
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], pl.DataFrame):
        return from_layout(Layout(*data), program, as_of, ignore_unknown=ignore_unknown)
    if isinstance(data, str | os.PathLike):
        path = os.fspath(data)
        if path.lower().endswith(JSONL):
            _exists(path)
            return from_records(
                _counted(read_jsonl(path), progress), program, as_of, ignore_unknown=ignore_unknown
            )
        if progress:
            progress("reading", 0, None)
        layout = read_layout(path)
        if progress:
            progress("checking the data", 0, layout.patients.height)
        return from_layout(layout, program, as_of, ignore_unknown=ignore_unknown)
    if isinstance(data, Mapping):
        raise ScreeningError(
            [
                error(
                    "PR507",
                    "screening reads many patients, got one record",
                    None,
                    path="data",
                    help="pass a list of records, or use `evaluate` for one patient",
                )
            ]
        )
    if isinstance(data, Iterable):
        return from_records(_counted(data, progress), program, as_of, ignore_unknown=ignore_unknown)
    raise ScreeningError(
        [
            error(
                "PR507",
                f"cannot screen a {type(data).__name__}",
                None,
                path="data",
                help="pass records, a JSON Lines file, a layout folder or file, or DataFrames",
            )
        ]
    )


def _exists(path: str) -> None:
    if not os.path.exists(path):
        raise ScreeningError(
            [error("PR508", f"cannot read `{path}`: no such file", None, path=path)]
        )


def _counted(
    records: Iterable[Any], progress: Callable[[str, int, int | None], None] | None
) -> Iterable[Any]:
    if progress is None:
        yield from records
        return
    done = 0
    for record in records:
        yield record
        done += 1
        if done % 10_000 == 0:
            progress("reading", done, None)
    progress("reading", done, done)


__all__ = [
    "Layout",
    "Population",
    "fhir_layout",
    "fhir_patients",
    "from_layout",
    "from_records",
    "omop_layout",
    "omop_patients",
    "omop_terminology",
    "read",
    "to_layout",
    "write_layout",
]
