"""Stage 1 of the pipeline: the grammar text and the one cached Lark parser.

The grammar ships inside the wheel (``protocol_rules/grammars``); in an editable install or a
source checkout it is read from the repository's top-level ``grammars/`` folder.
"""

from __future__ import annotations

import threading
from functools import cache
from importlib import resources
from pathlib import Path

import lark

GRAMMAR_FILE = "protocol_rules.lark"
_lock = threading.Lock()


@cache
def grammar_text() -> str:
    """The text of the rules grammar, from the installed package or the checkout."""
    packaged = resources.files("protocol_rules").joinpath("grammars").joinpath(GRAMMAR_FILE)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / "grammars" / GRAMMAR_FILE
    return checkout.read_text(encoding="utf-8")


_parser: lark.Lark | None = None


def parser() -> lark.Lark:
    """The LALR parser, built once per process on first use (about 40 ms)."""
    global _parser
    if _parser is None:
        with _lock:
            if _parser is None:
                _parser = lark.Lark(
                    grammar_text(),
                    parser="lalr",
                    lexer="basic",
                    propagate_positions=True,
                    maybe_placeholders=True,
                )
    return _parser
