"""Positions in a document: character offsets (as spans hold them) and LSP positions.

LSP counts columns in UTF-16 code units unless client and server agree on UTF-8 or UTF-32; Python
counts code points. A character outside the Basic Multilingual Plane (an emoji in a protocol
sentence) is one code point and two UTF-16 units.
"""

from __future__ import annotations

import bisect
import re

__all__ = ["Lines", "unit_at", "word_at"]

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _utf16(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _utf8(char: str) -> int:
    return len(char.encode("utf-8"))


_SIZES = {"utf-8": _utf8, "utf-16": _utf16, "utf-32": lambda char: 1}


class Lines:
    """Line starts of a text, for converting offsets to (line, column) and back."""

    def __init__(self, text: str, encoding: str = "utf-16") -> None:
        self.text = text
        self.starts = [0]
        self.starts.extend(m.end() for m in re.finditer("\n", text))
        self.size = _SIZES.get(encoding, _utf16)
        limit = {"utf-8": 0x7F, "utf-32": 0x10FFFF}.get(encoding, 0xFFFF)
        self.wide = any(ord(c) > limit for c in text)

    def position(self, offset: int) -> tuple[int, int]:
        """The 0-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        start = self.starts[line]
        if not self.wide:
            return line, offset - start
        return line, sum(map(self.size, self.text[start:offset]))

    def offset(self, line: int, column: int) -> int:
        """The character offset of a 0-based (line, column), clamped to the text."""
        if line < 0:
            return 0
        if line >= len(self.starts):
            return len(self.text)
        start = self.starts[line]
        end = self.starts[line + 1] - 1 if line + 1 < len(self.starts) else len(self.text)
        if not self.wide:
            return min(start + max(column, 0), end)
        units = 0
        for index in range(start, end):
            if units >= column:
                return index
            units += self.size(self.text[index])
        return end

    def end(self) -> tuple[int, int]:
        return self.position(len(self.text))


def word_at(text: str, offset: int) -> tuple[int, int, str] | None:
    """The name (identifier) at or just before `offset`: (start, end, word)."""
    start = offset
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    match = _WORD.match(text, start)
    if match is None or match.end() < offset:
        return None
    return match.start(), match.end(), match.group()


def unit_at(text: str, offset: int) -> tuple[int, int, str] | None:
    """The quoted unit around `offset` (the text between `'…'` on its line), if any.

    Quotes inside a double-quoted text or a comment do not count.
    """
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line_end = len(text) if line_end < 0 else line_end
    i = line_start
    while i < line_end:
        char = text[i]
        if char == "#":
            return None
        if char == '"':
            close = text.find('"', i + 1, line_end)
            while close > 0 and text[close - 1] == "\\":
                close = text.find('"', close + 1, line_end)
            if close < 0 or close >= offset:
                return None
            i = close + 1
            continue
        if char == "'":
            close = text.find("'", i + 1, line_end)
            end = line_end if close < 0 else close
            if i < offset <= end:
                return i + 1, end, text[i + 1 : end]
            if close < 0:
                return None
            i = close + 1
            continue
        i += 1
    return None
