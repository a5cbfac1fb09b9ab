"""`protocol-rules lsp`: the language server on standard input and output (docs/editors.md)."""

from __future__ import annotations

import sys

import click

from ..cli import EXIT_USAGE, cli


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
        click.echo(
            f"protocol-rules lsp needs pygls ({exc.name} is missing): "
            "pip install 'protocol-rules[lsp]'",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    serve()
