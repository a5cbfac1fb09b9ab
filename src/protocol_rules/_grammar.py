"""Stage 1 of the pipeline: the grammar text and the one cached Lark parser.

The grammar ships inside the wheel (``protocol_rules/grammars``); in an editable install or a
source checkout it is read from the repository's top-level ``grammars/`` folder.
"""

from __future__ import annotations

import hashlib
import os
import threading
from functools import cache
from typing import Any

import lark

from . import _cache

GRAMMAR_FILE = "protocol_rules.lark"
_lock = threading.Lock()


@cache
def grammar_text() -> str:
    """The text of the rules grammar, from the installed package or the checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    for folder in (here, os.path.dirname(os.path.dirname(here))):  # the wheel, the checkout
        path = os.path.join(folder, "grammars", GRAMMAR_FILE)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                return handle.read()
    from importlib import resources  # a zipped install

    packaged = resources.files("protocol_rules").joinpath("grammars").joinpath(GRAMMAR_FILE)
    return packaged.read_text(encoding="utf-8")


_parser: lark.Lark | None = None

_OPTIONS = {
    "parser": "lalr",
    "lexer": "basic",
    "propagate_positions": True,
    "maybe_placeholders": True,
}


def parser() -> lark.Lark:
    """The LALR parser, built once per process on first use.

    Building it from the grammar takes about 0.1-0.3 s; its tables are kept as JSON in the
    user's cache folder (`_cache`), keyed by the grammar text and the Lark version, so a later
    process loads them in a few milliseconds instead.
    """
    global _parser
    if _parser is None:
        with _lock:
            if _parser is None:
                _parser = _load_or_build()
    return _parser


def _load_or_build() -> lark.Lark:
    text = grammar_text()
    key = hashlib.sha256(f"{lark.__version__}\n{sorted(_OPTIONS.items())}\n{text}".encode())
    name = key.hexdigest()[:16]
    stored = _cache.read("parser", name, object_hook=_decode)
    if isinstance(stored, dict):
        try:
            return lark.Lark._load_from_dict(stored["data"], stored["memo"])
        except Exception:  # a file from another Lark, or damaged: build it again
            pass
    built = lark.Lark(text, **_OPTIONS)
    data, memo = built.memo_serialize([lark.lexer.TerminalDef, lark.grammar.Rule])
    _cache.write("parser", name, {"data": _encode(data), "memo": _encode(memo)})
    return built


def _encode(value: Any) -> Any:
    """Lark's serialised tables as JSON: dicts with integer keys become lists of pairs."""
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v) for k, v in value.items()}
        return {"__pairs__": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: dict[str, Any]) -> Any:
    """`json.load`'s object hook undoing `_encode` (lists of pairs back to int-keyed dicts)."""
    pairs = value.get("__pairs__")
    if pairs is not None and len(value) == 1:
        return {k: v for k, v in pairs}
    return value
