"""The language server's analysis, called directly as the server calls it: its diagnostics are
those of `protocol-rules check` (codes, places, help), and no edit of a document — however
broken — makes a feature raise instead of answering."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pygls")

from hypothesis import example, given, settings
from hypothesis import strategies as st
from lsprotocol import types as t

from protocol_rules import check_text
from protocol_rules.lsp import features
from protocol_rules.lsp.incremental import IncrementalParser
from protocol_rules.lsp.index import Analysis, analyse

ROOT = Path(__file__).resolve().parents[1]
NCT = ROOT / "protocols" / "nct04194671.rules"
NCT_TEXT = NCT.read_text(encoding="utf-8")

#: Mistakes an author makes, each turning NCT04194671 into a file `check` complains about.
MISTAKES = {
    "unknown name": ("  age between", "  agee between"),
    "unit of another dimension": ("platelet_count < 25000", "platelet_count < 25000 'mg'"),
    "syntax error": ("age between 18 years", "age between between"),
    "unused fact": ("fact age:", "fact spare: boolean\nfact age:"),
    "two criteria with one id": ('exclusion E2 "', 'exclusion E1 "'),
    "unknown unit": ("25000", "25000 'bogus'"),
    "comparison of a boolean with a number": ("platelet_count < 25000", "true < 25000"),
}


def variants() -> list[tuple[str, str]]:
    files = [
        (p.name, p.read_text(encoding="utf-8")) for p in sorted(ROOT.glob("protocols/*.rules"))
    ]
    for name, (old, new) in MISTAKES.items():
        assert old in NCT_TEXT, name
        files.append((name, NCT_TEXT.replace(old, new, 1)))
    return files


def lsp_view(path: Path, text: str) -> tuple[Analysis, list[t.Diagnostic]]:
    analysis = analyse(path.as_uri(), text, str(path), 1)
    return analysis, features.diagnostics(analysis, features.Positions(analysis))


@pytest.mark.parametrize(("name", "text"), variants(), ids=lambda v: v if len(v) < 40 else "")
def test_diagnostics_are_those_of_check(name: str, text: str) -> None:
    path = ROOT / "protocols" / "edited.rules"  # beside the real files: `use` resolves the same
    expected = check_text(text, str(path))
    if name in MISTAKES:
        assert expected, f"the mistake ({name}) is not a mistake for check"
    _, got = lsp_view(path, text)
    assert [d.code for d in got] == [d.code for d in expected]
    for lsp, checked in zip(got, expected, strict=True):
        assert checked.span is not None
        assert all(ord(c) < 0x10000 for c in text)  # so UTF-16 columns are code-point columns
        assert (lsp.range.start.line + 1, lsp.range.start.character + 1) == (
            checked.span.line,
            checked.span.column,
        )
        assert (lsp.range.end.line + 1, lsp.range.end.character + 1) == (
            checked.span.end_line,
            checked.span.end_column,
        )
        assert checked.message in lsp.message
        if checked.help:
            assert f"help: {checked.help}" in lsp.message
        severity = t.DiagnosticSeverity.Error if checked.is_error else t.DiagnosticSeverity.Warning
        assert lsp.severity == severity


# --------------------------------------------------------------------------- random edits

#: A small clean file with most constructs (a library, a define with a note, a choice, a series
#: window, an if, `never`): random edits of it stay cheap enough to try many.
BASE = """\
protocol DEMO
  title "A demo"

use kidney

fact age: quantity 'a' range 0 to 130 "Age at screening"
fact platelet_count: quantity '/uL' range 0 to 5000000
fact aki_cause: one of prerenal, septic, other
fact creatinine: quantity 'mg/dL' range 0 to 30
fact female: boolean
fact last_dialysis: date or never past "Date of the last dialysis, or never"
fact urine_output: series of quantity 'mL/kg/h' range 0 to 50

define body_mass(weight: quantity 'kg', height: quantity 'm'): quantity 'kg/m2'
  note "WHO, 2000" =
  weight / height ^ 2

inclusion I1 "Age between 18 and 65 years"
  note "inclusive at both ends":
  age between 18 years and 65 years

inclusion I2 "Oliguria":
  if count(urine_output over last 6 hours) >= 6
    then all(urine_output over last 6 hours) < 0.5 'mL/kg/h' else unknown

exclusion E1 "Platelet count <25,000/uL":
  platelet_count < 25000 '/uL' or aki_cause = septic

exclusion E2 "eGFR below 30":
  ckd_epi_2021(creatinine, age, female) < 30 'mL/min/{1.73_m2}'
    or body_mass(70 'kg', 1.8 'm') > 40 'kg/m2'
    or last_dialysis is never
