"""Stage 0 of the pipeline: the text of a rules file and positions in it.

`Source` is the only place that turns character offsets into lines and columns.
"""

from __future__ import annotations

import bisect
import contextlib
import os
from functools import cached_property

import attrs

#: Largest file read as rules text or a patient record (a guard against `/dev/zero`).
MAX_FILE_BYTES = 16 * 1024 * 1024


class FileTooLarge(OSError):
    """A file is larger than `MAX_FILE_BYTES`."""


def normalise(text: str) -> str:
    """Text as every stage sees it: no byte-order mark, and `\\n` for every line ending.

    Files from Windows (``\\r\\n``) and classic Mac OS (``\\r``) then have the same lines,
    columns and meaning as any other.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def read_text(path: str | os.PathLike[str], *, as_written: bool = False) -> str:
    """The one way a file is read: UTF-8 with or without a byte-order mark, any line ending.

    The text is `normalise`d, unless `as_written` (for the formatter, which compares the text
    it would write with the file's own). Raises `OSError` (missing, a directory, unreadable,
    `FileTooLarge`) or `UnicodeDecodeError` (not UTF-8 text).
    """
    with open(path, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise FileTooLarge(f"it is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    text = data.decode("utf-8")
    return text if as_written else normalise(text)


def replace_file(path: str | os.PathLike[str], text: str) -> None:
    """Replace a file's content whole: write a temporary file beside it, then rename it over.

    An interrupted run leaves either the old file or the new one, never a truncated one. A
    symbolic link is followed: the file it points to is replaced and the link stays a link.
    The file keeps its permission bits.
    """
    import stat
    import tempfile

    target = os.path.realpath(path)
    mode = stat.S_IMODE(os.stat(target).st_mode)
    folder, name = os.path.split(target)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


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
