"""Output safety: text from rules files and patient records, made safe to print or publish.

Rules files and patient records are untrusted. Anything taken from them and printed to a
terminal goes through `printable` (control characters, terminal escapes and bidirectional
overrides become visible escapes); anything written into Markdown or HTML goes through
`markdown_text` / `html_text`.
"""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 controls except tab and newline, DEL, the Unicode bidi controls that can
# reorder what a reader sees (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), the line
# and paragraph separators (U+2028, U+2029), and lone surrogates (valid in a JSON string
# escape, but they cannot be written out as UTF-8).
_UNSAFE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, newlines: bool = True) -> str:
    """`text` with control, escape and bidi-override characters shown as ``\\xNN`` / ``\\uNNNN``.

    With ``newlines=False`` a newline is escaped too (for one-line fields such as names).
    """
    out = _UNSAFE.sub(_escape, text)
    if not newlines:
        out = out.replace("\n", "\\n")
    return out


def is_printable(text: str) -> bool:
    """True when `printable` would leave `text` unchanged (and it has no other format chars)."""
    return not _UNSAFE.search(text) and all(
        unicodedata.category(c) != "Cf" or c == "\u200d" for c in text
    )


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def markdown_text(text: str) -> str:
    """Text for a Markdown document: printable, HTML-escaped, Markdown punctuation escaped.

    Raw HTML in a criterion text (``<img onerror=…>``) must not become markup in a report that
    is rendered as a web page: `<` and `>` become entities, which every Markdown renderer shows
    as text (a backslash escape is not understood by all of them).
    """
    escaped = _MD_SPECIAL.sub(r"\\\1", printable(text, newlines=False).replace("&", "&amp;"))
    return escaped.replace("<", "&lt;").replace(">", "&gt;")


def json_text(text: str) -> str:
    """JSON text with every character `printable` escapes written as a ``\\uXXXX`` escape.

    `json.dumps(..., ensure_ascii=False)` leaves C1 controls, bidi overrides and lone
    surrogates raw. Outside its strings JSON text is ASCII, so replacing them anywhere is exact:
    a JSON reader gets the same strings back, and a terminal shows them harmlessly.
    """
    return _UNSAFE.sub(_json_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def html_text(text: str) -> str:
    """Text for an HTML document: printable and HTML-escaped (quotes included)."""
    import html  # only here: a command-line run need not load it

    return html.escape(printable(text), quote=True)
