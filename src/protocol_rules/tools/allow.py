"""`# lint: allow PR602 "reason"`: silencing a lint finding in the rules file (docs/lint.md).

An allow comment names one or more lint codes and a reason in double quotes. It applies to
the item (criterion, define, fact or the protocol header) it is written on, inside, or on
the comment lines right above; one written above the first item, or in the header, applies to
the whole protocol (for PR604). Comments are kept by `protocol-rules fmt`, so the reason
stays beside the criterion it excuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from attrs import define

from ..diagnostics import Diagnostic, error, warning
from ..source import Source, Span

#: The lint codes an allow comment may name.
LINT_CODES = ("PR601", "PR602", "PR603", "PR604", "PR605", "PR606", "PR607", "PR608")

_ALLOW = re.compile(r"#[ \t]*lint[ \t]*:[ \t]*allow\b(?P<rest>[^\n]*)")
_CODES = re.compile(r"[ \t]*(?P<codes>[A-Za-z0-9]+(?:[ \t]*,[ \t]*[A-Za-z0-9]+)*)")
_REASON = re.compile(r'[ \t]*"(?P<reason>[^"\n]*)"[ \t]*$')


@define
class Allow:
    """One allow comment: its codes, its reason, where it is, and whether it was used."""

    codes: tuple[str, ...]
    reason: str
    span: Span
    scope: Span | bool | None  # the item it applies to; None: the protocol; False: nothing
    used: bool = False


def _comment_starts(text: str) -> Iterable[int]:
    """Offsets of `#` that start a comment (not inside a string or a unit)."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote or ch == "\n":
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            yield i
            while i < len(text) and text[i] != "\n":
                i += 1
            quote = None


def read_allows(source: Source, items: Sequence[Span]) -> tuple[list[Allow], list[Diagnostic]]:
    """The allow comments of a file, each tied to the item it applies to, and PR620 for each
    malformed one. `items` are the spans of the file's items, in order."""
    text = source.text
    allows, problems = [], []
    seen_end = -1
    for start in _comment_starts(text):
        if start <= seen_end:
            continue
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        seen_end = end
        found = _ALLOW.match(text, start, end)
        if not found:
            continue
        span = source.span(start, end)
        rest = found["rest"]
        codes_match = _CODES.match(rest)
        codes = (
            tuple(c.strip().upper() for c in codes_match["codes"].split(",")) if codes_match else ()
        )
        reason_match = _REASON.search(rest)
        reason = reason_match["reason"].strip() if reason_match else ""
        bad = [c for c in codes if c not in LINT_CODES]
        if not codes or bad:
            shown = ", ".join(f"`{c}`" for c in bad) if bad else "no code"
            problems.append(
                error(
                    "PR620",
                    f"`# lint: allow` names {shown}, not a lint code",
                    span,
                    help=f"name lint codes ({', '.join(LINT_CODES)}): "
                    '`# lint: allow PR602 "why this is intended"`',
                )
            )
            continue
        if not reason:
            problems.append(
                error(
                    "PR620",
                    f"`# lint: allow {', '.join(codes)}` gives no reason",
                    span,
                    help=f'say why, in double quotes: `# lint: allow {codes[0]} "…"`',
                )
            )
            continue
        allows.append(Allow(codes, reason, span, _scope(start, items)))
    return allows, problems


def _scope(offset: int, items: Sequence[Span]) -> Span | bool | None:
    """The item a comment at `offset` applies to: a span, None for the whole protocol, or
    False when it is detached (a blank line between it and the next item)."""
    text = items[0].source.text if items else ""
    for k, item in enumerate(items):
        if item.start <= offset < item.end:
            return None if _is_header(item) else item
        if offset >= item.end and "\n" not in text[item.end : offset]:
            return None if _is_header(item) else item  # at the end of the item's last line
        if offset < item.start:
            if k == 0:
                return None
            gap = text[offset : item.start].split("\n")[1:-1]  # the lines in between
            return item if all(line.strip().startswith("#") for line in gap) else False
    return False


def _is_header(item: Span) -> bool:
    return item.text.lstrip().startswith("protocol")


def unused(allows: Sequence[Allow]) -> list[Diagnostic]:
    """PR621 for each allow comment that silenced nothing."""
    return [
        warning(
            "PR621",
            f"`# lint: allow {', '.join(a.codes)}` silences nothing",
            a.span,
            help="the finding it excused is gone: remove the comment",
        )
        for a in allows
        if not a.used
    ]
