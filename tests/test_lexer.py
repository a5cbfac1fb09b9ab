"""The Pygments lexer: tokens of real files, its registration, and highlighted docs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pygments = pytest.importorskip("pygments")

from pygments.token import (  # noqa: E402
    Comment,
    Error,
    Keyword,
    Literal,
    Name,
    Number,
    Operator,
    String,
)

from protocol_rules.lexer import RulesLexer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

SAMPLE = """\
# A comment
protocol "MSC-001"
  title "A title"
  phase "Phase 2"

fact age: quantity 'a' range 0 to 130 "Age at screening"
fact creatinine: series of quantity 'mg/dL' molar_mass 113.12 'g/mol'
fact cause: one of septic, other
fact drugs: set of one of sglt2_inhibitor, insulin
fact changed: date
fact n: integer range -5 to 5
fact events: series of boolean
fact flag: boolean
fact t: datetime
fact label: text
fact x: number
fact stopped: date or never past
fact egfr: series of number

define doubled = max(creatinine over last 48 hours) > 2 * latest(creatinine over last 7 days)

inclusion I1 "Age 18-65" note "inclusive": age between 18 years and 65 years
exclusion E1 "x": cause in {septic} or cause not in {other} and not flag
exclusion E2 "x": drugs contains any of {insulin} or drugs contains all of {insulin}
exclusion E3 "x": time_since(changed) <= 4 months and changed > @2026-03-01
exclusion E4 "x": any(events over last 3 months) = true or all(events over last 1 week) != false
exclusion E5 "x": at least 2 of (flag, doubled, label = "a") and at most 1 of (flag, true)
exclusion E6 "x": t >= @2026-03-01T08:00:00Z and n * 2 - 1 / 3 >= -1 and x is known
exclusion E7 "x": count(events over last 30 days) >= 25_000 and label is unknown
exclusion E8 "x": drugs contains insulin and x < 1.5e3 and exists(events over last 2 hours)
exclusion E9 "x": stopped is never or time_since(stopped) > 3 months or t <= as_of + 7 months
exclusion E10 "x": consecutive(egfr over last 90 days before t where value < 15) >= 2
exclusion E11 "x": first_time(egfr from changed to as_of) < last_time(egfr over last 1 year)
"""


def tokens(text: str) -> list[tuple[object, str]]:
    return [(t, v) for t, v in RulesLexer().get_tokens(text) if v.strip()]


def kind_of(text: str, value: str) -> object:
    return next(t for t, v in tokens(text) if v == value)


def test_sample_has_no_error_tokens() -> None:
    errors = [v for t, v in tokens(SAMPLE) if t in Error]
    assert errors == []


def test_the_nct04194671_protocol_has_no_error_tokens() -> None:
    path = ROOT / "protocols" / "nct04194671.rules"
    if not path.exists():
        pytest.skip("protocols/nct04194671.rules is not written yet")
    errors = [v for t, v in tokens(path.read_text(encoding="utf-8")) if t in Error]
    assert errors == []


def test_the_lexer_parses_what_the_grammar_parses() -> None:
    """The sample is a valid protocol, so the lexer is tested on real syntax."""
    from protocol_rules import check_text

    errors = [str(d) for d in check_text(SAMPLE) if d.is_error]
    assert errors == []


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("# A comment", Comment.Single),
        ("protocol", Keyword.Declaration),
        ('"MSC-001"', Name.Namespace),
        ("title", Name.Attribute),
        ("fact", Keyword.Declaration),
        ("age", Name.Variable),
        ("quantity", Keyword.Type),
        ("'a'", String.Other),
        ("range", Keyword),
        ("molar_mass", Keyword),
        ("113.12", Number.Float),
        ('"Age at screening"', String.Double),
        ("define", Keyword.Declaration),
        ("doubled", Name.Function),
        ("max", Name.Builtin),
        ("over", Keyword),
        ("hours", Keyword.Pseudo),
        ("inclusion", Keyword.Declaration),
        ("I1", Name.Label),
        ("note", Keyword.Declaration),
        ("between", Keyword),
        ("and", Operator.Word),
        ("@2026-03-01", Literal.Date),
        ("@2026-03-01T08:00:00Z", Literal.Date),
        ("25_000", Number.Integer),
        ("1.5e3", Number.Float),
        ("true", Keyword.Constant),
        ("time_since", Name.Builtin),
        ("never", Keyword),
        ("past", Keyword),
        ("as_of", Name.Builtin.Pseudo),
        ("consecutive", Name.Builtin),
        ("before", Keyword),
        ("where", Keyword),
        ("value", Name.Builtin.Pseudo),
        ("from", Keyword),
        ("first_time", Name.Builtin),
        ("<=", Operator),
    ],
)
def test_token_kinds(value: str, kind: object) -> None:
    assert kind_of(SAMPLE, value) == kind


def test_metadata_keys_only_in_the_header() -> None:
    # After the header, `other "…"` is a choice followed by a description, not metadata.
    text = 'protocol P\n  title "t"\nfact c: one of a,\n  other "desc"\n'
    assert kind_of(text, "title") == Name.Attribute
    assert kind_of(text, "other") == Name


def test_unknown_characters_are_errors() -> None:
    assert kind_of('inclusion I1 "x": a & b', "&") in Error


def _registered() -> bool:
    return any(ep.name == "rules" for ep in entry_points(group="pygments.lexers"))


_NOT_INSTALLED = (
    "the `rules` Pygments entry point is not registered: install the package "
    "(`pip install -e .[dev]`) so that Pygments and mkdocs can find the lexer"
)


def test_pygments_finds_the_lexer_by_name() -> None:
    if not _registered():
        pytest.skip(_NOT_INSTALLED)
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename

    assert isinstance(get_lexer_by_name("rules"), RulesLexer)
    assert isinstance(get_lexer_for_filename("nct04194671.rules"), RulesLexer)


def test_docs_build_highlights_rules_blocks(tmp_path: Path) -> None:
    """mkdocs silently falls back to plain text without the lexer: check the built HTML."""
    pytest.importorskip("mkdocs", reason="mkdocs is not installed")
    pytest.importorskip("material", reason="mkdocs-material is not installed")
    if not _registered():
        pytest.skip(_NOT_INSTALLED)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    env["NO_MKDOCS_2_WARNING"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict",
         "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    # Not --quiet: it hides the warnings that --strict counts, and the build "passes".
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "site" / "language" / "expressions" / "index.html").read_text("utf-8")
    blocks = re.findall(r'<div class="language-rules highlight">(.*?)</div>', html, re.DOTALL)
    assert blocks, (
        "no block highlighted as `rules` on the expressions page: is the lexer registered?"
    )
    # Without the lexer, Pygments falls back to plain text: no token spans at all.
    plain = [
        b for b in blocks if not re.search(r'<span class="(k[a-z]?|ow|s[a-z]?|nb|m[a-z]?)">', b)
    ]
    assert not plain, f"{len(plain)} rules blocks were rendered as plain text"


# --------------------------------------------------------------------------- calculation

CALC_SAMPLE = """\
protocol CALC
use kidney
use "helpers.rules"
fact creatinine: quantity 'mg/dL' molar_mass 113.12 'g/mol'
fact age: quantity 'a'
fact female: boolean
fact urine: series of quantity 'mL/kg/h'
define twice(v: number): number note "doubles" = 2 * v
inclusion I1 "x": if count(urine over last 6 hours) >= 6 then all(urine over last 6 hours) < 0.5 'mL/kg/h' else unknown
inclusion I2 "x": ckd_epi_2021(creatinine, age, female) < 60 'mL/min/{1.73_m2}'
inclusion I3 "x": twice(-2 ^ 2) < round(sqrt(ln(exp(abs(log10(100))))), 2) and first_known(age, 1 years) > 0 years
"""  # noqa: E501


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("use", Keyword.Namespace),
        ("kidney", Name.Namespace),
        ('"helpers.rules"', Name.Namespace),
        ("twice", Name.Function),
        ("if", Keyword),
        ("then", Keyword),
        ("else", Keyword),
        ("unknown", Keyword),
        ("^", Operator),
        ("ckd_epi_2021", Name.Function),
        ("round", Name.Builtin),
        ("sqrt", Name.Builtin),
        ("ln", Name.Builtin),
        ("exp", Name.Builtin),
        ("abs", Name.Builtin),
        ("log10", Name.Builtin),
        ("first_known", Name.Builtin),
    ],
)
def test_calculation_token_kinds(value: str, kind: object) -> None:
    assert kind_of(CALC_SAMPLE, value) == kind


def test_calculation_sample_has_no_error_tokens() -> None:
    assert [v for t, v in tokens(CALC_SAMPLE) if t in Error] == []


def test_the_shipped_libraries_have_no_error_tokens() -> None:
    from protocol_rules.library import shipped, shipped_text

    for name in shipped():
        assert [v for t, v in tokens(shipped_text(name)) if t in Error] == [], name
