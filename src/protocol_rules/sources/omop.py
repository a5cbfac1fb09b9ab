"""OMOP CDM 5.4 adapter: persons and coded rows of a CDM into patient records, through a data map
(docs/clinical-data.md#omop-cdm).

`cdm` is a folder of CDM tables (``MEASUREMENT.csv`` or ``measurement.parquet``, any case), a
``.zip`` of such CSV files, a DuckDB database file (``.duckdb`` / ``.db``) or an open DuckDB
connection. Only the tables the data map needs are read (and PERSON, and CONCEPT when a unit
or a code must be looked up). Every cell is read as text and cast here, so CSV, Parquet and
DuckDB give the same records — except that DuckDB tables with their CDM column types have their
events computed by DuckDB (`omop_duckdb`), into the same columns.

- PERSON gives the birth (``birth_datetime``, else ``year/month/day_of_birth``) and the sex
  (gender concept 8507 male, 8532 female).
- MEASUREMENT and OBSERVATION give values (``value_as_number``) in the unit of
  ``unit_source_value`` (UCUM), else of ``unit_concept_id`` when CONCEPT names it in the UCUM
  vocabulary; CONDITION_OCCURRENCE, DRUG_EXPOSURE and PROCEDURE_OCCURRENCE give coded events.
- A row's code is ``OMOP#<concept_id>``. A data map may name other codes (``LOINC#2160-0``):
  they are looked up in CONCEPT (vocabulary and concept code) — a code this CDM does not know
  is reported (PR812) and selects nothing.
- Times are the ``*_datetime`` column, else the ``*_date`` column, read as UTC.

`omop_patients` gives one record (a dict) per person; `omop_layout` the same patients in the
columnar layout, built with whole-column operations, for screening large CDMs.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from typing import Any

import attrs

from ..codes import SYSTEMS, StaticTerminology, split
from ..datamap import DataMap, FactMap
from ..diagnostics import Diagnostic, error, warning
from ..engines import ScreeningError
from .clinical import Person, build_records, empty_events
from .clinical_layout import build_layout
from .layout import Layout
from .omop_duckdb import duckdb_events, duckdb_persons

__all__ = ["omop_layout", "omop_patients", "omop_records", "omop_terminology"]

#: table -> (id column, concept column, datetime column, date column, has values)
TABLES: dict[str, tuple[str, str, str, str, bool]] = {
    "measurement": (
        "measurement_id",
        "measurement_concept_id",
        "measurement_datetime",
        "measurement_date",
        True,
    ),
    "observation": (
        "observation_id",
        "observation_concept_id",
        "observation_datetime",
        "observation_date",
        True,
    ),
    "condition_occurrence": (
        "condition_occurrence_id",
        "condition_concept_id",
        "condition_start_datetime",
        "condition_start_date",
        False,
    ),
    "drug_exposure": (
        "drug_exposure_id",
        "drug_concept_id",
        "drug_exposure_start_datetime",
        "drug_exposure_start_date",
        False,
    ),
    "procedure_occurrence": (
        "procedure_occurrence_id",
        "procedure_concept_id",
        "procedure_datetime",
        "procedure_date",
        False,
    ),
}
#: system of the language -> OMOP vocabulary_id
VOCABULARIES = {
    "LOINC": "LOINC",
    "SNOMED": "SNOMED",
    "RXNORM": "RxNorm",
    "ICD10CM": "ICD10CM",
    "ICD10": "ICD10",
    "ICD9CM": "ICD9CM",
    "ICD10PCS": "ICD10PCS",
    "CPT": "CPT4",
    "ATC": "ATC",
    "NDC": "NDC",
}
SEXES = {"8507": "male", "8532": "female"}


def omop_patients(
    cdm: Any,
    data_map: DataMap,
    *,
    as_of: Any = None,
    problems: list[Diagnostic] | None = None,
) -> Iterator[dict[str, Any]]:
    """The patient records of every person of an OMOP CDM, built through `data_map`.

    Each record has ``"id"`` (the ``person_id`` as text), ``"as_of"`` (`as_of`, default now)
    and the facts the map gives. Rows that cannot be used are skipped and reported in
    `problems` (warnings PR852-PR854, PR812). Raises `ScreeningError` (PR850, PR851) when a
    table cannot be read.
    """
    yield from omop_records(cdm, data_map, as_of=as_of, problems=problems)


def omop_records(
    cdm: Any,
    data_map: DataMap,
    *,
    as_of: Any = None,
    problems: list[Diagnostic] | None = None,
) -> list[dict[str, Any]]:
    """`omop_patients` as a list."""
    problems = problems if problems is not None else []
    with _Cdm(cdm) as source:
        persons = _persons(source)
        events, data_map = _events(source, data_map, problems)
    return build_records(persons, events, data_map, as_of, problems, distinct_rows=True)


def omop_layout(
    cdm: Any,
    data_map: DataMap,
    *,
    as_of: Any = None,
    problems: list[Diagnostic] | None = None,
) -> Layout:
    """The persons of an OMOP CDM in the columnar layout, for `Protocol.screen`: the same
    patients as `omop_patients`, built with whole-column operations (for large CDMs)."""
    problems = problems if problems is not None else []
    with _Cdm(cdm) as source:
        people = _person_frame(source)
        events, data_map = _events(source, data_map, problems)
    # one event per row: OMOP rows have one concept (FHIR codings can repeat a resource)
    return build_layout(people, events, data_map, as_of, problems, distinct_rows=True)


def omop_terminology(cdm: Any) -> StaticTerminology:
    """The OMOP concept hierarchy of a CDM (CONCEPT_ANCESTOR) and its concept names, as a
    terminology for value sets of ``OMOP#…*`` members (docs/language/codes.md#descendants)."""
    import polars as pl

    with _Cdm(cdm) as source:
        ancestors = source.table(
            "concept_ancestor", ("ancestor_concept_id", "descendant_concept_id")
        )
        concepts = source.table("concept", ("concept_id", "concept_name"), required=False)
    below: dict[str, list[str]] = {}
    pairs = ancestors.filter(pl.col("ancestor_concept_id") != pl.col("descendant_concept_id"))
    for top, down in pairs.iter_rows():
        below.setdefault(f"OMOP#{top}", []).append(f"OMOP#{down}")
    names = {}
    if concepts is not None:
        names = {f"OMOP#{cid}": name for cid, name in concepts.iter_rows() if name}
    return StaticTerminology(below, names, systems=["OMOP"])


