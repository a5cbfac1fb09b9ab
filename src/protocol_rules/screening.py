"""Screening a population: one protocol over many patients, and what a trial team reads from it.

`screen` reads the data (`sources`), runs a back end (`engines`) and returns a `Screening`,
which only reads the engine's result: every back end gets the same counts, attrition, what-if,
near misses, writers and report if it provides

- ``compile_protocol(checked)`` returning an object with ``run(population)`` -> a polars
  DataFrame with one row per patient in input order: ``:id`` (the patient id), ``c0``, ``c1``,
  … (each criterion's value in file order: true, false, or null for unknown) and ``:missing``
  (list of the missing facts' names, empty unless undecided);
- and ``near_misses(frame)`` -> (per criterion index, its leaves `near_miss.Leaf` with the name
  of a struct column ``value, distance, relative, flips``; the frame with those columns added).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from importlib import import_module
from typing import TYPE_CHECKING, Any

import attrs

from . import ast
from .diagnostics import Diagnostic, RulesError, error
from .engines import ScreeningError, engine, require_polars

if TYPE_CHECKING:
    import polars as pl

    from .protocol import Protocol
    from .result import Result
    from .sources.population import Population

STATUSES = ("eligible", "ineligible", "indeterminate", "error")
OUTCOMES = ("met", "not_met", "unknown")
#: Columns of `Screening.frame` besides one per criterion.
COLUMNS = ("patient_id", "status", "missing_facts", "error_code", "error_message")

Progress = Callable[[str, int, int | None], None]  # (stage, done, total or None)


def screen(
    protocol: Protocol,
    data: Any,
    as_of: datetime | str | None = None,
    engine_name: str = "polars",
    *,
    ignore_unknown: bool = False,
    progress: Progress | None = None,
    engine_options: Mapping[str, Any] | None = None,
) -> Screening:
    """Screen `data` (see `sources.read`) against `protocol`; see `Protocol.screen`.

    On DuckDB and Spark, data the engine can read itself (a path; a DuckDB connection) is
    screened where it lives (`engines.inplace`): only the result comes into Python."""
    require_polars()
    from .sources import read

    module = engine(engine_name)
    _check_columns(protocol)
    compiled = _compiled(protocol, engine_name, module)
    seconds = _as_of_seconds(as_of)
    if engine_name in IN_PLACE:
        inplace = import_module(IN_PLACE[engine_name])
        if inplace.in_place(data, engine_options):
            if progress:
                progress("screening in place", 0, None)
            from .engines.inplace import screen_in_place

            layout = inplace.open_layout(data, engine_options)
            found = screen_in_place(
                protocol, layout, as_of, seconds, engine_name, ignore_unknown=ignore_unknown
            )
            if progress:
                progress("screening in place", len(found), len(found))
            return found
    if not _missing_path(data):  # the reader's PR508 says what is wrong with it
        _no_options(engine_name, engine_options)
    population = read(data, protocol, seconds, ignore_unknown=ignore_unknown, progress=progress)
    if progress:
        progress("screening", 0, None)
    raw = compiled.run(population)
    if progress:
        progress("screening", population.size, population.size)
    return Screening(protocol, population, raw, as_of, engine_name, compiled)


#: Engines that screen data where it lives, and the module that says which data it can read.
IN_PLACE = {
    "duckdb": "protocol_rules.engines.duckdb_inplace",
    "spark": "protocol_rules.engines.spark_inplace",
}


def _missing_path(data: Any) -> bool:
    """Whether `data` is a local path where there is nothing."""
    if not isinstance(data, str | os.PathLike):
        return False
    path = os.fspath(data)
    return "://" not in path and not path.startswith("file:") and not os.path.exists(path)


def _no_options(name: str, options: Mapping[str, Any] | None) -> None:
    """PR526 for engine options given where no engine reads the data in place."""
    if options:
        from .engines.duckdb_inplace import bad_option

        if name in IN_PLACE:
            why = "it applies when the engine reads the data in place (a path, a DuckDB file)"
            help = "give the data as a layout folder or file, or screen without the option"
        else:
            why = f"the {name} engine takes no options"
            help = "leave out `engine_options`, or screen with `duckdb` or `spark`"
        raise bad_option(name, next(iter(options)), why, help)


def _compiled(protocol: Protocol, name: str, module: Any) -> Any:
    cache = protocol.__dict__.setdefault("_engines", {})
    if name not in cache:
        cache[name] = module.compile_protocol(protocol.checked)
    return cache[name]


def _as_of_seconds(as_of: Any) -> float | None:
    from .facts import Invalid, parse_instant

    if as_of is None:
        return None
    try:
        return parse_instant(as_of, "a datetime")
    except Invalid as exc:
        raise RulesError(
            [
                error(
                    "PR407", f"`as_of`: {exc.message}", None, path="as_of (argument)", help=exc.hint
                )
            ]
        ) from None


def _check_columns(protocol: Protocol) -> None:
    clashes = [c.id for c in protocol.criteria if c.id in COLUMNS]
    if clashes:
        raise ScreeningError(
            [
                error(
                    "PR504",
                    f"criterion `{clashes[0]}` has the name of a column of the screening result",
                    protocol.criteria[
                        [c.id for c in protocol.criteria].index(clashes[0])
                    ].decl.span,
                    help="rename the criterion: the result has the columns "
                    + ", ".join(f"`{c}`" for c in COLUMNS),
                )
            ]
        )


@attrs.frozen
class WhatIf:
    """What dropping criteria would change (see `Screening.what_if`)."""

    without: tuple[str, ...]
    counts: pl.DataFrame  # status, before, after
    gains: pl.DataFrame  # per criterion: how many patients it alone keeps out
    statuses: pl.DataFrame  # patient_id, before, after


class Screening:
    """The result of screening a population: one row per patient, in input order.

    `frame` has ``patient_id``, ``status`` (eligible, ineligible, indeterminate, or error for a
    malformed record), one column per criterion id with ``met`` / ``not_met`` / ``unknown``
    (null for a malformed record), ``missing_facts`` (for undecided patients: the absent facts
    that could still decide them) and ``error_code`` / ``error_message``.
    """

    def __init__(
        self,
        protocol: Protocol,
        population: Population,
        raw: pl.DataFrame,
        as_of: Any,
        engine_name: str,
        compiled: Any,
    ) -> None:
        import polars as pl

        self.protocol = protocol
        self.engine = engine_name
        self.as_of = as_of
        self._population = population
        ids = population.patients.get_column(":id")
        bad = pl.repeat(False, population.size, eager=True, dtype=pl.Boolean)
        if population.errors:
            bad = bad.scatter(sorted(population.errors), True)
        self._raw = raw.with_columns(ids.alias(":id"), bad.alias(":error"))
        self._compiled = compiled
        self._names = [f"c{i}" for i in range(len(protocol.criteria))]
        self.frame = self._frame()

    # ------------------------------------------------------------------ the frame

    @property
    def criteria(self) -> list[Any]:
        return list(self.protocol.criteria)

    def _status_expr(self, names: Sequence[str]) -> pl.Expr:
        import polars as pl

        kinds = {f"c{i}": c.kind for i, c in enumerate(self.protocol.criteria)}
        excluding = [
            (pl.col(n) == (kinds[n] is ast.CriterionKind.EXCLUSION)).fill_null(False) for n in names
        ]
        unknown = [pl.col(n).is_null() for n in names]
        statuses = pl.lit(pl.Series(STATUSES, dtype=pl.Enum(STATUSES)))
        if not names:
            excluding = unknown = [pl.lit(False)]
        code = (  # positions in STATUSES: a gather is fast, string literals are not
            pl.when(pl.col(":error"))
            .then(3)
            .when(pl.any_horizontal(excluding))
            .then(1)
            .when(pl.any_horizontal(unknown))
            .then(2)
            .otherwise(0)
            .cast(pl.UInt32)
        )
        return statuses.gather(code)

    def _frame(self) -> pl.DataFrame:
        import polars as pl

        outcomes = pl.lit(pl.Series(OUTCOMES, dtype=pl.Enum(OUTCOMES)))
        criteria = [
            pl.when(~pl.col(":error"))
            .then(outcomes.gather(_code(pl.col(n))))  # a gather is fast; string literals are not
            .alias(c.id)
            for n, c in zip(self._names, self.protocol.criteria, strict=True)
        ]
        codes, messages = self._error_columns()
        return self._raw.select(
            pl.col(":id").alias("patient_id"),
            self._status_expr(self._names).alias("status"),
            *criteria,
            pl.when(pl.col(":error"))
            .then(pl.lit([], dtype=pl.List(pl.String)))
            .otherwise(pl.col(":missing"))
            .alias("missing_facts"),
            codes.alias("error_code"),
            messages.alias("error_message"),
        )

    def _error_columns(self) -> tuple[pl.Series, pl.Series]:
        import polars as pl

        size = self._population.size
        codes = pl.repeat(None, size, dtype=pl.String, eager=True)
        messages = pl.repeat(None, size, dtype=pl.String, eager=True)
        errors = self._population.errors
        if errors:
            rows = sorted(errors)
            codes = codes.scatter(rows, [errors[r][0].code for r in rows])
            messages = messages.scatter(rows, [errors[r][0].message for r in rows])
        return codes, messages

    def __len__(self) -> int:
        return self._population.size

    def __repr__(self) -> str:
        return f"<Screening {self.protocol.id}: {len(self)} patients, {self.engine}>"

    # ------------------------------------------------------------------ summaries

    def status_counts(self) -> dict[str, int]:
        """Patients per status (every status listed, in a fixed order)."""
        counts = dict(self.frame.get_column("status").cast(str).value_counts().iter_rows())
        return {s: int(counts.get(s, 0)) for s in STATUSES}

    def counts(self) -> pl.DataFrame:
        """Per criterion, in file order: patients met, not met, unknown (malformed rows left
        out)."""
        import polars as pl

        rows = []
        screened = self._raw.filter(~pl.col(":error"))
        for n, c in zip(self._names, self.protocol.criteria, strict=True):
            column = screened.get_column(n)
            met = int(column.sum() or 0)
            unknown = int(column.null_count())
            rows.append((c.id, c.kind.value, met, len(column) - met - unknown, unknown))
        return pl.DataFrame(
            rows,
            schema={
                "criterion": pl.String,
                "kind": pl.String,
                "met": pl.Int64,
                "not_met": pl.Int64,
                "unknown": pl.Int64,
            },
            orient="row",
        )

    def attrition(self) -> pl.DataFrame:
        """Criteria applied in file order, as ATLAS shows it.

        Step 0 is every screened patient (malformed records left out). At each criterion:
        ``removed`` the patients it excludes who were still in, ``remaining`` those left,
        ``undecided`` those left with some criterion so far unknown.
        """
        import polars as pl

        screened = self._raw.filter(~pl.col(":error"))
        total = screened.height
        rows = [(0, "", "", "all screened patients", total, 0, 0)]
        excluded = pl.lit(False)
        unknown = pl.lit(False)
        columns = []
        for n, c in zip(self._names, self.protocol.criteria, strict=True):
            exclusion = c.kind is ast.CriterionKind.EXCLUSION
            excluded = excluded | (pl.col(n) == exclusion).fill_null(False)
            unknown = unknown | pl.col(n).is_null()
            columns.append(excluded.alias(f"x{n}"))
            columns.append((~excluded & unknown).alias(f"u{n}"))
        sums = screened.select(c.sum() for c in columns).row(0, named=True) if columns else {}
        before = total
        for step, (n, c) in enumerate(zip(self._names, self.protocol.criteria, strict=True), 1):
            remaining = total - int(sums[f"x{n}"])
            rows.append(
                (step, c.id, c.kind.value, c.text, remaining, before - remaining,
                 int(sums[f"u{n}"]))
            )  # fmt: skip
            before = remaining
        frame = pl.DataFrame(
            rows,
            schema={
                "step": pl.Int64,
                "criterion": pl.String,
                "kind": pl.String,
                "text": pl.String,
                "remaining": pl.Int64,
                "removed": pl.Int64,
                "undecided": pl.Int64,
            },
            orient="row",
        )
        share = (pl.col("remaining") / total * 100).round(1) if total else pl.lit(0.0)
        return frame.with_columns(share.alias("remaining_pct"))

    def what_if(self, without: Iterable[str] = ()) -> WhatIf:
        """Statuses with the criteria `without` dropped, and each criterion's gain.

        The gain of a criterion is how many patients it alone keeps out (among the criteria
        kept): dropping it would make them eligible (``would_be_eligible``) or undecided.
        """
        import polars as pl

        dropped = self._criterion_ids(without)
        kept = [n for n, c in zip(self._names, self.protocol.criteria, strict=True)
                if c.id not in dropped]  # fmt: skip
        before = self._status_expr(self._names).alias("before")
        after = self._status_expr(kept).alias("after")
        statuses = self._raw.select(pl.col(":id").alias("patient_id"), before, after)
        counts = pl.DataFrame(
            {
                "status": list(STATUSES),
                "before": [int((statuses["before"] == s).sum()) for s in STATUSES],
                "after": [int((statuses["after"] == s).sum()) for s in STATUSES],
            }
        )
        return WhatIf(tuple(dropped), counts, self._gains(kept), statuses)

    def _gains(self, kept: list[str]) -> pl.DataFrame:
        import polars as pl

        kinds = {f"c{i}": c for i, c in enumerate(self.protocol.criteria)}
        screened = self._raw.filter(~pl.col(":error"))
        excl = {
            n: (pl.col(n) == (kinds[n].kind is ast.CriterionKind.EXCLUSION)).fill_null(False)
            for n in kept
        }
        n_excluding = (
            pl.sum_horizontal([e.cast(pl.Int32) for e in excl.values()]) if excl else pl.lit(0)
        )
        rows = []
        if kept:
            frame = screened.with_columns(
                n_excluding.alias(":k"),
                pl.any_horizontal([pl.col(n).is_null() for n in kept]).alias(":u"),
            )
            for n in kept:
                alone = frame.filter(excl[n] & (pl.col(":k") == 1))
                eligible = int((~alone.get_column(":u")).sum())
                rows.append((kinds[n].id, kinds[n].kind.value, alone.height, eligible))
        return pl.DataFrame(
            rows,
            schema={
                "criterion": pl.String,
                "kind": pl.String,
                "keeps_out": pl.Int64,
                "would_be_eligible": pl.Int64,
            },
            orient="row",
        ).sort("keeps_out", descending=True, maintain_order=True)

    def _criterion_ids(self, ids: Iterable[str]) -> list[str]:
        from .suggestions import did_you_mean

        known = [c.id for c in self.protocol.criteria]
        out = []
        for cid in ids:
            if cid not in known:
                raise ScreeningError(
                    [
                        error(
                            "PR505",
                            f"`{cid}` is not a criterion of `{self.protocol.id}`",
                            None,
                            path="without",
                            help=did_you_mean(cid, known)
                            or "the criteria are " + ", ".join(f"`{k}`" for k in known),
                        )
                    ]
                )
            out.append(cid)
        return out

    # ------------------------------------------------------------------ patients

    def row(self, patient_id: Any) -> int:
        """The position of a patient in the input (the first, if an id repeats)."""
        import polars as pl

        found = self._raw.select(pl.arg_where(pl.col(":id") == patient_id)).to_series()
        if found.is_empty():
            raise KeyError(patient_id)
        return int(found[0])

    def record(self, patient_id: Any) -> dict[str, Any]:
        """The patient's record as the interpreter takes it (values as given, with units)."""
        return self._population.record(self.row(patient_id))

    def explain(self, patient_id: Any) -> Result:
        """The interpreter's full result for one patient: status, outcomes and every trace."""
        return self.protocol.evaluate(self.record(patient_id), as_of=self.as_of)

    def errors(self) -> pl.DataFrame:
        """Every diagnostic of every malformed record: patient_id, code, message, path, help."""
        import polars as pl

        ids = self._raw.get_column(":id")
        rows = [
            (ids[row], d.code, d.message, d.path, d.help)
            for row, problems in sorted(self._population.errors.items())
            for d in problems
        ]
        return pl.DataFrame(
            rows,
            schema={
                "patient_id": ids.dtype,
                "code": pl.String,
                "message": pl.String,
                "path": pl.String,
                "help": pl.String,
            },
            orient="row",
        )

    @property
    def diagnostics(self) -> dict[int, tuple[Diagnostic, ...]]:
        """Row -> the diagnostics of its malformed record."""
        return dict(self._population.errors)

    def near_misses(self, max_criteria: int = 1) -> pl.DataFrame:
        """Patients kept out by at most `max_criteria` criteria, each decided by a comparison.

        One row per (patient, excluding criterion): the comparison that alone keeps the patient
        out of it (the nearest, if several do), the patient's value and the distance to the
        threshold in the threshold's unit. Patients are sorted by how near they are: fewest
        criteria first, then the sum of the distances relative to each threshold.
        """
        import polars as pl

        kinds = [c.kind is ast.CriterionKind.EXCLUSION for c in self.protocol.criteria]
        excl = [(pl.col(n) == k).fill_null(False) for n, k in zip(self._names, kinds, strict=True)]
        schema = {
            "patient_id": self._raw.schema[":id"],
            "criteria": pl.Int64,
            "criterion": pl.String,
            "expr": pl.String,
            "value": pl.Float64,
            "threshold": pl.String,
            "unit": pl.String,
            "distance": pl.Float64,
            "relative": pl.Float64,
            "would_be": pl.String,
        }
        if not excl:
            return pl.DataFrame(schema=schema)
        base = self._raw.filter(~pl.col(":error")).with_columns(
            pl.sum_horizontal([e.cast(pl.Int32) for e in excl]).alias(":k"),
            pl.any_horizontal([pl.col(n).is_null() for n in self._names]).alias(":u"),
        )
        base = base.filter((pl.col(":k") >= 1) & (pl.col(":k") <= max_criteria))
        leaves, base = self._compiled.near_misses(base)
        parts = []
        for i, named in leaves:
            rows = base.filter(excl[i])
            candidates = [
                rows.select(
                    pl.col(":id"),
                    pl.col(":k"),
                    pl.col(":u"),
                    pl.lit(leaf.text).alias("expr"),
                    pl.lit(leaf.threshold_text).alias("threshold"),
                    pl.lit(leaf.unit, dtype=pl.String).alias("unit"),
                    pl.col(column).struct.unnest(),
                ).filter(pl.col("flips"))
                for leaf, column in named
            ]
            part = (
                pl.concat(candidates)
                .sort("relative", maintain_order=True)
                .group_by(":id", maintain_order=True)
                .first()
                .with_columns(pl.lit(self.protocol.criteria[i].id).alias("criterion"))
            )
            parts.append(part)
        if not parts:
            return pl.DataFrame(schema=schema)
        found = pl.concat(parts, how="diagonal_relaxed")
        per_patient = found.group_by(":id").agg(
            pl.len().alias(":found"), pl.col("relative").sum().alias(":total")
        )
        found = found.join(per_patient, on=":id").filter(pl.col(":found") == pl.col(":k"))
        would_be = pl.when(pl.col(":u")).then(pl.lit("indeterminate")).otherwise(pl.lit("eligible"))
        return (
            found.sort([":k", ":total", ":id", "relative"], maintain_order=True)
            .select(
                pl.col(":id").alias("patient_id"),
                pl.col(":k").cast(pl.Int64).alias("criteria"),
                "criterion",
                "expr",
                "value",
                "threshold",
                "unit",
                "distance",
                "relative",
                would_be.alias("would_be"),
            )
            .cast(schema)  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------------ writers

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write `frame` as Parquet (``.parquet``), CSV (``.csv``), JSON (``.json``) or JSON
        Lines (``.jsonl``), chosen by the file's extension."""
        name = os.fspath(path)
        suffix = os.path.splitext(name)[1].lower()
        writers = {
            ".parquet": self.write_parquet,
            ".csv": self.write_csv,
            ".json": self.write_json,
            ".jsonl": self.write_jsonl,
        }
        if suffix not in writers:
            raise ScreeningError(
                [
                    error(
                        "PR506",
                        f"cannot write results to `{name}`: unknown file type `{suffix}`",
                        None,
                        path=name,
                        help="use .parquet, .csv, .json or .jsonl",
                    )
                ]
            )
        writers[suffix](name)

    def write_parquet(self, path: str | os.PathLike[str]) -> None:
        self.frame.write_parquet(path)

    def write_csv(self, path: str | os.PathLike[str]) -> None:
        """CSV has no lists: ``missing_facts`` is written as names separated by ``;``."""
        import polars as pl

        self.frame.with_columns(pl.col("missing_facts").list.join(";")).write_csv(path)

    def write_json(self, path: str | os.PathLike[str]) -> None:
        self.frame.write_json(path)

    def write_jsonl(self, path: str | os.PathLike[str]) -> None:
        self.frame.write_ndjson(path)

    def report(self, path: str | os.PathLike[str], without: Sequence[str] = ()) -> None:
        """Write the HTML report (see `render.report`)."""
        from .render.report import report_html

        with open(path, "w", encoding="utf-8") as handle:
            handle.write(report_html(self, without=without))


def _code(value: pl.Expr) -> pl.Expr:
    """0, 1, 2 for met, not met, unknown (the positions in `OUTCOMES`)."""
    import polars as pl

    return pl.when(value.is_null()).then(2).when(value).then(0).otherwise(1).cast(pl.UInt32)


__all__ = ["OUTCOMES", "STATUSES", "Screening", "WhatIf", "screen"]
