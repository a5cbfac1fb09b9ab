"""Messages an author reads: every diagnostic in `str(ProtocolError)`, both places of a
duplicate, escaped and cut source lines, and the syntax mistakes that get advice of their own."""

from __future__ import annotations

import json

import pytest

import protocol_rules as pr
from protocol_rules import ProtocolError
from protocol_rules.render.diagnostics import MAX_LINE, render_diagnostics

HEAD = "protocol P\nfact age: quantity 'a'\nfact pregnant: boolean\n"


def codes(text: str) -> list[str]:
    return [d.code for d in pr.check_text(text, "t.rules")]


def only(text: str, code: str):
    found = [d for d in pr.check_text(text, "t.rules") if d.code == code]
    assert len(found) == 1, pr.check_text(text, "t.rules")
    return found[0]


# --------------------------------------------------------------------------- str(ProtocolError)


def test_str_of_a_protocol_error_shows_every_diagnostic_with_its_line_and_help():
    text = HEAD + 'inclusion I1 "a": agee > 18 years\ninclusion I2 "b": pregnant = tru\n'
    with pytest.raises(ProtocolError) as caught:
        pr.parse_protocol(text, "t.rules")
    shown = str(caught.value)
    assert shown.splitlines()[0] == caught.value.summary
    assert "(and 1 more error)" in caught.value.summary
    assert '4 | inclusion I1 "a": agee > 18 years' in shown
    assert "help: did you mean `age`?" in shown
    assert '5 | inclusion I2 "b": pregnant = tru' in shown
    assert shown.rstrip().endswith("2 errors, 0 warnings")
    assert repr(caught.value).count("\n") == 0  # the repr stays one line


# --------------------------------------------------------------------------- related places


def test_a_duplicate_points_at_both_places():
    text = HEAD + 'inclusion I1 "a": pregnant\nexclusion I1 "b": pregnant\n'
    d = only(text, "PR202")
    assert (d.span.line, d.span.column) == (5, 11)
    (first,) = d.related
    assert (first.span.line, first.span.column, first.message) == (4, 11, "first used here")
    shown = render_diagnostics([d])
    assert " --> t.rules:5:11" in shown and " --> t.rules:4:11" in shown
    assert "  |           -- first used here" in shown
    data = d.to_dict()["related"]
    assert data == [
        {
            "message": "first used here",
            "file": "t.rules",
            "line": 4,
            "column": 11,
            "end_line": 4,
            "end_column": 13,
        }
    ]


def test_a_name_declared_twice_points_at_the_first_declaration():
    d = only(HEAD + 'define age = 3 years\ninclusion I1 "a": age > 1 year\n', "PR203")
    (first,) = d.related
    assert first.span.text == "age" and first.span.line == 2
    assert first.message == "first declared here, as a fact"


def test_check_json_lists_the_related_places(tmp_path):
    from click.testing import CliRunner

    from protocol_rules.cli import cli

    path = tmp_path / "d.rules"
    path.write_text(HEAD + 'inclusion I1 "a": pregnant\nexclusion I1 "b": pregnant\n')
    done = CliRunner().invoke(cli, ["check", "--format", "json", str(path)])
    (diagnostic,) = json.loads(done.output)["files"][0]["diagnostics"]
    assert diagnostic["related"][0]["line"] == 4


# --------------------------------------------------------------------------- what is printed


def test_control_and_bidi_characters_of_the_file_are_escaped():
    text = HEAD + 'inclusion I1 "\x1b[31mred\u202e": agee > 1 year\n'
    shown = render_diagnostics(pr.check_text(text, "t.rules"))
    assert "\x1b" not in shown and "\u202e" not in shown
    assert "\\x1b[31mred\\u202e" in shown
    line = next(line for line in shown.splitlines() if line.startswith("4 |"))
    caret = next(line for line in shown.splitlines() if "^^^^" in line)
    assert line.index("agee") == caret.index("^")  # the underline still lines up


def test_a_long_line_is_cut_around_the_span():
    text = HEAD + 'inclusion I1 "' + "x" * 6000 + '": agee > 1 year\n'
    shown = render_diagnostics(pr.check_text(text, "t.rules"))
    line = next(line for line in shown.splitlines() if line.startswith("4 |"))
    caret = next(line for line in shown.splitlines() if "^^^^" in line)
    assert len(line) < MAX_LINE + 20 and line.startswith("4 | …")
    assert line[caret.index("^") :].startswith("agee")