# --------------------------------------------------------------------------- reading


class _Cdm:
    """The tables of a CDM, whatever holds them (see the module docstring)."""

    def __init__(self, cdm: Any) -> None:
        self.cdm = cdm
        self.connection: Any = None
        self.owned = False
        self.files: dict[str, str] = {}
        self.zip: zipfile.ZipFile | None = None
        self.name = str(cdm) if isinstance(cdm, str | os.PathLike) else type(cdm).__name__

    def __enter__(self) -> _Cdm:
        cdm = self.cdm
        if hasattr(cdm, "sql") and hasattr(cdm, "execute"):  # a DuckDB connection
            self.connection = cdm
            return self
        if not isinstance(cdm, str | os.PathLike):
            raise _cannot(self.name, "not a folder, a .zip, a DuckDB file or a DuckDB connection")
        path = os.fspath(cdm)
        if not os.path.exists(path):
            raise _cannot(path, "no such file or folder")
        if os.path.isdir(path):
            for entry in os.listdir(path):
                stem, ext = os.path.splitext(entry)
                if ext.lower() in (".csv", ".parquet"):
                    self.files.setdefault(stem.lower(), os.path.join(path, entry))
        elif path.lower().endswith(".zip"):
            try:
                self.zip = zipfile.ZipFile(path)
            except (OSError, zipfile.BadZipFile) as exc:
                raise _cannot(path, str(exc)) from None
            for entry in self.zip.namelist():
                base = os.path.basename(entry)
                stem, ext = os.path.splitext(base)
                if ext.lower() == ".csv" and not base.startswith("._"):
                    self.files.setdefault(stem.lower(), entry)
        elif path.lower().endswith((".duckdb", ".db", ".ddb")):
            try:
                import duckdb
            except ImportError:
                raise _cannot(path, "reading DuckDB needs `pip install duckdb`") from None
            try:
                self.connection = duckdb.connect(path, read_only=True)
            except Exception as exc:  # duckdb raises its own kinds
                raise _cannot(path, str(exc).splitlines()[0]) from None
            self.owned = True
        else:
            raise _cannot(path, "not a folder, a .zip, or a DuckDB file (.duckdb)")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.owned and self.connection is not None:
            self.connection.close()
        if self.zip is not None:
            self.zip.close()

    def table(
        self,
        name: str,
        columns: tuple[str, ...],
        required: bool = True,
        where: tuple[str, list[int]] | None = None,
    ) -> Any:
        """The `columns` of table `name` as text (absent optional columns are null); with
        `where` = (column, ids), only the rows whose column is one of the ids (in DuckDB, the
        database filters)."""
        import polars as pl

        frame = self._read(name, required, columns, where)
        if frame is None:
            return None
        present = {c.lower(): c for c in frame.columns}
        out = []
        for column in columns:
            if column in present:
                out.append(pl.col(present[column]).cast(pl.String).alias(column))
            elif column in _OPTIONAL:
                out.append(pl.lit(None, dtype=pl.String).alias(column))
            else:
                raise ScreeningError(
                    [
                        error(
                            "PR851",
                            f"OMOP table `{name.upper()}` has no column `{column}`",
                            None,
                            path=f"{self.name}: {name.upper()}",
                            help="the adapter reads OMOP CDM 5.4 tables; check the column names",
                        )
                    ]
                )
        frame = frame.select(out)
        if where is not None and self.connection is None:
            column, ids = where
            number = pl.col(column).str.strip_chars().cast(pl.Int64, strict=False)
            frame = frame.filter(number.is_in(ids))
        return frame

    def is_empty(self, name: str) -> bool:
        """Whether table `name` has no rows (or is not there)."""
        if self.connection is not None:
            try:
                return not self.connection.sql(f'select 1 from "{name}" limit 1').fetchall()
            except Exception:  # no such table
                return True
        frame = self._read(name, False)
        return frame is None or frame.height == 0

    def _read(
        self,
        name: str,
        required: bool,
        wanted: tuple[str, ...] = (),
        where: tuple[str, list[int]] | None = None,
    ) -> Any:
        import polars as pl

        if self.connection is not None:
            try:  # the wanted columns as text, as from a CSV (no pyarrow needed)
                found = self.connection.sql(f'select * from "{name}" limit 0').columns
                present = {c.lower(): c for c in found}
                picked = [present[c] for c in wanted if c in present] or list(found)
                cast = ", ".join(f'cast("{c}" as varchar) as "{c.lower()}"' for c in picked)
                sql = f'select {cast} from "{name}"'
                if where is not None and where[0] in present:
                    ids = ", ".join(str(int(i)) for i in where[1]) or "null"
                    sql += f' where "{present[where[0]]}" in ({ids})'
                return _fetch(self.connection, sql)
            except Exception as exc:
                if not required:
                    return None
                raise _cannot(f"{self.name}: {name.upper()}", str(exc).splitlines()[0]) from None
        found = self.files.get(name)
        if found is None:
            if not required:
                return None
            raise _cannot(f"{self.name}: {name.upper()}", "the table is not there")
        try:
            if self.zip is not None:
                with self.zip.open(found) as handle:
                    return pl.read_csv(handle.read(), infer_schema=False)
            if found.lower().endswith(".parquet"):
                return pl.read_parquet(found)
            return pl.read_csv(found, infer_schema=False)
        except Exception as exc:  # polars raises many kinds for a corrupt file
            raise _cannot(found, str(exc).strip().splitlines()[0]) from None


