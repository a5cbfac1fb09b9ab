"""`protocol-rules lsp`: the language server on standard input and output (docs/editors.md)."""

from __future__ import annotations

import sys

import click

from ..cli import EXIT_USAGE, _print_errors, cli
from ..diagnostics import RulesError, error


@cli.command()
@click.option("--stdio", is_flag=True, help="Talk LSP on standard input/output (the default).")
def lsp(stdio: bool) -> None:
    """Run the language server for editors (LSP over stdio).

    Diagnostics as you type, hover, completion, go to definition, references, rename, the
    outline, formatting. Needs the ``lsp`` extra: pip install 'protocol-rules[lsp]'.
    """
    try:
        from .server import serve
    except ImportError as exc:
        missing = exc.name or "pygls"
        _print_errors(
            RulesError(
                [
                    error(
                        "PR701",
                        f"the language server needs pygls, and `{missing}` is not installed",
                        None,
                        path=missing,
                        help="install the lsp extra: pip install 'protocol-rules[lsp]'",
                    )
                ]
            )
        )
        sys.exit(EXIT_USAGE)
    serve()
