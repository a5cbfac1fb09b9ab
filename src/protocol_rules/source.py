"""Stage 0 of the pipeline: the text of a rules file and positions in it.

`Source` is the only place that turns character offsets into lines and columns.
"""

from __future__ import annotations

import bisect
from functools import cached_property

import attrs


@attrs.frozen
class Span:
    """A half-open range ``[start, end)`` of character offsets into a `Source`."""

    source: Source = attrs.field(repr=False, eq=False)
    start: int
    end: int

    @property
    def text(self) -> str:
        """The source text this span covers."""
        return self.source.text[self.start : self.end]

    @property
    def line(self) -> int:
        """1-based line of the first character."""
        return self.source.position(self.start)[0]

    @property
    def column(self) -> int:
        """1-based column of the first character."""
        return self.source.position(self.start)[1]

    @property
    def end_line(self) -> int:
        """1-based line of the position just past the last character."""
        return self.source.position(self.end)[0]

    @property
    def end_column(self) -> int:
        """1-based column of the position just past the last character."""
        return self.source.position(self.end)[1]

    def to(self, other: Span) -> Span:
        """The span from the start of this one to the end of `other`."""
        return Span(self.source, self.start, other.end)

    def __str__(self) -> str:
        return f"{self.source.name}:{self.line}:{self.column}"


@attrs.frozen(eq=False)
class Source:
    """A named text: a rules file or a string handed to `parse_protocol`."""

    name: str
    text: str

    @cached_property
    def _line_starts(self) -> list[int]:
        starts = [0]
        starts.extend(i + 1 for i, ch in enumerate(self.text) if ch == "\n")
        return starts

    def position(self, offset: int) -> tuple[int, int]:
        """The 1-based (line, column) of a character offset."""
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return index + 1, offset - self._line_starts[index] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        starts = self._line_starts
        start = starts[line - 1]
        end = starts[line] - 1 if line < len(starts) else len(self.text)
        return self.text[start:end]

    def span(self, start: int, end: int) -> Span:
        """A span of this source."""
        return Span(self, start, end)

    @property
    def whole(self) -> Span:
        """The span of the whole text."""
        return Span(self, 0, len(self.text))
