"""The authoring commands, `test`, `lint` and `diff`, on the `protocol-rules` group (see `cli`).

Exit codes, as for `check`: 0 when nothing was found (every case passed and coverage reached
`--fail-under`; no lint finding; the two protocols mean the same), 1 when something was (or a
file is bad), 2 on a usage or internal error. Z3 is imported only by `lint` and `diff`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .cli import EXIT_FINDINGS, EXIT_USAGE, _load, _print_errors, cli
from .diagnostics import RulesError, error
from .render.diagnostics import use_color

JSON_VERSION = "1.0"


@cli.command(name="test")
@click.argument("protocol", type=click.Path())
@click.argument("tests", required=False, type=click.Path(dir_okay=False))
@click.option("--coverage", "show_coverage", is_flag=True, help="Report what the cases reach.")
@click.option(
    "--fail-under",
    type=click.FloatRange(0, 100),
    metavar="PCT",
    help="Exit 1 when the coverage is below PCT percent (implies --coverage).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def test_command(
    protocol: str, tests: str | None, show_coverage: bool, fail_under: float | None, fmt: str
) -> None:
    """Run the test cases of PROTOCOL (from TESTS, by default NAME.tests.toml beside it).
    PROTOCOL may be a folder: every NAME.tests.toml in it runs against its protocol."""
    from .tools.testfile import SUFFIX, path_of_tests, read_tests

    folder = Path(protocol)
    if folder.is_dir():
        if tests:
            raise click.UsageError("TESTS cannot be given with a folder")
        found = sorted(folder.glob("*" + SUFFIX))
        if not found:
            _no_tests(f"no tests file in `{protocol}`: no `*{SUFFIX}` there", folder)
        runs = []
        for path in found:
            suite, diags = read_tests(path)
            if suite is None:
                _print_errors(RulesError(diags))
                raise SystemExit(EXIT_FINDINGS)
            runs.append((suite.protocol_path, path))
    else:
        path = Path(tests) if tests else path_of_tests(protocol)
        if not tests and not path.exists():
            _no_tests(f"no tests file for `{protocol}`: `{path}` does not exist", path)
        runs = [(protocol, path)]
    outcomes = [_test_one(p, t, show_coverage, fail_under, fmt) for p, t in runs]
    if fmt == "json":
        payloads = [payload for _, payload in outcomes]
        if folder.is_dir():
            click.echo(json.dumps({"version": JSON_VERSION, "files": payloads}, indent=2))
        else:
            click.echo(json.dumps(payloads[0], indent=2))
    raise SystemExit(EXIT_FINDINGS if any(bad for bad, _ in outcomes) else 0)


def _no_tests(message: str, path: Path) -> None:
    diagnostic = error(
        "PR634",
        message,
        None,
        path=str(path),
        help="write the cases in that file (docs/testing-rules.md), or name "
        "the tests file: `protocol-rules test PROTOCOL TESTS`",
    )
    _print_errors(RulesError([diagnostic]))
    raise SystemExit(EXIT_FINDINGS)


def _test_one(
    protocol: str, path: Path, show_coverage: bool, fail_under: float | None, fmt: str
) -> tuple[bool, dict[str, object]]:
    """Run one tests file; print its text report (unless JSON). (failed or below, JSON)."""
    from .tools.coverage import coverage, coverage_text
    from .tools.runner import failure_text, run_tests, summary_text
    from .tools.testfile import load_tests

    rules = _load(protocol)
    try:
        suite = load_tests(path, rules)
    except RulesError as exc:
        _print_errors(exc)
        raise SystemExit(EXIT_FINDINGS) from None
    results = run_tests(rules, suite)
    failed = [r for r in results if not r.passed]
    cov = None
    if show_coverage or fail_under is not None:
        cov = coverage(rules._program, results, protocol)
    below = cov is not None and fail_under is not None and cov.percent < fail_under
    if fmt != "json":
        for r in failed:
            click.echo(failure_text(r) + "\n")
        click.echo(f"{suite.path}: {summary_text(results)}")
        if cov is not None:
            click.echo("\n" + coverage_text(cov))
    if below:
        assert cov is not None and fail_under is not None
        click.echo(
            f"{suite.path}: coverage {cov.percent:.1f}% is below --fail-under {fail_under:g}%",
            err=True,
        )
    return bool(failed or below), _test_json(protocol, suite.path, results, cov)


def _test_json(protocol: str, tests: str, results: list, cov: object) -> dict[str, object]:
    out: dict[str, object] = {
        "version": JSON_VERSION,
        "protocol": protocol,
        "tests": tests,
        "passed": sum(r.passed for r in results),
        "failed": sum(not r.passed for r in results),
        "cases": [
            {
                "name": r.case.name,
                "passed": r.passed,
                "status": r.record.result.status.value if r.record else None,
                "refused": [d.code for d in r.refused.diagnostics] if r.refused else None,
                "mismatches": [
                    {"what": m.what, "expected": m.expected, "got": m.got} for m in r.mismatches
                ],
            }
            for r in results
        ],
    }
    if cov is not None:
        out["coverage"] = cov.to_dict()  # type: ignore[attr-defined]
    return out


def _require_z3() -> None:
    try:
        import z3  # noqa: F401
    except ImportError:
        _print_errors(
            RulesError(
                [
                    error(
                        "PR640",
                        "`lint` and `diff` need the Z3 solver, which is not installed",
                        None,
                        help="pip install 'protocol-rules[lint]'",
                    )
                ]
            )
        )
        raise SystemExit(EXIT_USAGE) from None


@cli.command(name="lint")
@click.argument("protocols", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--as-of", "as_of", metavar="ISO", help="The as_of of the witnesses.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Time limit of each question to the solver.",
)
def lint_command(protocols: tuple[str, ...], fmt: str, as_of: str | None, timeout: float) -> None:
    """Prove what no test shows: criteria that can never be met, contradictions, redundant
    operands, thresholds outside a declared range. Exit 1 if anything is found."""
    _require_z3()
    from .tools.lint import lint, lint_dict, lint_text

    seconds = _as_of_seconds(as_of)
    reports = []
    for path in protocols:
        rules = _load(path)
        reports.append(lint(rules, as_of=seconds, timeout_ms=int(timeout * 1000)))
    if fmt == "json":
        payload = {"version": JSON_VERSION, "protocols": [lint_dict(r) for r in reports]}
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        color = use_color(sys.stdout)
        click.echo("\n\n".join(lint_text(r, color) for r in reports))
    raise SystemExit(0 if all(r.clean for r in reports) else EXIT_FINDINGS)


def _as_of_seconds(as_of: str | None) -> float | None:
    if as_of is None:
        return None
    from .facts import Invalid, parse_instant

    try:
        return parse_instant(as_of, "a datetime")
    except Invalid as exc:
        raise click.BadParameter(exc.message, param_hint="--as-of") from None


@cli.command(name="diff")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
)
@click.option(
    "--population",
    metavar="DATA",
    type=click.Path(),
    help="Screen DATA with both versions and count the patients whose status changes.",
)
@click.option(
    "--as-of", "as_of", metavar="ISO", help="The as_of of the witnesses and of the screening."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Time limit of each question to the solver.",
)
def diff_command(
    old: str, new: str, fmt: str, population: str | None, as_of: str | None, timeout: float
) -> None:
    """What changes from OLD to NEW: criteria added, removed, reworded or changed in meaning,
    with a witness patient for each change. Exit 0 when the two mean the same, 1 otherwise."""
    _require_z3()
    from .tools.diff import diff, diff_dict, diff_markdown, diff_text

    before, after = _load(old), _load(new)
    try:
        report = diff(
            before,
            after,
            population=population,
            as_of=_as_of_seconds(as_of),
            population_as_of=as_of,
            timeout_ms=int(timeout * 1000),
        )
    except RulesError as exc:
        _print_errors(exc)
        raise SystemExit(EXIT_FINDINGS) from None
    if fmt == "json":
        click.echo(json.dumps(diff_dict(report), indent=2, ensure_ascii=False))
    elif fmt == "markdown":
        click.echo(diff_markdown(report), nl=False)
    else:
        click.echo(diff_text(report))
    raise SystemExit(0 if report.same else EXIT_FINDINGS)