def _fetch_from(connection: Any) -> Any:
    return lambda sql: _fetch(connection, sql)


def _fetch(connection: Any, sql: str) -> Any:
    """The result of a DuckDB query as a polars frame, through the Arrow C stream interface
    (no pyarrow needed, and no Python object per cell); with a DuckDB that lacks it, through a
    Parquet file DuckDB writes."""
    import tempfile

    import polars as pl

    relation = connection.sql(sql)
    if hasattr(relation, "__arrow_c_stream__"):
        return pl.DataFrame(relation)

    with tempfile.TemporaryDirectory(prefix="protocol-rules-omop-") as folder:
        target = os.path.join(folder, "rows.parquet")
        quoted = target.replace("'", "''")
        connection.execute(f"copy ({sql}) to '{quoted}' (format parquet)")
        return pl.read_parquet(target)


_OPTIONAL = {
    "birth_datetime",
    "month_of_birth",
    "day_of_birth",
    "unit_source_value",
    "unit_concept_id",
    "value_as_number",
} | {spec[2] for spec in TABLES.values()}


def _cannot(where: str, why: str) -> ScreeningError:
    return ScreeningError(
        [
            error(
                "PR850",
                f"cannot read the OMOP CDM `{where}`: {why}",
                None,
                path=where,
                help="give a folder of CDM tables (CSV or Parquet), a .zip of CSVs, a DuckDB "
                "file or a DuckDB connection",
            )
        ]
    )