# --------------------------------------------------------------------------- syntax advice


def test_a_misspelt_duration_word_gets_a_did_you_mean_and_hides_nothing():
    text = HEAD + 'inclusion I1 "a": age >= 18 yeers\ninclusion I2 "b": agee < 3 hrs\n'
    diagnostics = pr.check_text(text, "t.rules")
    assert [(d.code, d.span.text) for d in diagnostics] == [
        ("PR110", "yeers"),
        ("PR201", "agee"),
        ("PR110", "hrs"),
    ]
    assert diagnostics[0].label == "did you mean `years`?"
    assert diagnostics[2].label == "did you mean `hours`?"
    with pytest.raises(ProtocolError) as caught:
        pr.parse_protocol(text)
    assert [d.code for d in caught.value.diagnostics] == ["PR110", "PR201", "PR110"]


def test_a_misspelt_duration_word_is_not_formatted_away():
    from protocol_rules.format import format_text

    with pytest.raises(ProtocolError) as caught:
        format_text(HEAD + 'inclusion I1 "a": age >= 18 yeers\n')
    assert [d.code for d in caught.value.diagnostics] == ["PR110"]


@pytest.mark.parametrize("word", ["criterion", "criteria", "include"])
def test_an_item_that_is_not_inclusion_or_exclusion_says_which_words_start_one(word):
    d = only(HEAD + f'{word} I1 "a": pregnant\n', "PR101")
    assert d.span.text == word
    assert "`inclusion` or `exclusion`" in d.help


@pytest.mark.parametrize(
    "body", ["pregnant or if pregnant then true else false", "not if pregnant then true else false"]
)
def test_an_if_inside_an_expression_says_to_add_parentheses(body):
    d = only(HEAD + f'inclusion I1 "a": {body}\n', "PR101")
    assert d.span.text == "if"
    assert "(if " in d.help
    fixed = HEAD + 'inclusion I1 "a": pregnant or (if pregnant then true else false)\n'
    assert not [c for c in codes(fixed) if c.startswith("PR1")]  # parses


def test_if_as_a_fact_name_is_a_reserved_word():
    assert codes("protocol P\nfact if: boolean\n") == ["PR106"]


def test_a_misspelt_item_keyword_gets_a_did_you_mean():
    d = only(HEAD + 'inclusoin I1 "a": pregnant\n', "PR101")
    assert d.help == "did you mean `inclusion`?"


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("protocol P\n  title 'Adult'\nfact a: boolean\ninclusion I1 \"x\": a\n", '`"Adult"`'),
        (HEAD + "fact cause: one of a, b\ninclusion I1 \"x\": cause = 'a'\n", '`"a"`'),
    ],
)
def test_single_quoted_text_says_to_use_double_quotes(text, fix):
    d = only(text, "PR101")
    assert d.message.startswith("text is written in double quotes")
    assert "unit unit" not in d.message
    assert fix in d.help


def test_a_name_with_a_non_ascii_letter_gets_advice_about_names():
    d = only(HEAD + 'inclusion I1 "a": âge >= 18 years\n', "PR102")
    assert "names are written in ASCII" in d.message
    assert d.help.startswith("write `age`")
    assert "expression" not in d.help


@pytest.mark.parametrize("word", ["today", "now"])
def test_today_says_to_write_as_of(word):
    text = 'protocol P\nfact onset: date\ninclusion I1 "a": onset > ' + word + " - 18 days\n"
    d = only(text, "PR201")
    assert d.help.startswith("write `as_of`")


def test_pr107_on_a_6000_character_line_prints_a_short_excerpt():
    text = 'protocol P\nfact a: boolean\ninclusion I1 "x": ' + "not " * 1500 + "a\n"
    diagnostics = pr.check_text(text, "t.rules")
    assert [d.code for d in diagnostics] == ["PR107"]
    shown = render_diagnostics(diagnostics)
    assert max(len(line) for line in shown.splitlines()) < MAX_LINE + 20
