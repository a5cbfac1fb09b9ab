"""The `sql` command on the `protocol-rules` group (see `cli`): the protocol as one SQL query.

``protocol-rules sql PROTOCOL --dialect D`` prints the query for a warehouse to run over the
columnar layout (docs/sql.md); ``--run DATA`` runs the DuckDB query over a DuckDB database file
or a layout folder in place and prints the statuses (``--out`` writes every row). Exits 0 when
it printed or ran the query, 1 on a bad protocol, a construct the dialect cannot express or
unreadable data. sqlglot and DuckDB are imported only when the command runs.
"""

from __future__ import annotations

from typing import Any

import click

from .cli import EXIT_FINDINGS, _load, _print_errors, cli
from .diagnostics import RulesError, error
from .render.safe import printable

DIALECT_NAMES = ("duckdb", "spark", "postgres", "bigquery", "snowflake", "tsql")
OUTPUTS = (".parquet", ".csv")


@cli.command()
@click.argument("protocol", type=click.Path(dir_okay=False))
@click.option(
    "--dialect",
    type=click.Choice(DIALECT_NAMES),
    default="duckdb",
    show_default=True,
    help="The SQL dialect to write (sqlglot's).",
)
@click.option("--as-of", "as_of", metavar="ISO", help="Evaluation time for every patient.")
@click.option("--patients", default="patients", show_default=True, help="The patients table.")
@click.option(
    "--observations", default="observations", show_default=True, help="The observations table."
)
@click.option(
    "--run",
    "data",
    metavar="DATA",
    help="Run the DuckDB query over DATA: a DuckDB file or a layout folder, read in place.",
)
@click.option("--out", metavar="FILE", help="With --run: write every row (.parquet or .csv).")
@click.option(
    "--unit",
    "units",
    multiple=True,
    metavar="FACT=UNIT",
    help="A unit the warehouse holds for a quantity fact (the printed query converts it).",
)
def sql(
    protocol: str,
    dialect: str,
    as_of: str | None,
    patients: str,
    observations: str,
    data: str | None,
    out: str | None,
    units: tuple[str, ...],
) -> None:
    """Print PROTOCOL as one SQL query over the columnar layout, or run it with --run."""
    rules = _load(protocol)
    try:
        from .engines import require

        require("sqlglot", "sql")
        if data is not None:
            require("duckdb", "sql")
        seconds = _seconds(as_of)
        if data is None:
            table = _unit_table(rules, units)
            click.echo(_printed(rules, dialect, seconds, patients, observations, table))
            return
        if dialect != "duckdb":
            raise _usage("--run runs the DuckDB query: leave out --dialect or use duckdb")
        _run(rules, data, seconds, out)
    except RulesError as exc:
        _print_errors(exc)
        raise SystemExit(EXIT_FINDINGS) from None


def _seconds(as_of: str | None) -> float | None:
    if as_of is None:
        return None
    from .screening import _as_of_seconds

    return _as_of_seconds(as_of)


def _unit_table(rules: Any, units: tuple[str, ...]) -> Any:
    """The unit table of the printed query: the units the rules file writes, and `--unit`'s."""
    from .engines.sql_layout import UnitTable

    pairs = []
    for given in units:
        fact, _, unit = given.partition("=")
        pairs.append((fact.strip(), unit.strip()))
    table = UnitTable.of_protocol(rules.checked, pairs)
    converted = {(r.fact, r.unit) for r in table.rows}
    for (fact, unit), given in zip(pairs, units, strict=True):
        target = _declared_unit(rules, fact)
        if target is None or ((fact, unit) not in converted and unit != target):
            raise _usage(
                f"--unit `{printable(given, newlines=False)}`: not FACT=UNIT for a quantity fact "
                "of this protocol with a unit that converts to its declared unit"
            )
    return table


def _declared_unit(rules: Any, fact: str) -> str | None:
    """The declared unit of a quantity fact (or of a series of quantities), else None."""
    for f in rules.facts:
        if f.name == fact:
            type_ = getattr(f.type, "element", f.type)
            return getattr(type_, "unit", None)
    return None


def _printed(
    rules: Any, dialect: str, as_of: float | None, patients: str, obs: str, units: Any
) -> str:
    from .engines.sql import compile_sql

    query = compile_sql(
        rules.checked, dialect, as_of=as_of, patients=patients, observations=obs, units=units
    )
    header = (
        f"-- {printable(rules.id, newlines=False)}: protocol-rules screening query "
        f"({dialect}); reads the tables {patients} and {obs} (docs/sql.md)"
    )
    return header + "\n" + query.sql() + ";"


def _run(rules: Any, data: str, as_of: float | None, out: str | None) -> None:
    from .engines.duckdb import connect_layout, run_layout

    if out is not None and not out.endswith(OUTPUTS):
        raise _usage(f"--out `{printable(out, newlines=False)}`: use a .parquet or .csv file")
    connection = connect_layout(data)
    try:
        _, frame = run_layout(rules.checked, connection, as_of)
    finally:
        connection.close()
    if out is not None:
        frame.write_parquet(out) if out.endswith(".parquet") else frame.write_csv(out)
    counts = frame.get_column("status").value_counts()
    found = dict(counts.iter_rows())
    statuses = ("eligible", "ineligible", "indeterminate", "error")
    click.echo(f"{printable(rules.id, newlines=False)}: {frame.height:,} patients screened")
    click.echo("  " + ", ".join(f"{found.get(s, 0):,} {s}" for s in statuses))
    if found.get("error"):
        click.echo(
            f"{found['error']:,} malformed records: see error_code and error_message"
            + (f" in {printable(out, newlines=False)}" if out else " (write them with --out)"),
            err=True,
        )


def _usage(message: str) -> RulesError:
    return RulesError([error("PR525", message, None, path="sql", help="see `sql --help`")])