def _person_frame(source: _Cdm) -> Any:
    """PERSON as a frame: ``person`` (text), ``birth`` (seconds, UTC), ``sex``."""
    import polars as pl

    if source.connection is not None:  # typed columns: DuckDB computes the frame
        typed = duckdb_persons(source.connection, _fetch_from(source.connection))
        if typed is not None:
            return typed

    frame = source.table(
        "person",
        (
            "person_id",
            "gender_concept_id",
            "year_of_birth",
            "month_of_birth",
            "day_of_birth",
            "birth_datetime",
        ),
    )
    born = _seconds(pl.col("birth_datetime"), None)
    parts = pl.concat_str(
        [
            pl.col("year_of_birth").str.zfill(4),
            pl.col("month_of_birth").fill_null("1").str.zfill(2),
            pl.col("day_of_birth").fill_null("1").str.zfill(2),
        ],
        separator="-",
    )
    frame = frame.with_columns(
        pl.coalesce(born, _seconds(parts, None)).alias("birth"),
        pl.col("person_id").str.strip_chars(),
    ).sort(pl.col("person_id").cast(pl.Int64, strict=False), "person_id")
    sex = pl.col("gender_concept_id").str.strip_chars()
    return frame.select(
        pl.col("person_id").alias("person"),
        "birth",
        sex.replace_strict(list(SEXES), list(SEXES.values()), default=None).alias("sex"),
    )


def _persons(source: _Cdm) -> list[Person]:
    return [Person(*row) for row in _person_frame(source).iter_rows()]


def _seconds(text: Any, date_text: Any) -> Any:
    """Seconds since the epoch of a datetime text column (else of a date column), as UTC."""
    import polars as pl

    def parse(column: Any) -> Any:
        cleaned = column.str.strip_chars().str.replace("T", " ").str.replace(r"Z$|[+-]00:?00$", "")
        stamp = pl.coalesce(
            cleaned.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us"),
            cleaned.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us"),
            cleaned.str.to_datetime("%Y-%m-%d", strict=False, time_unit="us"),
        )
        return stamp.dt.epoch("us").cast(pl.Float64) / 1e6

    return parse(text) if date_text is None else pl.coalesce(parse(text), parse(date_text))