"""

PIECES = [
    "x", " ", "\n", "(", ")", "'", '"', "#", ":", ",", "-", "1", "0.5", "mg/dL", "{",
    "fact ", "define ", "and ", "or ", "not ", "if ", "between ", "one of ", "within ",
    "protocol X\n", "use kidney\n", "use \"nowhere.rules\"\n", "\nexclusion E99 \"x\": ",
    "\ninclusion I1 \"again\": true\n", "@2026-13-01", "😀", "é", "\t", "\\",
]  # fmt: skip

edits = st.lists(
    st.tuples(
        st.floats(0, 1),  # where, as a fraction of the text
        st.one_of(st.sampled_from(PIECES), st.integers(1, 12)),  # insert a piece or delete n
    ),
    min_size=1,
    max_size=6,
)


def apply(text: str, where: float, change: str | int) -> str:
    at = min(len(text), int(where * len(text)))
    if isinstance(change, str):
        return text[:at] + change + text[at:]
    return text[:at] + text[at + change :]


def every_feature(analysis: Analysis, text: str, positions: features.Positions) -> None:
    """Every request an editor makes, at a few places, as the server's handlers make them."""
    features.document_symbols(analysis, positions)
    features.semantic_tokens(analysis, positions)
    features.formatting(text, "edited.rules", positions)
    last = positions.lines.position(len(text))
    for line in {0, last[0] // 3, last[0] // 2, last[0]}:
        for character in (2, 11):
            offset = positions.offset(t.Position(line, character))
            assert 0 <= offset <= len(text)
            features.hover(analysis, text, offset, positions)
            features.completion(analysis, text, offset, positions)
            features.definition(analysis, text, offset, positions)
            features.references(analysis, text, offset, positions, True)
            features.rename(analysis, text, offset, "renamed", positions)
            features.highlights(analysis, text, offset, positions)
            features.signature_help(analysis, text, offset)


def test_the_base_of_the_random_edits_is_clean() -> None:
    assert check_text(BASE, "base.rules") == []


@settings(max_examples=min(60, settings().max_examples))  # each example is several analyses
@given(edits)
@example(changes=[(0.59375, "x")])  # `18 yeaxrs`: the parser's PR110 was dropped by the server
def test_random_edits_give_diagnostics_not_exceptions(changes: list) -> None:
    """Edit after edit, as the server sees them: each version analysed with the document's
    incremental parser, then every feature asked with the last analysis that parsed and the
    newest text (the worker may lag behind the editor)."""
    path = ROOT / "protocols" / "edited.rules"
    parser = IncrementalParser()
    text = BASE
    good = analyse(path.as_uri(), text, str(path), 1, parser=parser)
    for version, (where, change) in enumerate(changes, start=2):
        text = apply(text, where, change)
        analysis = analyse(path.as_uri(), text, str(path), version, parser=parser)
        published = features.diagnostics(analysis, features.Positions(analysis))
        assert [d.code for d in published] == [d.code for d in check_text(text, str(path))]
        for d in published:
            assert d.code and d.code.startswith("PR") and d.message
            assert d.range.start.line <= d.range.end.line
        if analysis.syntax is not None:
            good = analysis
        every_feature(good, text, features.Positions(good, "utf-16", text))


def test_signature_help_knows_builtins_and_skips_strings_and_units() -> None:
    path = ROOT / "protocols" / "edited.rules"
    analysis = analyse(path.as_uri(), BASE, str(path), 1)
    typed = BASE + "\n  or max(urine_output over last 6 hours, ')' \"(\" # (\n"
    found = features.signature_help(analysis, typed, len(typed))
    assert found is not None and found.signatures[0].label.startswith("max(W)")
    assert found.active_parameter is None  # a built-in's signature has no parameter list
    assert features.open_call(typed, len(typed)) == ("max", 1)
    assert features.open_call(BASE, BASE.index("18 years")) is None


# --------------------------------------------------------------------------- a lagging analysis


@settings(max_examples=min(25, settings().max_examples))
@given(st.data())
def test_an_older_analysis_answers_in_the_current_text(data: st.DataObject) -> None:
    """While the newest text is not analysed yet (or does not parse), the server answers from
    the last analysis: after a comment is added or removed anywhere, the outline, the semantic
    tokens, the references and a rename are where a fresh analysis puts them."""
    path = ROOT / "protocols" / "edited.rules"
    starts = [0, *(i + 1 for i, c in enumerate(BASE[:-1]) if c == "\n")]
    at = data.draw(st.sampled_from(starts), label="line start")
    comment = data.draw(st.sampled_from(["# a note\n", "\n", "# é 😀\n"]), label="comment")
    older, newer = BASE, BASE[:at] + comment + BASE[at:]
    if data.draw(st.booleans(), label="removed instead"):
        older, newer = newer, older
    old = analyse(path.as_uri(), older, str(path), 1)
    fresh = analyse(path.as_uri(), newer, str(path), 2)
    lagging = features.Positions(old, "utf-16", newer)
    now = features.Positions(fresh)
    assert features.semantic_tokens(old, lagging) == features.semantic_tokens(fresh, now)
    assert features.document_symbols(old, lagging) == features.document_symbols(fresh, now)
    offset = newer.index("platelet_count <") + 3
    references = features.references(old, newer, offset, lagging, True)
    assert references and references == features.references(fresh, newer, offset, now, True)
    renamed = features.rename(old, newer, offset, "renamed", lagging)
    assert renamed and renamed == features.rename(fresh, newer, offset, "renamed", now)
