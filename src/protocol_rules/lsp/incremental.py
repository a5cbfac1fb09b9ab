"""Parsing while typing: only the items an edit touched are parsed again.

A rules file is a sequence of items, each starting with a reserved word at the start of a line
(`protocol`, `fact`, `define`, `inclusion`, `exclusion`, `use`) — the same fact the parser's
error recovery relies on. `IncrementalParser` parses each item on its own, at its own offset
(the text before it blanked, so every span is an offset into the whole document, exactly as a
whole parse gives it). It keeps the trees of the items that lie before the first character an
edit changed, and of those after the last one (their spans moved by the change in length and
pointing into the new text). Only when every item parses is the result used; any syntax error,
or anything else a whole parse would judge differently, falls back to `parser.parse` of the
whole text, so diagnostics are always those of `protocol-rules check`.
tests/test_lsp_incremental.py checks that both give the same trees and spans.
"""

from __future__ import annotations

from typing import Any

import attrs
import lark

from .. import ast
from .._grammar import parser as lark_parser
from ..diagnostics import Diagnostic
from ..parser import _ITEM_START, _Builder, _too_deep, parse
from ..source import Source, Span

__all__ = ["IncrementalParser", "common_prefix", "common_suffix"]

#: Characters after an item's start that decide that it is one (`exclusion` and a boundary).
_KEYWORD_REACH = 12

_Chunk = tuple[int, int, ast.ProtocolFile]


class IncrementalParser:
    """Parses successive versions of one document, reusing the unchanged leading items."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.chunks: list[_Chunk] = []
        self.reused = 0  # items taken from the previous version by the last parse (for tests)

    def parse(self, source: Source) -> tuple[ast.ProtocolFile | None, list[Diagnostic]]:
        text = source.text
        keep = self._reusable(text)
        bounds = _bounds(text)
        chunks: list[_Chunk] = []
        self.reused = 0
        for start, end in bounds:
            kept = keep.get((start, end))
            if kept is not None:
                tree, delta = kept
                if delta is not None:  # after the change: moved, and of the new text
                    tree = _moved(tree, delta, source)
                chunks.append((start, end, tree))
                self.reused += 1
                continue
            tree = _parse_chunk(source, start, end)
            if tree is None:
                return self._whole(source)
            chunks.append((start, end, tree))
        syntax = _assemble(source, chunks)
        if syntax is None:
            return self._whole(source)
        self.text, self.chunks = text, chunks
        return syntax, []

    def _whole(self, source: Source) -> tuple[ast.ProtocolFile | None, list[Diagnostic]]:
        # The chunks of the last version that parsed stay: the next version is compared with
        # it, so fixing a syntax error parses only what changed since.
        return parse(source)

    def _reusable(self, text: str) -> dict[tuple[int, int], tuple[ast.ProtocolFile, int | None]]:
        """The previous version's chunks that lie safely outside the changed part, by their
        bounds in the new text (a chunk after the change moves by the change in length)."""
        old = self.text
        if old is None:
            return {}
        common = common_prefix(old, text)
        keep: dict[tuple[int, int], tuple[ast.ProtocolFile, int | None]] = {
            (start, end): (tree, None)  # as it is: its text and all before it are unchanged
            for start, end, tree in self.chunks[:-1]  # the last one may go on in the new text
            if end + _KEYWORD_REACH <= common
        }
        suffix = common_suffix(old, text, min(len(old), len(text)) - common)
        unchanged_from = len(old) - suffix  # old[unchanged_from:] == text[-suffix:]
        delta = len(text) - len(old)
        for start, end, tree in self.chunks:
            # whether a chunk starts here depends on its line up to its start: all unchanged
            line_start = old.rfind("\n", 0, start)
            if line_start >= unchanged_from and line_start >= 0:
                keep.setdefault((start + delta, end + delta), (tree, delta))
        return keep


def common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix (compared in slices, which is fast)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[low:mid] == b[low:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def common_suffix(a: str, b: str, limit: int) -> int:
    """The length of the longest common suffix, at most `limit`."""
    low, high = 0, limit
    while low < high:
        mid = (low + high + 1) // 2
        if a[len(a) - mid : len(a) - low] == b[len(b) - mid : len(b) - low]:
            low = mid
        else:
            high = mid - 1
    return low


def _bounds(text: str) -> list[tuple[int, int]]:
    starts = [m.start(1) for m in _ITEM_START.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    ends = [*starts[1:], len(text)]
    return list(zip(starts, ends, strict=True))


def _parse_chunk(source: Source, start: int, end: int) -> ast.ProtocolFile | None:
    """One item, parsed where it stands; None when the whole text must be parsed instead."""
    padded = " " * start + source.text[start:end]
    try:
        tree = lark_parser().parse(padded)
    except lark.UnexpectedInput:
        return None
    if _too_deep(tree, source) is not None:
        return None
    builder = _Builder(source)
    result = builder.transform(tree)
    return None if builder.diagnostics else result


def _assemble(source: Source, chunks: list[_Chunk]) -> ast.ProtocolFile | None:
    """The file of the chunks, or None where a whole parse would refuse it (a header that is
    not first, two headers)."""
    header = None
    items: list[ast.Item] = []
    for _, _, tree in chunks:
        if tree.header is not None:
            if header is not None or items:
                return None
            header = tree.header
        items.extend(tree.items)
    return ast.ProtocolFile(header, tuple(items), span=source.whole)


def _moved(node: Any, delta: int, source: Source) -> Any:
    """`node` with every span moved by `delta` characters and pointing into `source`."""
    if isinstance(node, Span):
        return Span(source, node.start + delta, node.end + delta)
    if isinstance(node, tuple):
        return tuple(_moved(child, delta, source) for child in node)
    fields = _FIELDS.get(type(node))
    if fields is None:
        if not attrs.has(type(node)):
            return node
        fields = _FIELDS[type(node)] = [
            (f.name, f.alias) for f in attrs.fields(type(node)) if f.init
        ]
    return type(node)(
        **{alias: _moved(getattr(node, name), delta, source) for name, alias in fields}
    )


_FIELDS: dict[type, list[tuple[str, str]]] = {}