def _events(source: _Cdm, data_map: DataMap, problems: list[Diagnostic]) -> tuple[Any, DataMap]:
    """The events of the tables the map reads, and the map with its codes as OMOP concepts."""
    import polars as pl

    tables = sorted({f.source for f in data_map.facts if f.field is None})
    if not tables:
        return empty_events(), data_map
    data_map = _as_concepts(source, data_map, problems)
    ucum = _ucum_units(source) if any(TABLES[t][4] for t in tables) else {}
    frames = []
    for table in tables:
        id_col, concept, when, day, has_values = TABLES[table]
        wanted = {int(split(c)[1]) for f in data_map.facts if f.source == table for c in f.codes}
        if source.connection is not None:  # typed columns: DuckDB computes the events
            fetch = _fetch_from(source.connection)
            typed = duckdb_events(
                source.connection, table, TABLES[table], sorted(wanted), ucum, fetch
            )
            if typed is not None:
                frames.append(typed)
                continue
        columns = ["person_id", id_col, concept, when, day]
        if has_values:
            columns += ["value_as_number", "unit_source_value", "unit_concept_id"]
        frame = source.table(table, tuple(columns), where=(concept, sorted(wanted)))
        if has_values:
            unit_concept = pl.col("unit_concept_id").replace_strict(
                list(ucum), list(ucum.values()), default=None, return_dtype=pl.String
            ) if ucum else pl.lit(None, dtype=pl.String)  # fmt: skip
            source_unit = pl.col("unit_source_value").str.strip_chars()
            unit = pl.when(source_unit.is_null() | (source_unit == "")).then(unit_concept)
            value = pl.col("value_as_number").str.strip_chars().cast(pl.Float64, strict=False)
            unit = unit.otherwise(source_unit)
        else:
            value = pl.lit(None, dtype=pl.Float64)
            unit = pl.lit(None, dtype=pl.String)
        frames.append(
            frame.select(
                pl.col("person_id").str.strip_chars().alias("person"),
                pl.lit(table).alias("source"),
                ("OMOP#" + pl.col(concept).str.strip_chars()).alias("code"),
                _seconds(pl.col(when), pl.col(day)).alias("at"),
                value.alias("value"),
                unit.alias("unit"),
                (f"{table.upper()} {id_col}=" + pl.col(id_col).str.strip_chars()).alias("row"),
            )
        )
    return pl.concat(frames), data_map


def _ucum_units(source: _Cdm) -> dict[str, str]:
    """unit_concept_id -> UCUM code, from CONCEPT (empty when the CDM has no CONCEPT)."""
    import polars as pl

    concepts = source.table(
        "concept", ("concept_id", "vocabulary_id", "concept_code"), required=False
    )
    if concepts is None:
        return {}
    ucum = concepts.filter(pl.col("vocabulary_id") == "UCUM")
    return dict(ucum.select("concept_id", "concept_code").iter_rows())


def _as_concepts(source: _Cdm, data_map: DataMap, problems: list[Diagnostic]) -> DataMap:
    """`data_map` with every code an ``OMOP#`` concept and every ``*`` expanded: other systems
    looked up in CONCEPT (vocabulary and concept code; a ``prefix``-system code with ``*``:
    every concept code of its vocabulary that starts with it), then the descendants of the
    concepts written with ``*`` added from CONCEPT_ANCESTOR (PR859 when the CDM has none)."""
    found = _foreign_concepts(source, data_map)
    facts: list[tuple[FactMap, list[str], set[str]]] = []  # (fact, concepts, those with `*`)
    roots: dict[str, list[str]] = {}  # concept -> the members that want its descendants
    for fact in data_map.facts:
        codes: list[str] = []
        starred: set[str] = set()
        for code in fact.codes:
            star = code in fact.descendants
            prefix = star and SYSTEMS[split(code)[0]].hierarchy == "prefix"
            concepts = [code] if code.startswith("OMOP#") else found.get((code, prefix), [])
            if not concepts:
                problems.append(
                    warning(
                        "PR812",
                        f"`{code}{'*' if star else ''}` of `facts.{fact.fact}` is not in the "
                        "CONCEPT table of this CDM; it selects nothing",
                        None,
                        path=f"{data_map.path}: facts.{fact.fact}.codes",
                        help="write its OMOP concept id (OMOP#…), or load the vocabulary",
                    )
                )
            codes.extend(concepts)
            if star and not prefix:
                starred.update(concepts)
                for concept in concepts:
                    roots.setdefault(concept, []).append(f"`{code}*` (facts.{fact.fact})")
        facts.append((fact, codes, starred))
    below = _descendants(source, roots, problems)
    out = []
    for fact, codes, starred in facts:
        for concept in list(codes):
            if concept in starred:
                codes.extend(below.get(concept, ()))
        out.append(attrs.evolve(fact, codes=tuple(dict.fromkeys(codes)), descendants=()))
    return attrs.evolve(data_map, facts=tuple(out))


