"""The screening commands, `screen` and `convert`, on the `protocol-rules` group (see `cli`).

`screen` exits 0 when it produced results (whatever the statuses, malformed records included),
1 on a bad protocol or unreadable data; `convert` exits 0 when every record was converted, 1
when some line was not a patient record (the others are written) or the input is unreadable.
Polars is imported only when a command runs, so the other commands stay light.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from .cli import EXIT_FINDINGS, _load, _print_errors, cli
from .diagnostics import RulesError, error
from .render.safe import printable

JSON_VERSION = "1.0"


@cli.command()
@click.argument("protocol", type=click.Path())
@click.argument("data", type=click.Path())
@click.option("--as-of", "as_of", metavar="ISO", help="Evaluation time for every patient.")
@click.option("--out", metavar="FILE", help="Write the results: .parquet, .csv, .json, .jsonl.")
@click.option("--report", metavar="FILE", help="Write the HTML report.")
@click.option("--without", multiple=True, metavar="ID", help="What if this criterion is dropped?")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--engine", default="polars", show_default=True, help="The back end.")
@click.option(
    "--memory-limit",
    metavar="SIZE",
    help="DuckDB, data read in place: the most memory DuckDB uses (1GB, 500MB); it spills the "
    "rest to disk.",
)
@click.option(
    "--temp-directory", metavar="DIR", help="DuckDB: where it spills (default: a temporary one)."
)
@click.option("--threads", type=int, metavar="N", help="DuckDB: the threads it runs.")
@click.option(
    "--master", metavar="URL", help="Spark: the master (local[2], spark://host:7077, yarn)."
)
@click.option("--ignore-unknown", is_flag=True, help="Accept facts the protocol does not declare.")
@click.option(
    "--map",
    "data_map",
    metavar="TOML",
    help="DATA is clinical data (an OMOP CDM, or FHIR R4) read through this data map.",
)
def screen(
    protocol: str,
    data: str,
    as_of: str | None,
    out: str | None,
    report: str | None,
    without: Sequence[str],
    fmt: str,
    engine: str,
    ignore_unknown: bool,
    data_map: str | None,
    memory_limit: str | None,
    temp_directory: str | None,
    threads: int | None,
    master: str | None,
) -> None:
    """Screen a population DATA (JSON Lines, or the columnar layout) against PROTOCOL.

    With --map, DATA is an OMOP CDM (a folder of CSV or Parquet tables, a .zip of CSVs, a
    DuckDB file) or FHIR R4 (a Bundle .json, an .ndjson export, a folder), as the map says.

    With --engine duckdb, a layout folder, Parquet / CSV file or DuckDB database file is read
    by DuckDB in place; with --engine spark, a path Spark reads (s3a://, hdfs://, a folder)
    holding the layout's Parquet is read by Spark.
    """
    rules = _load(protocol)
    given = {
        "memory_limit": memory_limit,
        "temp_directory": temp_directory,
        "threads": threads,
        "master": master,
    }
    options = {k: v for k, v in given.items() if v is not None} or None
    try:
        if data_map is not None:
            data = _clinical(rules, data, data_map, as_of, layout=True)
        with _progress() as progress:
            screening = rules.screen(
                data,
                as_of=as_of,
                engine=engine,
                ignore_unknown=ignore_unknown,
                progress=progress,
                engine_options=options,
            )
            what_if = screening.what_if(without) if without else None
            if out:
                progress("writing results", 0, None)
                screening.write(out)
            if report:
                progress("writing the report", 0, None)
                screening.report(report, without=without)
    except RulesError as exc:
        _print_errors(exc)
        raise SystemExit(EXIT_FINDINGS) from None
    if fmt == "json":
        click.echo(json.dumps(_json(screening, what_if), indent=2, ensure_ascii=False))
    else:
        click.echo(_text(screening, what_if))
    _report_errors(screening)


def _clinical(rules: Any, data: str, path: str, as_of: str | None, layout: bool = False) -> Any:
    """The patient records (or, with `layout`, the columnar layout) of clinical data `data`
    through the data map at `path`; the map's warnings and the rows it could not use on
    standard error."""
    from .cli import render_diagnostics, use_color
    from .datamap import load_data_map
    from .sources import fhir_layout, fhir_patients, omop_layout, omop_patients

    data_map = load_data_map(path, rules)
    problems: list[Any] = list(data_map.warnings)
    if layout:
        read: Any = omop_layout if data_map.model == "omop" else fhir_layout
        records = read(data, data_map, as_of=as_of, problems=problems)
    else:
        read = omop_patients if data_map.model == "omop" else fhir_patients
        records = list(read(data, data_map, as_of=as_of, problems=problems))
    if problems:
        shown = problems if len(problems) <= 20 else problems[:20]
        click.echo(render_diagnostics(shown, color=use_color(sys.stderr)), err=True)
        if len(problems) > 20:
            click.echo(f"… and {len(problems) - 20} more", err=True)
    return records


def _json(screening: Any, what_if: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "version": JSON_VERSION,
        "protocol": {"id": screening.protocol.id, "title": screening.protocol.title},
        "patients": len(screening),
        "statuses": screening.status_counts(),
        "attrition": screening.attrition().to_dicts(),
        "counts": screening.counts().to_dicts(),
        "errors": screening.errors().to_dicts(),
    }
    if what_if is not None:
        out["what_if"] = {
            "without": list(what_if.without),
            "statuses": what_if.counts.to_dicts(),
            "gains": what_if.gains.to_dicts(),
        }
    return out


def _text(screening: Any, what_if: Any) -> str:
    statuses = screening.status_counts()
    total = len(screening)
    lines = [
        f"{printable(screening.protocol.id, newlines=False)}: {total:,} patients screened",
        "  " + ", ".join(f"{n:,} {s}" for s, n in statuses.items() if n or s != "error"),
        "",
        "Attrition (criteria in file order)",
    ]
    rows = [("step", "criterion", "remaining", "removed", "undecided", "%")]
    for row in screening.attrition().iter_rows(named=True):
        rows.append(
            (
                str(row["step"]),
                printable(row["criterion"] or "screened", newlines=False),
                f"{row['remaining']:,}",
                f"{row['removed']:,}",
                f"{row['undecided']:,}",
                f"{row['remaining_pct']:.1f}",
            )
        )
    lines += _table(rows, right=(0, 2, 3, 4, 5))
    lines += ["", "Criteria"]
    rows = [("criterion", "kind", "met", "not met", "unknown")]
    for row in screening.counts().iter_rows(named=True):
        rows.append(
            (
                printable(row["criterion"], newlines=False),
                row["kind"],
                f"{row['met']:,}",
                f"{row['not_met']:,}",
                f"{row['unknown']:,}",
            )
        )
    lines += _table(rows, right=(2, 3, 4))
    if what_if is not None:
        lines += ["", f"What if without {', '.join(what_if.without)}"]
        rows = [("status", "now", "without")]
        for row in what_if.counts.iter_rows(named=True):
            rows.append((row["status"], f"{row['before']:,}", f"{row['after']:,}"))
        lines += _table(rows, right=(1, 2))
    return "\n".join(lines)


def _table(rows: list[tuple[str, ...]], right: tuple[int, ...] = ()) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def _report_errors(screening: Any) -> None:
    """Every malformed record on standard error, one line each."""
    errors = screening.errors()
    if not errors.height:
        return
    click.echo(f"{errors.height:,} problem(s) in malformed records:", err=True)
    for row in errors.iter_rows(named=True):
        where = f" ({row['path']})" if row["path"] else ""
        click.echo(
            printable(
                f"  patient {row['patient_id']}: error[{row['code']}]: {row['message']}{where}",
                newlines=False,
            ),
            err=True,
        )


class _progress:
    """A rich progress display on standard error, when it is a terminal; else silent."""

    def __enter__(self) -> Any:
        self.display: Any = None
        if sys.stderr.isatty() and not os.environ.get("PROTOCOL_RULES_NO_PROGRESS"):
            try:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    Progress,
                    SpinnerColumn,
                    TextColumn,
                    TimeElapsedColumn,
                )
            except ImportError:  # pragma: no cover - rich comes with the [screen] extra
                return self.update
            self.display = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),  # pulses while the total is not known
                TextColumn("{task.completed:,} patients"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.display.__enter__()
            self.task = self.display.add_task("reading", total=None)
        return self.update

    def update(self, stage: str, done: int, total: int | None) -> None:
        if self.display is not None:
            self.display.update(self.task, description=stage, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.display is not None:
            self.display.__exit__(*exc)


@cli.command()
@click.argument("data", type=click.Path(allow_dash=False))
@click.argument("folder", type=click.Path(file_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True
)
def convert(data: str, folder: str, fmt: str) -> None:
    """Convert patient records (JSON Lines) into the columnar layout in FOLDER."""
    from .engines import require_polars
    from .sources import to_layout, write_layout
    from .sources.records import read_jsonl

    problems: list[str] = []
    try:
        require_polars()
        if not os.path.isfile(data):
            raise RulesError(
                [error("PR508", f"cannot read `{data}`: no such file", None, path=data)]
            )
        layout = to_layout(read_jsonl(data), problems)
        written = write_layout(layout, folder, fmt)
    except RulesError as exc:
        _print_errors(exc)
        raise SystemExit(EXIT_FINDINGS) from None
    patients = layout.patients.height
    rows = 0 if layout.observations is None else layout.observations.height
    click.echo(f"{patients:,} patients, {rows:,} observation rows")
    for path in written:
        click.echo(f"wrote {printable(path, newlines=False)}")
    for problem in problems:
        click.echo(printable(f"skipped {problem}", newlines=False), err=True)
    raise SystemExit(EXIT_FINDINGS if problems else 0)
