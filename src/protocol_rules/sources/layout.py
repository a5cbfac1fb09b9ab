"""The columnar layout: scalar facts wide, series and sets long; read, checked and normalised.

- **patients** (wide): ``patient_id``, an optional ``as_of``, one column per scalar fact, and for a
  quantity an optional ``<fact>.unit`` column (empty: the declared unit);
- **observations** (long): ``patient_id, fact, at, value, unit`` — one row per observation of a
  series, or per member of a set (``at`` empty). A row with ``at`` and ``value`` both empty says
  the patient's series or set is known and empty (``[]`` in a record); a patient without rows
  for a fact does not have it (unknown).

On disk: a folder with ``patients.parquet`` (or ``.csv``) and, if there are series or sets,
``observations.parquet`` (or ``.csv``); or one Parquet / CSV file of patients.

Checking is vectorised: each column is cast to the fact's type, converted once per distinct unit
on that unit's rows (`units.conversion`, rounded as the interpreter rounds) and range-checked.
Patient identifiers in increasing order (as exports usually have them) are flagged as sorted, so
the engine joins and groups on them without hashing; any other order takes the general path.
The few values that fail are *suspects*: their patient's record is rebuilt for those facts and
read by the interpreter's own `PatientReader`, so a bad value gets exactly the diagnostic
`evaluate` gives (and a value the fast path could not read but the reader accepts is taken
from the reader).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import attrs

from .. import units
from ..check.types import BoolT, ChoiceT, CodeT, NumT, QtyT, SeriesT, TextT, TimeT
from ..diagnostics import Diagnostic, error
from ..engines import ScreeningError
from ..facts import UNKNOWN
from ..suggestions import did_you_mean
from .instants import datetime_seconds, parse_texts
from .population import (
    AS_OF,
    AT,
    ID,
    NEVER_SECONDS,
    ROW,
    SEQ,
    VALUE,
    Population,
    clean,
    column_value,
    dtype,
    element,
    is_collection,
)

PATIENT_ID, FACT, AT_COLUMN, VALUE_COLUMN, UNIT = "patient_id", "fact", "at", "value", "unit"
UNIT_SUFFIX = ".unit"
FILES = ("patients", "observations")


@attrs.frozen
class Layout:
    """Population data in the columnar layout (see the module docstring)."""

    patients: Any  # polars DataFrame (or LazyFrame)
    observations: Any = None


def _layout_error(code: str, message: str, path: str, help: str) -> ScreeningError:
    return ScreeningError([error(code, message, None, path=path, help=help)])


# --------------------------------------------------------------------------- files


def read_layout(path: str) -> Layout:
    """A `Layout` from a folder (patients + observations) or from one file of patients."""
    import polars as pl

    if os.path.isdir(path):
        found = {}
        for name in FILES:
            for ext in (".parquet", ".csv"):
                candidate = os.path.join(path, name + ext)
                if os.path.exists(candidate):
                    found[name] = candidate
        if "patients" not in found:
            raise _layout_error(
                "PR508",
                f"`{path}` has no patients.parquet or patients.csv",
                path,
                "a layout folder holds patients.parquet (or .csv) and observations.parquet",
            )
        return Layout(_read_file(found["patients"]), _maybe(found.get("observations")))
    if not os.path.exists(path):
        raise _layout_error("PR508", f"cannot read `{path}`: no such file", path, "check the path")
    if not path.lower().endswith((".parquet", ".csv")):
        raise _layout_error(
            "PR508",
            f"cannot read `{path}`: unknown file type",
            path,
            "screen a .jsonl file, a .parquet or .csv file of patients, or a layout folder",
        )
    del pl
    return Layout(_read_file(path))


def _maybe(path: str | None) -> Any:
    return _read_file(path) if path else None


def _read_file(path: str) -> Any:
    import polars as pl

    try:
        if path.lower().endswith(".parquet"):
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema=False)  # every cell as text; cast per fact
    except Exception as exc:  # polars raises many kinds for a corrupt file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _layout_error(
            "PR508", f"cannot read `{path}`: {first}", path, "check the file"
        ) from None


def write_layout(layout: Layout, folder: str, fmt: str = "parquet") -> list[str]:
    """Write a layout into `folder` as Parquet or CSV; returns the files written."""
    os.makedirs(folder, exist_ok=True)
    written = []
    for name, frame in zip(FILES, (layout.patients, layout.observations), strict=True):
        if frame is None:
            continue
        target = os.path.join(folder, f"{name}.{fmt}")
        if fmt == "parquet":
            frame.write_parquet(target)
        else:
            frame.write_csv(target)
        written.append(target)
    return written


# --------------------------------------------------------------------------- reading


def from_layout(
    layout: Layout, program: Any, as_of: float | None, *, ignore_unknown: bool = False
) -> Population:
    """A checked, normalised `Population` from layout frames."""
    import polars as pl

    wide = layout.patients
    if isinstance(wide, pl.LazyFrame):
        wide = wide.collect()
    long = layout.observations
    if isinstance(long, pl.LazyFrame):
        long = long.collect()
    return _Reader(program, wide, long, as_of, ignore_unknown).population()


class _Reader:
    def __init__(
        self, program: Any, wide: Any, long: Any, as_of: float | None, ignore_unknown: bool
    ) -> None:
        self.program = program
        self.facts = {f.name: f for f in program.checked.facts}
        self.wide = wide
        self.long = long
        self.as_of = as_of
        self.ignore_unknown = ignore_unknown
        self.n = wide.height
        self.suspects: dict[int, set[str]] = {}  # row -> facts to re-read
        self.problems: dict[int, list[Diagnostic]] = {}
        self.sorted_ids = False
        self._check_shape()

    # ------------------------------------------------------------------ shape

    def _check_shape(self) -> None:
        import polars as pl

        wide = self.wide
        if PATIENT_ID not in wide.columns:
            raise _layout_error(
                "PR509",
                "the patients table has no `patient_id` column",
                "patients",
                "add a `patient_id` column: one row per patient",
            )
        names = list(self.facts)
        for column in wide.columns:
            if column in (PATIENT_ID, "as_of"):
                continue
            fact_name = column[: -len(UNIT_SUFFIX)] if column.endswith(UNIT_SUFFIX) else column
            fact = self.facts.get(fact_name)
            if fact is None:
                if self.ignore_unknown:
                    continue
                raise _layout_error(
                    "PR510",
                    f"column `{column}` of the patients table is not a fact this protocol declares",
                    f"patients.{column}",
                    did_you_mean(fact_name, names)
                    or "remove it, or pass ignore_unknown=True (`--ignore-unknown`)",
                )
            if is_collection(fact):
                raise _layout_error(
                    "PR511",
                    f"`{fact_name}` is a series or a set: its values go in the observations table",
                    f"patients.{column}",
                    "write one row per observation: patient_id, fact, at, value, unit",
                )
        ids = wide.get_column(PATIENT_ID)
        # identifiers in increasing order (as exports usually are) are unique, and let the
        # engine join on them as sorted keys
        self.sorted_ids = _increasing(ids)
        duplicated = None if self.sorted_ids else ids.is_duplicated()
        if duplicated is not None and duplicated.any():
            first = ids.filter(duplicated)[0]
            raise _layout_error(
                "PR512",
                f"patient `{first}` has more than one row in the patients table",
                "patients.patient_id",
                "give each patient one row; observations go in the observations table",
            )
        if self.long is None:
            return
        missing = [c for c in (PATIENT_ID, FACT, VALUE_COLUMN) if c not in self.long.columns]
        if missing:
            raise _layout_error(
                "PR509",
                f"the observations table has no `{missing[0]}` column",
                "observations",
                "the columns are patient_id, fact, at, value, unit",
            )
        extra = set(self.long.columns) - {PATIENT_ID, FACT, AT_COLUMN, VALUE_COLUMN, UNIT}
        if extra:
            column = sorted(extra)[0]
            raise _layout_error(
                "PR510",
                f"column `{column}` of the observations table is not part of the layout",
                f"observations.{column}",
                "the columns are patient_id, fact, at, value, unit",
            )
        del pl

    # ------------------------------------------------------------------ scalars

    def population(self) -> Population:
        import polars as pl

        wide = self.wide
        scalars = [f for f in self.facts.values() if not is_collection(f)]
        values, flags, converted = [], [], []
        for fact in scalars:
            if fact.name not in wide.columns:
                values.append(pl.lit(None, dtype=dtype(fact.type)).alias(fact.name))
                continue
            unit = fact.name + UNIT_SUFFIX
            unit = unit if unit in wide.columns else None
            value, suspect = _exprs(
                fact, element(fact.type), fact.name, wide.schema[fact.name], unit, wide
            )
            values.append(value.alias(fact.name))
            flags.append(suspect.alias(f":suspect:{fact.name}"))
            if unit is not None and isinstance(fact.type, QtyT):
                converted.append(fact)
        frame = (
            wide.lazy()  # lazy: common sub-expressions are computed once
            .select(
                pl.int_range(pl.len(), dtype=pl.UInt32).alias(ROW),
                pl.col(PATIENT_ID).alias(ID),
                *values,
                *flags,
            )
            .collect(engine="in-memory")  # columns as they are read: no copy of each
        )
        frame = self._convert_scalars(frame, converted)
        if self.sorted_ids:
            frame = _sorted(frame, ID)
        self._flagged(frame, ":suspect:", lambda row, name: self.suspects.setdefault(
            row, set()).add(name))  # fmt: skip
        frame = frame.drop([c for c in frame.columns if c.startswith(":suspect:")])
        observations, presence = self._long()
        patients = frame.with_columns(
            self._as_of(),
            *(presence[f.name] for f in self.facts.values() if is_collection(f)),
        ).select(ROW, ID, AS_OF, *(f.name for f in self.facts.values()))
        patients, observations = self._reread(patients, observations)
        self._past(patients)
        errors = {row: tuple(p) for row, p in sorted(self.problems.items()) if p}
        return Population(patients, observations, errors, self.record, self.as_of, ID)

    def _convert_scalars(self, frame: Any, facts: list[Any]) -> Any:
        """Quantities with a unit column in the declared unit, and their range checked."""

        columns = []
        for fact in facts:
            flag = f":suspect:{fact.name}"
            values, bad = _convert_units(
                frame.get_column(fact.name), self.wide.get_column(fact.name + UNIT_SUFFIX), fact
            )
            columns += [values, (frame.get_column(flag) | bad).alias(flag)]
        return frame.with_columns(columns) if columns else frame

    def _flagged(self, frame: Any, prefix: str, mark: Callable[[int, str], None]) -> None:
        """Call `mark(row, fact)` for every flag column starting with `prefix` that is set."""
        import polars as pl

        columns = [c for c in frame.columns if c.startswith(prefix)]
        if not columns:
            return
        # the columns taken, not selected: a `select` would align the chunks of every column
        flags = pl.DataFrame([frame.get_column(c) for c in columns])
        hit = flags.select(pl.any_horizontal(columns)).to_series()
        if not hit.any():
            return
        hits = pl.DataFrame([frame.get_column(ROW), *flags.get_columns()]).filter(hit)
        for row in hits.iter_rows(named=True):
            for column in columns:
                if row[column]:
                    mark(row[ROW], column[len(prefix) :])

    def _as_of(self) -> Any:
        import polars as pl

        program = self.program
        if self.as_of is not None:
            return pl.repeat(self.as_of, self.n, dtype=pl.Float64, eager=True).alias(AS_OF)
        if "as_of" not in self.wide.columns:
            if program.needs_as_of:
                for row in range(self.n):
                    self._no_as_of(row)
            return pl.Series(AS_OF, [None] * self.n, dtype=pl.Float64)
        raw = self.wide.get_column("as_of")
        seconds, bad = _instants(raw, True)
        for row in bad:
            problems: list[Diagnostic] = []
            program._as_of(None, _python(raw[row]), problems)
            self.problems.setdefault(row, []).extend(problems)
        if program.needs_as_of:
            for row in raw.is_null().arg_true().to_list():
                self._no_as_of(row)
        return seconds.alias(AS_OF)

    def _past(self, patients: Any) -> None:
        """PR421 for `past` dates after `as_of`, as `evaluate` refuses them (rows without
        another problem: `evaluate` checks them once the record has been read)."""
        import polars as pl

        from ..calendar import DAY
        from ..evaluate_time import past_problems

        for _slot, name, has_time in self.program.past_facts:
            as_of = pl.col(AS_OF)
            limit = as_of if has_time else (as_of / DAY).floor() * DAY
            late = patients.filter((pl.col(name) > limit).fill_null(False))
            for row, value, moment in late.select(ROW, name, AS_OF).iter_rows():
                if self.problems.get(row):
                    continue
                found = past_problems([(0, name, has_time)], [value], moment)
                self.problems.setdefault(row, []).extend(found)

    def _no_as_of(self, row: int) -> None:
        """PR410, as `evaluate` reports it for a record without `as_of`."""
        problems: list[Diagnostic] = []
        self.program._as_of(None, None, problems)
        self.problems.setdefault(row, []).extend(problems)

    # ------------------------------------------------------------------ series and sets

    def _long(self) -> tuple[dict[str, Any], dict[str, Any]]:
        import polars as pl

        facts = [f for f in self.facts.values() if is_collection(f)]
        nobody = pl.repeat(None, self.n, dtype=pl.Boolean, eager=True)
        presence = {f.name: nobody.alias(f.name) for f in facts}
        observations = {
            f.name: pl.DataFrame(
                schema={
                    ID: self.wide.schema[PATIENT_ID],
                    AT: pl.Float64,
                    VALUE: dtype(f.type),
                    SEQ: pl.UInt32,
                }
            )
            for f in facts
        }
        if self.long is None or self.long.height == 0:
            return observations, presence
        rows = self._long_rows()
        names = rows.get_column(FACT).unique(maintain_order=True).to_list()
        having = self._having(rows, names)
        for name in names:
            if name is None:
                continue  # a row without a fact names nothing to read
            part = rows.lazy().filter(pl.col(FACT) == name)  # read once per fact, not copied
            fact = self.facts.get(name)
            if fact is None:
                if not self.ignore_unknown:
                    for row in having[name].arg_true().to_list():
                        self.problems.setdefault(row, []).append(
                            self.program.reader._undeclared(name)
                        )
                continue
            if not is_collection(fact):
                raise _layout_error(
                    "PR511",
                    f"`{name}` is a scalar fact: its value goes in a column of the patients table",
                    "observations.fact",
                    f"add a column `{name}` to the patients table",
                )
            observations[name] = self._observations(fact, part)
            presence[name] = having[name].replace(False, None).alias(name)
        return observations, presence

    def _long_rows(self) -> Any:
        """The observations keyed by patient (`ID`), with the input order (`SEQ`)."""
        import polars as pl

        wanted = self.wide.schema[PATIENT_ID]
        if self.long.schema[PATIENT_ID] != wanted:
            self.long = self.long.with_columns(pl.col(PATIENT_ID).cast(wanted, strict=False))
        return self.long.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias(SEQ)).rename(
            {PATIENT_ID: ID}
        )

    def _having(self, rows: Any, names: list[Any]) -> dict[Any, Any]:
        """Per fact of the observations: which patients (rows of the patients table) have rows
        for it; PR513 if some observation's patient is not in the patients table."""
        import polars as pl

        ids = self.wide.get_column(PATIENT_ID)
        having = {}
        for name in names:
            fact = pl.col(FACT).is_null() if name is None else pl.col(FACT) == name
            mine = rows.lazy().filter(fact).select(ID).collect().to_series()
            if mine.is_sorted():  # in patient order: a faster `unique`
                mine = mine.set_sorted()
            mine = mine.unique()
            having[name] = ids.is_in(mine.implode())
            if mine.null_count() or having[name].sum() < len(mine):
                known = ids.drop_nulls().implode()
                first = mine.filter(~mine.is_in(known).fill_null(False))[0]
                raise _layout_error(
                    "PR513",
                    f"the observations table has rows for patient `{first}`, "
                    "who is not in the patients table",
                    "observations.patient_id",
                    "add the patient to the patients table (every patient has one row there)",
                )
        return having

    def _rows(self, ids: Any) -> list[int]:
        """The rows of the patients with these identifiers."""
        import polars as pl

        rows = self.wide.select(
            pl.int_range(pl.len(), dtype=pl.UInt32).alias(ROW), pl.col(PATIENT_ID)
        ).filter(pl.col(PATIENT_ID).is_in(ids.implode()))
        return rows.get_column(ROW).to_list()

    def _observations(self, fact: Any, part: Any) -> Any:
        """The normalised observations of `fact` (a series' markers included)."""
        import polars as pl

        series = isinstance(fact.type, SeriesT)
        value_raw = pl.col(VALUE_COLUMN)
        schema = part.collect_schema()
        has_at = AT_COLUMN in schema
        marker = value_raw.is_null() & (pl.col(AT_COLUMN).is_null() if has_at else pl.lit(True))
        unit = UNIT if UNIT in schema else None
        type_ = element(fact.type)
        values, suspect = _exprs(fact, type_, VALUE_COLUMN, schema[VALUE_COLUMN], unit, part)
        at: Any = pl.lit(None, dtype=pl.Float64)
        if series and has_at:
            at, bad_at = _exprs(fact, TimeT(True), AT_COLUMN, schema[AT_COLUMN], None, part)
            bad_at = bad_at | pl.col(AT_COLUMN).is_null()
            suspect = suspect | ((bad_at | value_raw.is_null()) & ~marker)
        elif series:
            suspect = suspect | ~marker
        else:
            suspect = suspect | (value_raw.is_null() & ~marker)
        converted = unit is not None and isinstance(type_, QtyT)
        frame = part.select(
            pl.col(ID),
            at.alias(AT),
            values.alias(VALUE),
            pl.col(SEQ),
            suspect.alias(":suspect"),
            marker.alias(":marker"),
            *([pl.col(UNIT).cast(pl.String).alias(":unit")] if converted else []),
        ).collect()
        if converted:
            values, bad = _convert_units(frame.get_column(VALUE), frame.get_column(":unit"), fact)
            flags = (frame.get_column(":suspect") | bad).alias(":suspect")
            frame = frame.with_columns(values, flags).drop(":unit")
        suspects = frame.filter(pl.col(":suspect")).get_column(ID).unique()
        if len(suspects):
            for row in self._rows(suspects):
                self.suspects.setdefault(row, set()).add(fact.name)
        if not series:  # a series' marker rows have no time: no window ever holds them
            frame = frame.filter(~pl.col(":marker"))
        frame = frame.drop(":suspect", ":marker")
        if frame.get_column(ID).is_sorted():  # observations in patient order: faster groups
            frame = _sorted(frame, ID)
        return frame

    # ------------------------------------------------------------------ suspects

    def _reread(self, patients: Any, observations: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """Read each suspect row's suspect facts with the interpreter's reader."""
        import polars as pl

        reader = self.program.reader
        patches: dict[str, list[tuple[int, Any]]] = {}
        replaced: dict[str, list[tuple[int, Any]]] = {}
        for row, names in sorted(self.suspects.items()):
            record = self.record(row, only=names)
            values, _, problems = reader.read(record, True)
            if problems:
                self.problems.setdefault(row, []).extend(problems)
                continue
            for name in names:
                fact = self.facts[name]
                value = values[fact.index]
                if is_collection(fact):
                    replaced.setdefault(name, []).append((row, value))
                else:
                    patches.setdefault(name, []).append((row, column_value(value)))
        if patches:
            columns = []
            for name, items in patches.items():
                column = patients.get_column(name)
                index = pl.Series([r for r, _ in items], dtype=pl.UInt32)
                new = pl.Series([v for _, v in items], dtype=column.dtype)
                columns.append(column.scatter(index, new))
            patients = patients.with_columns(columns)
        for name, items in replaced.items():
            ids = self.wide.get_column(PATIENT_ID)
            observations[name] = _replace(observations[name], self.facts[name], items, ids)
        return patients, observations

    def record(self, row: int, only: set[str] | None = None) -> dict[str, Any]:
        """Patient `row`'s record as `evaluate` takes it, rebuilt from the layout's raw values."""
        import polars as pl

        wide = self.wide
        record: dict[str, Any] = {}
        if "as_of" in wide.columns and only is None:
            value = _python(wide.get_column("as_of")[row])
            if value is not None:
                record["as_of"] = value
        for name, fact in self.facts.items():
            if only is not None and name not in only:
                continue
            if is_collection(fact):
                continue
            if name not in wide.columns:
                continue
            value = _typed(fact, _python(wide.get_column(name)[row]))
            if value is None:
                continue
            unit_column = name + UNIT_SUFFIX
            unit = wide.get_column(unit_column)[row] if unit_column in wide.columns else None
            record[name] = {"value": value, "unit": unit} if unit is not None else value
        if self.long is not None:
            pid = wide.get_column(PATIENT_ID)[row]
            mine = self.long.filter(pl.col(PATIENT_ID) == pid)  # in input order
            for fact_name in mine.get_column(FACT).unique(maintain_order=True).to_list():
                if only is not None and fact_name not in only:
                    continue
                fact = self.facts.get(fact_name)
                part = mine.filter(pl.col(FACT) == fact_name)
                record[fact_name] = _collection(fact, part)
        return record


def _collection(fact: Any, part: Any) -> list[Any]:
    series = fact is None or isinstance(fact.type, SeriesT)
    out: list[Any] = []
    for item in part.iter_rows(named=True):
        at, value, unit = item.get(AT_COLUMN), item.get(VALUE_COLUMN), item.get(UNIT)
        if at is None and value is None:
            continue  # the marker of a known, empty series or set
        value = _typed(fact, _python(value))
        if not series:
            out.append(value)
            continue
        observation: dict[str, Any] = {}
        if at is not None:
            observation["at"] = _python(at)
        if value is not None:
            observation["value"] = value
        if unit is not None:
            observation["unit"] = unit
        out.append(observation)
    return out


def quoted(text: str) -> bool:
    """Whether a string must be written as its JSON (in quotes) in a text cell: the text reading
    would take it for a number or a boolean, or it starts with a quote."""
    if text.startswith('"') or text in ("true", "false"):
        return True
    try:
        float(text.strip())
    except ValueError:
        return False
    return True


def _unquoted(text: str) -> str | None:
    """The string a text cell in quotes stands for (`quoted`), or None."""
    if not (len(text) >= 2 and text.startswith('"') and text.endswith('"')):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _typed(fact: Any, value: Any) -> Any:
    """A text cell (CSV) as the JSON value it stands for: a string when it is in quotes (a
    JSON string, see `quoted`); for a fact that does not hold text, a boolean or a number when
    the text reads as one (a string that does is in quotes); otherwise the text itself, for the
    reader to judge."""
    if not isinstance(value, str) or fact is None:
        return value
    text = _unquoted(value)
    if isinstance(element(fact.type), CodeT):
        return _coding(value if text is None else text)
    if text is not None:
        return text
    if isinstance(element(fact.type), TextT | ChoiceT):
        return value
    if value in ("true", "false"):
        return value == "true"
    text = value.strip()
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return value


def _replace(frame: Any, fact: Any, items: list[tuple[int, Any]], ids: Any) -> Any:
    """`frame` with the observations of the patients in `items` replaced by the reader's."""
    import polars as pl

    keys = [ids[r] for r, _ in items]
    kept = frame.filter(~pl.col(ID).is_in(pl.Series(keys, dtype=ids.dtype).implode()))
    new_rows, ats, values = [], [], []
    for (_, value), key in zip(items, keys, strict=True):
        if value is UNKNOWN:
            continue
        if isinstance(fact.type, SeriesT):
            times, items_ = value
            new_rows += [key] * len(items_)
            ats += list(times)
            values += list(items_)
        else:
            members = sorted(value, key=str)
            new_rows += [key] * len(members)
            ats += [None] * len(members)
            values += members
    added = pl.DataFrame(
        [
            pl.Series(ID, new_rows, dtype=ids.dtype),
            pl.Series(AT, ats, dtype=pl.Float64),
            pl.Series(VALUE, values, dtype=frame.schema[VALUE]),
        ]
    )
    start = (frame.get_column(SEQ).max() or 0) + 1 if frame.height else 0
    added = added.with_columns(
        pl.int_range(start, start + added.height, dtype=pl.UInt32).alias(SEQ)
    )
    return pl.concat([kept, added])


# --------------------------------------------------------------------------- columns


def _python(value: Any) -> Any:
    """A cell as the JSON value a record would hold (datetimes as ISO text)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _column(frame: Any, name: str) -> Any:
    """The distinct values of a column of a DataFrame or LazyFrame."""
    import polars as pl

    if isinstance(frame, pl.LazyFrame):
        return frame.select(pl.col(name).unique()).collect().to_series()
    return frame.get_column(name).unique()


def _time_map(column: Any, has_time: bool, never: bool = False) -> tuple[Any, Any]:
    """(each text of a column of distinct dates or datetimes, its seconds; null: unreadable);
    "never" is `NEVER_SECONDS` for a fact declared `or never`."""
    import polars as pl

    texts = column.cast(pl.String).drop_nulls()
    seconds = parse_texts(texts, has_time, datetime_seconds if has_time else _date_seconds)
    if never:
        seconds = pl.select(
            pl.when(texts == "never").then(pl.lit(NEVER_SECONDS)).otherwise(seconds)
        ).to_series()
    return texts, seconds


def _code_map(column: Any) -> dict[str, str | None]:
    """The canonical code of each distinct text of a column (None: not a code)."""
    from ..codes import CodeValueError, read_code

    seen: dict[str, str | None] = {}
    for text in column.drop_nulls().unique().to_list():
        try:
            seen[text] = read_code(_coding(text))
        except CodeValueError:
            seen[text] = None
    return seen


def _coding(text: str) -> Any:
    """A code cell: ``SYSTEM#code``, or a FHIR Coding as JSON text (as `convert` writes it)."""
    if text.startswith("{"):
        import json

        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _exprs(
    fact: Any, type_: Any, name: str, kind: Any, unit: str | None, frame: Any
) -> tuple[Any, Any]:
    """(normalised value, suspect) expressions for the raw column `name` of `fact`.

    `unit` names the column of units, if any; `frame` holds the columns (for the distinct texts
    of a date or code column). A quantity with a unit column is left in its units and its range
    is not checked: `_convert_units` does both, once the column is read.
    """
    import polars as pl

    raw = pl.col(name)
    present = raw.is_not_null()
    nothing = pl.lit(None, dtype=dtype(type_))
    match type_:
        case BoolT():
            if kind == pl.Boolean:
                values = raw
            elif kind == pl.String:
                values = pl.when(raw == "true").then(True).when(raw == "false").then(False)
            else:
                values = nothing
        case NumT() | QtyT():
            if kind.is_numeric():
                values = raw.cast(pl.Float64)
            elif kind == pl.String:
                values = raw.str.strip_chars().cast(pl.Float64, strict=False)
            else:
                values = nothing
        case TimeT(has_time=has_time):
            if kind == pl.Date:
                values = (raw.cast(pl.Int64) * 86400).cast(pl.Float64)
            elif isinstance(kind, pl.Datetime):
                values = raw.dt.epoch("us").cast(pl.Float64) / 1e6
            elif kind == pl.String:
                texts, seconds = _time_map(_column(frame, name), has_time, fact.never)
                values = (
                    raw.replace_strict(texts, seconds, default=None, return_dtype=pl.Float64)
                    if len(texts)
                    else nothing
                )
            else:
                values = nothing
        case TextT() | ChoiceT():
            if kind == pl.String and _any_quoted(frame, name):
                # a string in quotes (`quoted`): its inside, if plain
                inside = raw.str.slice(1, raw.str.len_chars() - 2)
                plain = (
                    raw.str.starts_with('"')
                    & raw.str.ends_with('"')
                    & (raw.str.len_chars() >= 2)
                    & ~inside.str.contains(r'["\\]')
                )
                values = (
                    pl.when(plain)
                    .then(inside)
                    .when(raw.str.starts_with('"'))
                    .then(None)  # escapes: read by the reader itself
                    .otherwise(raw)
                )
            elif kind == pl.String:  # no text in quotes: each text is itself
                values = raw
            else:
                values = nothing
        case CodeT():  # each distinct text read once: canonical code, or null (a suspect)
            seen = _code_map(_column(frame, name)) if kind == pl.String else {}
            values = (
                raw.replace_strict(list(seen), list(seen.values()), default=None,
                                   return_dtype=pl.String)
                if seen
                else nothing
            )  # fmt: skip
        case _:  # pragma: no cover - every element type is listed
            raise AssertionError(type_)
    values = values.cast(dtype(type_))
    suspect = present & values.is_null()
    if isinstance(type_, ChoiceT):
        suspect = suspect | (present & ~values.is_in(pl.Series(type_.choices).implode()))
    if isinstance(type_, NumT | QtyT):
        suspect = suspect | (present & ~values.is_finite().fill_null(False))
        if isinstance(type_, NumT) and type_.integer:
            suspect = suspect | (present & (values.round(0) != values).fill_null(False))
        if fact.low is not None and not (isinstance(type_, QtyT) and unit is not None):
            suspect = suspect | ((values < fact.low) | (values > fact.high)).fill_null(False)
    elif unit is not None:
        suspect = suspect | pl.col(unit).is_not_null()  # a unit on a value that has none
    return values, suspect.fill_null(False)


def _any_quoted(frame: Any, name: str) -> bool:
    """Whether some text of a column starts with a quote (a JSON string, see `quoted`)."""
    import polars as pl

    found = frame.select(pl.col(name).str.starts_with('"').any())
    if isinstance(found, pl.LazyFrame):
        found = found.collect()
    return bool(found.item())


def _convert_units(values: Any, units_: Any, fact: Any) -> tuple[Any, Any]:
    """(values in the declared unit, the rows whose unit does not convert or whose value is out
    of range) of a quantity column and its column of units: each distinct unit converted
    once, on its own rows, rounded as `units.Conversion` rounds (`population.clean`)."""
    import polars as pl

    type_ = element(fact.type)
    texts = units_.cast(pl.String)
    bad = pl.repeat(False, len(values), dtype=pl.Boolean, eager=True)
    for name in texts.drop_nulls().unique().to_list():
        if name == type_.unit:
            continue
        rows = (texts == name).fill_null(False)
        try:
            conversion = units.conversion(name, type_.unit, type_.molar_mass)
        except units.UnitError:
            bad = bad | rows
            continue
        index = rows.arg_true()
        converted = clean(values.gather(index) * conversion.factor + conversion.offset)
        values = values.scatter(index, converted)
    if fact.low is not None:
        bad = bad | ((values < fact.low) | (values > fact.high)).fill_null(False)
    return values, bad


def _sorted(frame: Any, name: str) -> Any:
    """`frame` with its column `name` flagged as sorted (no copy: `with_columns` may align the
    chunks of every column)."""
    frame = frame.clone()
    frame.replace_column(frame.get_column_index(name), frame.get_column(name).set_sorted())
    return frame


def _increasing(ids: Any) -> bool:
    """Whether a column of identifiers is strictly increasing (so, unique), without nulls."""
    if ids.null_count():
        return False
    try:
        return bool((ids.slice(1) > ids.slice(0, len(ids) - 1)).all())
    except Exception:  # identifiers of a type without an order
        return False


def _instants(raw: Any, has_time: bool) -> tuple[Any, list[int]]:
    """Seconds since the epoch of a column of dates / datetimes, and the rows that failed."""
    import polars as pl

    kind = raw.dtype
    if kind == pl.Date:
        return (raw.cast(pl.Int64) * 86400).cast(pl.Float64).alias(raw.name), []
    if isinstance(kind, pl.Datetime):
        if kind.time_zone is not None:
            raw = raw.dt.convert_time_zone("UTC")
        micros = raw.dt.epoch("us")
        return (micros.cast(pl.Float64) / 1e6).alias(raw.name), []
    if kind != pl.String:
        return pl.Series(
            raw.name, [None] * len(raw), dtype=pl.Float64
        ), raw.is_not_null().arg_true().to_list()
    slow = datetime_seconds if has_time else _date_seconds
    values = parse_texts(raw, has_time, slow).alias(raw.name)
    bad = (raw.is_not_null() & values.is_null()).arg_true().to_list()
    return values.alias(raw.name), bad


def _date_seconds(text: str) -> float:
    from ..facts import _date

    return _date(text)


__all__ = ["Layout", "from_layout", "read_layout", "write_layout"]
