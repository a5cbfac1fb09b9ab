"""The language server's incremental parser gives what the parser gives: the same trees, the
same spans, the same diagnostics, edit after edit."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import attrs
import pytest

from protocol_rules.lsp.incremental import IncrementalParser
from protocol_rules.parser import _ITEM_START, parse
from protocol_rules.source import Source, Span

ROOT = Path(__file__).resolve().parents[1]
KIDNEY = ROOT / "src" / "protocol_rules" / "library" / "kidney.rules"
FILES = [*sorted((ROOT / "protocols").glob("*.rules")), KIDNEY]


def spans(node: Any) -> list[tuple[str, int, int]]:
    """Every span in a tree, with the field that holds it, in a fixed order."""
    found: list[tuple[str, int, int]] = []
    stack = [("", node)]
    while stack:
        name, current = stack.pop()
        if isinstance(current, Span):
            found.append((name, current.start, current.end))
        elif isinstance(current, tuple):
            stack.extend((f"{name}[{i}]", c) for i, c in enumerate(current))
        elif attrs.has(type(current)):
            for field in attrs.fields(type(current)):
                stack.append((f"{name}.{field.name}", getattr(current, field.name)))
    return found


def span_texts(node: Any) -> list[str]:
    """The text each span of a tree reads from its own source (kept trees hold older ones)."""
    found: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Span):
            found.append(current.text)
        elif isinstance(current, tuple):
            stack.extend(current)
        elif attrs.has(type(current)):
            stack.extend(getattr(current, f.name) for f in attrs.fields(type(current)))
    return found


def same(incremental: IncrementalParser, text: str) -> None:
    source = Source("doc.rules", text)
    expected, expected_diagnostics = parse(source)
    got, got_diagnostics = incremental.parse(source)
    assert got == expected
    assert spans(got) == spans(expected)
    assert span_texts(got) == span_texts(expected)  # each span reads the text it covers now
    assert [(d.code, d.span.start if d.span else None) for d in got_diagnostics] == [
        (d.code, d.span.start if d.span else None) for d in expected_diagnostics
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_file_parses_as_a_whole(path: Path) -> None:
    same(IncrementalParser(), path.read_text(encoding="utf-8"))


def test_typing_reuses_the_items_before_the_edit() -> None:
    text = (ROOT / "protocols" / "nct04194671.rules").read_text(encoding="utf-8")
    parser = IncrementalParser()
    same(parser, text)
    at = text.index("platelet_count < 25000") + len("platelet_count < 2")
    edited = text[:at] + "5" + text[at:]
    same(parser, edited)
    items_before = text[:at].count("\nexclusion ") + text[:at].count("\nfact ")
    assert parser.reused >= items_before > 20
    same(parser, text)


def test_typing_early_reuses_the_items_after_the_edit_too() -> None:
    text = (ROOT / "protocols" / "nct04194671.rules").read_text(encoding="utf-8")
    parser = IncrementalParser()
    same(parser, text)
    at = text.index("age between 18 years") + len("age between 1")
    line = text.index("age between 18 years") + len("age ")  # a new line, and lines move
    items = len(parser.chunks)
    for edited in (text[:at] + "5" + text[at:], text, text[:line] + "\n    " + text[line:], text):
        same(parser, edited)
        assert parser.reused == items - 1  # only the edited item is parsed again


def test_random_edits_parse_as_the_parser_does() -> None:
    """Insertions and deletions anywhere — many of them syntax errors — one after another."""
    base = (ROOT / "protocols" / "nct04194671.rules").read_text(encoding="utf-8")
    pieces = ["x", " ", "\n", "(", ")", "fact ", "and ", "'", '"', "#", "\nexclusion E99 \"x\": p",
              "1", ":", "protocol X\n", "define d = 1\n", "@2026-13-01"]  # fmt: skip
    rng = random.Random(20260301)
    parser = IncrementalParser()
    text = base
    for step in range(60):
        if step % 20 == 0:
            text = base
        at = rng.randrange(len(text) + 1)
        if rng.random() < 0.6:
            text = text[:at] + rng.choice(pieces) + text[at:]
        else:
            text = text[:at] + text[at + rng.randrange(1, 8) :]
        same(parser, text)


def test_edge_cases() -> None:
    parser = IncrementalParser()
    for text in ("", "# only a comment\n", "protocol A\n", "fact a: boolean\nprotocol A\n",
                 "protocol A\nprotocol B\n", "protocol A\ninclusion I1 \"x\": true\n",
                 "protocol A\ninclusion I1 \"x\":\n", "  fact a: boolean"):  # fmt: skip
        same(parser, text)


def test_valid_edits_anywhere_keep_the_trees_right() -> None:
    """Edits that keep the file parsing (blank lines and comments at any line, facts and defines
    before any item, digits, and their removal): the trees — kept before and after each edit,
    or parsed again — are those a whole parse builds, and the parser keeps most of them."""
    text = (ROOT / "protocols" / "nct04194671.rules").read_text(encoding="utf-8")
    anywhere = ["\n", "# a comment\n", "  # indented\n"]
    items = ["fact extra: boolean\n", "define d = 1\n"]
    rng = random.Random(20261202)
    parser = IncrementalParser()
    same(parser, text)
    reused = 0
    for _ in range(60):
        choice = rng.random()
        if choice < 0.3:
            lines = [0, *(i + 1 for i, c in enumerate(text[:-1]) if c == "\n")]
            at = rng.choice(lines)
            text = text[:at] + rng.choice(anywhere) + text[at:]
        elif choice < 0.5:
            at = rng.choice([m.start() for m in _ITEM_START.finditer(text)])
            text = text[:at] + rng.choice(items) + text[at:]
        elif choice < 0.8:
            digits = [i for i, c in enumerate(text) if c.isdigit() and text[i - 1].isdigit()]
            at = rng.choice(digits)
            text = text[:at] + text[at + 1 :] if rng.random() < 0.5 else text[:at] + "7" + text[at:]
        else:
            for piece in [*items, *anywhere[1:]]:
                if piece in text:
                    where = text.index(piece)
                    text = text[:where] + text[where + len(piece) :]
                    break
        same(parser, text)
        assert parser.text == text, "a valid version did not parse"
        reused += parser.reused
    assert reused > 60 * 55, reused


def test_fixing_a_syntax_error_parses_only_what_changed_since_the_last_good_version() -> None:
    text = (ROOT / "protocols" / "nct04194671.rules").read_text(encoding="utf-8")
    parser = IncrementalParser()
    same(parser, text)
    items = len(parser.chunks)
    at = text.index("age between 18 years") + len("age between")
    same(parser, text[:at] + " between" + text[at:])  # a syntax error: a whole parse
    assert parser.text == text  # the last version that parsed
    fixed = text[:at] + text[at:].replace("18", "19", 1)  # the mistake undone, a digit changed
    same(parser, fixed)
    assert parser.reused == items - 1
