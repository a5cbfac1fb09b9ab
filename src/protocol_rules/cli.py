"""The command line: a thin shell over the API.

Exit codes: `check` 0 clean (warnings allowed), 1 errors found; `eval` 0 when it produced a
verdict (whatever the verdict), 1 on a rules or patient-data error; every command 1 when a file
cannot be read (PR001), 2 on a usage error or an internal error (so a crash is never mistaken
for a finding).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from ._version import __version__
from .diagnostics import RulesError, file_error
from .render.diagnostics import diagnostics_json, render_diagnostics, summary, use_color
from .render.safe import printable
from .source import normalise, read_text, replace_file

if TYPE_CHECKING:
    from .protocol import Protocol

# The pipeline (parser, checker, evaluator) is imported by the commands that use it, so that
# `--help` and `--version` answer at once.

EXIT_FINDINGS = 1
EXIT_USAGE = 2


def _read_text(path: str) -> str:
    """A file's text (or standard input for `-`), or a `RulesError` (PR001) saying why not."""
    try:
        if path == "-":
            return normalise(sys.stdin.read())
        return read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError([file_error(path, exc)]) from None


def _print_errors(exc: RulesError) -> None:
    click.echo(render_diagnostics(exc.diagnostics, color=use_color(sys.stderr)), err=True)


def _load(path: str) -> Protocol:
    from .protocol import load_protocol

    try:
        return load_protocol(path)
    except RulesError as exc:
        _print_errors(exc)
        raise SystemExit(EXIT_FINDINGS) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="protocol-rules")
def cli() -> None:
    """Clinical-trial eligibility criteria as executable, explainable rules."""


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for editors and CI.",
)
@click.option(
    "--map",
    "data_map",
    metavar="TOML",
    help="Also check this data map against the (one) protocol; list the facts it leaves unknown.",
)
def check(files: Sequence[str], fmt: str, data_map: str | None) -> None:
    """Check rules files: syntax, names, types and units. Exit 1 if any has an error."""
    from .protocol import check_text, read_source

    results = []
    for name in files:
        try:
            source = read_source(name)
        except RulesError as exc:
            results.append((name, list(exc.diagnostics)))
            continue
        results.append((name, check_text(source.text, name)))
    if data_map is not None:
        results.append((data_map, _check_map(files, results, data_map)))
    failed = any(d.is_error for _, diags in results for d in diags)
    if fmt == "json":
        click.echo(diagnostics_json(results))
    else:
        color = use_color(sys.stdout)
        several = len(results) > 1
        for name, diags in results:
            if diags:
                click.echo(render_diagnostics(diags, color=color, name=name if several else None))
                if several:
                    click.echo()
            else:
                click.echo(f"{printable(name, newlines=False)}: ok")
        if several:
            errors = sum(d.is_error for _, diags in results for d in diags)
            warnings = sum(not d.is_error for _, diags in results for d in diags)
            click.echo(f"{len(results)} files checked: {summary(errors, warnings)}")
    raise SystemExit(EXIT_FINDINGS if failed else 0)


def _check_map(files: Sequence[str], results: list[Any], data_map: str) -> list[Any]:
    """The diagnostics of a data map checked against the one protocol of `files`."""
    from .datamap import load_data_map
    from .diagnostics import error
    from .protocol import load_protocol

    if len(files) != 1 or any(d.is_error for d in results[0][1]):
        return [
            error(
                "PR803",
                "`--map` checks a data map against one protocol that loads",
                None,
                path=data_map,
                help="protocol-rules check PROTOCOL.rules --map PROTOCOL.omop.toml",
            )
        ]
    try:
        return list(load_data_map(data_map, load_protocol(files[0])).warnings)
    except RulesError as exc:
        return list(exc.diagnostics)


def _clinical_patient(
    rules: Protocol, data: str, data_map: str, as_of: str | None, patient_id: str | None
) -> Any:
    """The record of one person of clinical data read through a data map."""
    from .cli_screen import _clinical
    from .diagnostics import error

    records = _clinical(rules, data, data_map, as_of)
    if patient_id is None and len(records) == 1:
        return records[0]
    found = [r for r in records if r["id"] == patient_id]
    if patient_id is None or not found:
        ids = ", ".join(str(r["id"]) for r in records[:10])
        raise RulesError(
            [
                error(
                    "PR858",
                    "pick a patient with --id"
                    if patient_id is None
                    else f"no person `{patient_id}` in `{data}`",
                    None,
                    path=data,
                    help=f"the data holds {len(records)} persons: {ids}"
                    + (", …" if len(records) > 10 else ""),
                )
            ]
        )
    return found[0]


def _read_patient(path: str) -> Any:
    from .patient_json import read_patient_json

    if path == "-":
        return read_patient_json(_read_text(path), path)
    try:
        text = read_text(path)
    except UnicodeDecodeError:  # bad patient data (PR401), not a file that cannot be read
        with open(path, "rb") as handle:
            return read_patient_json(handle.read(), path)
    except OSError as exc:
        raise RulesError([file_error(path, exc)]) from None
    return read_patient_json(text, path)