def _foreign_concepts(source: _Cdm, data_map: DataMap) -> dict[tuple[str, bool], list[str]]:
    """(code, by prefix) -> its OMOP concepts, for the codes of other systems than OMOP."""
    import polars as pl

    wanted = {
        (c, c in f.descendants and SYSTEMS[split(c)[0]].hierarchy == "prefix")
        for f in data_map.facts
        for c in f.codes
        if not c.startswith("OMOP#")
    }
    if not wanted:
        return {}
    concepts = source.table(
        "concept", ("concept_id", "vocabulary_id", "concept_code"), required=False
    )
    if concepts is None:
        return {}
    vocabularies = {VOCABULARIES.get(split(c)[0]) for c, _ in wanted}
    rows = concepts.filter(pl.col("vocabulary_id").is_in([v for v in vocabularies if v]))
    out: dict[tuple[str, bool], list[str]] = {}
    for code, prefix in sorted(wanted):
        system, value = split(code)
        same = pl.col("vocabulary_id") == VOCABULARIES.get(system)
        match = pl.col("concept_code").str.starts_with(value) if prefix else (
            pl.col("concept_code") == value
        )  # fmt: skip
        ids = rows.filter(same & match)["concept_id"].str.strip_chars().to_list()
        out[(code, prefix)] = [f"OMOP#{i}" for i in ids]
    return out


def _descendants(
    source: _Cdm, roots: dict[str, list[str]], problems: list[Diagnostic]
) -> dict[str, list[str]]:
    """concept -> the concepts below it in CONCEPT_ANCESTOR, for the `roots` (codes written
    with ``*``); when the CDM has no CONCEPT_ANCESTOR, or an empty one, one PR859 saying which
    members select their own concept only."""
    import polars as pl

    if not roots:
        return {}
    ids = sorted({int(split(c)[1]) for c in roots})
    columns = ("ancestor_concept_id", "descendant_concept_id")
    pairs = source.table("concept_ancestor", columns, required=False, where=(columns[0], ids))
    if pairs is None or (pairs.height == 0 and source.is_empty("concept_ancestor")):
        members = sorted({m for wanted in roots.values() for m in wanted})
        why = "has no CONCEPT_ANCESTOR table" if pairs is None else "has an empty CONCEPT_ANCESTOR"
        problems.append(
            warning(
                "PR859",
                f"this CDM {why}: the descendants of " + ", ".join(members) + " are not "
                "known, so each selects its own concept only",
                None,
                path=f"{source.name}: CONCEPT_ANCESTOR",
                help="load the OMOP vocabularies with CONCEPT_ANCESTOR into the CDM, or list "
                "the concepts in the data map",
            )
        )
        return {}
    out: dict[str, list[str]] = {}
    for top, down in pairs.select(pl.all().str.strip_chars()).iter_rows():
        out.setdefault(f"OMOP#{top}", []).append(f"OMOP#{down}")
    return out