@cli.command(name="eval")
@click.argument("protocol", type=click.Path())
@click.argument("patient", type=click.Path(allow_dash=True))
@click.option(
    "--as-of", "as_of", metavar="ISO", help='Evaluation time (default: the patient\'s "as_of").'
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="text for people, markdown for reports, json for programs (also for errors).",
)
@click.option(
    "--brief",
    is_flag=True,
    help="Traces only for the deciding criteria (text, markdown); none at all (json).",
)
@click.option("--ignore-unknown", is_flag=True, help="Accept keys the protocol does not declare.")
@click.option(
    "--map",
    "data_map",
    metavar="TOML",
    help="PATIENT is clinical data (OMOP CDM or FHIR R4) read through this data map.",
)
@click.option("--id", "patient_id", metavar="ID", help="With --map: the person or Patient id.")
def eval_(
    protocol: str,
    patient: str,
    as_of: str | None,
    fmt: str,
    brief: bool,
    ignore_unknown: bool,
    data_map: str | None,
    patient_id: str | None,
) -> None:
    """Evaluate PATIENT (a JSON file, or - for standard input) against PROTOCOL.

    With --map, PATIENT is an OMOP CDM or FHIR R4 input and --id picks the person.
    """
    from .protocol import load_protocol

    where = protocol
    try:
        rules = load_protocol(protocol)
        where = patient
        if data_map is not None:
            record = _clinical_patient(rules, patient, data_map, as_of, patient_id)
        else:
            record = _read_patient(patient)
        result = rules.evaluate(record, as_of=as_of, ignore_unknown=ignore_unknown)
    except RulesError as exc:
        if fmt == "json":  # machine output stays machine-readable, on stdout
            click.echo(diagnostics_json([(where, exc.diagnostics)]))
        else:
            _print_errors(exc)
        raise SystemExit(EXIT_FINDINGS) from None
    if fmt == "json":
        click.echo(result.to_json(indent=2, traces=not brief))
    elif fmt == "markdown":
        from .render.markdown import to_markdown

        click.echo(to_markdown(result, brief=brief))
    else:
        from .render.text import explain, terminal_width

        width = terminal_width(sys.stdout)
        click.echo(explain(result, color=use_color(sys.stdout), brief=brief, width=width))


@cli.command()
@click.argument("protocol", type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json-schema"]),
    default="table",
    show_default=True,
)
def facts(protocol: str, fmt: str) -> None:
    """List the facts PROTOCOL needs, as a table or as a JSON Schema for patient records."""
    from .render.patient_schema import facts_table, patient_schema

    rules = _load(protocol)
    if fmt == "json-schema":
        click.echo(json.dumps(patient_schema(rules), indent=2, ensure_ascii=False))
    else:
        click.echo(facts_table(rules))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Change nothing; exit 1 if a file would change, naming it.",
)
def fmt(files: Sequence[str], check_only: bool) -> None:
    """Rewrite rules FILES in the canonical layout (- reads standard input, writes stdout).

    A file is replaced whole (written beside it, then renamed over it), never truncated in
    place; a symbolic link is followed and the file it points to is rewritten.
    """
    from .format import format_text

    changed, failed = [], False
    for name in files:
        try:
            text = sys.stdin.read() if name == "-" else _read_as_written(name)
            formatted = format_text(text, name)
        except RulesError as exc:
            _print_errors(exc)
            failed = True
            continue
        if name == "-":
            if check_only and formatted != text:
                changed.append(name)
            elif not check_only:
                click.echo(formatted, nl=False)
            continue
        if formatted == text:
            continue
        changed.append(name)
        shown = printable(name, newlines=False)
        if check_only:
            click.echo(f"would reformat {shown}")
            continue
        try:
            replace_file(name, formatted)
        except OSError as exc:
            _print_errors(RulesError([file_error(name, exc, writing=True)]))
            failed = True
            continue
        click.echo(f"reformatted {shown}", err=True)
    if check_only and changed:
        noun = "file" if len(changed) == 1 else "files"
        click.echo(f"{len(changed)} {noun} would be reformatted", err=True)
    raise SystemExit(EXIT_FINDINGS if failed or (check_only and changed) else 0)


def _read_as_written(path: str) -> str:
    try:
        return read_text(path, as_written=True)
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError([file_error(path, exc)]) from None


# registers `screen` and `convert`; `sql`; `test`, `lint` and `diff`
from . import cli_screen, cli_sql, cli_tools  # noqa: E402, F401
from .lsp import command as _lsp_command  # noqa: E402, F401  (registers `lsp`)


def _guarded(command: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SystemExit:
            raise
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except Exception as exc:
            click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
            click.echo("please report this with the input that caused it", err=True)
            raise SystemExit(EXIT_USAGE) from None

    return run


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `protocol-rules` console script."""
    _guarded(cli.main)(args=argv, prog_name="protocol-rules")


if __name__ == "__main__":  # pragma: no cover
    main()
