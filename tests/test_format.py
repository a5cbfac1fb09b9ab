"""The formatter: one canonical layout, idempotent, faithful to the syntax tree and comments.

Golden cases for the layout rules, laws over generated programs (random layouts and comments
from `testing.protocols(messy=True)`, and programs from the grammar itself), the same laws on
every `.rules` file of the repository and every whole-file ```rules block of the docs, and the
`protocol-rules fmt` command.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings

from protocol_rules import ProtocolError
from protocol_rules.cli import cli
from protocol_rules.format import WIDTH, format_text
from protocol_rules.parser import parse
from protocol_rules.source import Source
from protocol_rules.testing import grammar_programs, protocols

ROOT = Path(__file__).resolve().parents[1]


def tree(text: str):
    syntax, diagnostics = parse(Source("x.rules", text))
    assert syntax is not None, diagnostics
    return syntax


def comments(text: str) -> list[str]:
    """The comments of rules text, skipping `#` inside texts, units and codes (`LOINC#2160-0`)."""
    found = []
    pattern = re.compile(
        r"[A-Za-z][A-Za-z0-9_]*#[A-Za-z0-9][A-Za-z0-9.\-]*\*?|[A-Za-z0-9_]+"
        r'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*|[^"\'#A-Za-z0-9_]+|.',
        re.DOTALL,
    )
    for match in pattern.finditer(text):
        if match.group().startswith("#"):
            found.append(match.group().rstrip())
    return found


def assert_faithful(text: str) -> str:
    """The laws: same tree, idempotent, every comment kept; returns the formatted text."""
    formatted = format_text(text, "x.rules")
    assert tree(formatted) == tree(text)
    assert format_text(formatted, "x.rules") == formatted
    kept = "\n".join(comments(formatted))
    for comment, count in Counter(comments(text)).items():
        assert kept.count(comment) >= count, comment
    assert formatted == "" or (formatted.endswith("\n") and not formatted.endswith("\n\n"))
    assert all(line == line.rstrip(" \t") for line in formatted.split("\n"))
    return formatted


# --------------------------------------------------------------------------- laws


_PIECE = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#.*|\w+|\S')


def has_a_top_level_chain(line: str) -> bool:
    """Whether a line holds an `and` / `or` outside parentheses (its leading one aside)."""
    depth = betweens = 0
    for piece in _PIECE.findall(re.sub(r"^\s*(and|or) ", "", line)):
        if piece in ("(", "{"):
            depth += 1
        elif piece in (")", "}"):
            depth -= 1
        elif depth or piece.startswith("#"):
            continue
        elif piece == "between":
            betweens += 1
        elif piece == "and" and betweens:
            betweens -= 1
        elif piece in ("and", "or"):
            return True
    return False


@given(protocols(messy=True))
def test_generated_protocols_in_any_layout(text):
    formatted = assert_faithful(text)
    for line in formatted.split("\n"):
        code = next((line[: m.start()] for m in _PIECE.finditer(line) if m[0][0] == "#"), line)
        assert len(code.rstrip()) <= WIDTH or not has_a_top_level_chain(code), line


_LITERAL_OR_SPACE = re.compile(r'("(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\')|\s+')


@given(protocols(messy=False))
def test_formatting_does_not_depend_on_the_layout(text):
    formatted = format_text(text)
    # everything on one line (there are no comments to keep)
    squeezed = _LITERAL_OR_SPACE.sub(lambda m: m.group(1) or " ", text)
    assert format_text(squeezed) == formatted


def assert_faithful_or_refused(text: str, where: str = "x.rules") -> None:
    """A text that parses formats faithfully; one that does not raises the parser's errors."""
    syntax, diagnostics = parse(Source(where, text))
    if syntax is not None and not any(d.is_error for d in diagnostics):
        assert_faithful(text)
        return
    with pytest.raises(ProtocolError) as caught:
        format_text(text, where)
    assert [d.code for d in caught.value.diagnostics] == [d.code for d in diagnostics]


@settings(max_examples=150)
@given(grammar_programs())
def test_programs_from_the_grammar(text):
    assert_faithful_or_refused(text)


SOURCES = sorted(p for p in ROOT.rglob("*.rules") if ".git" not in p.parts)


def docs_blocks() -> list[tuple[str, str]]:
    blocks = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"^```rules[^\n]*\n(.*?)^```", text, re.M | re.S):
            if match.group(1).lstrip().startswith("protocol"):
                line = text.count("\n", 0, match.start()) + 1
                blocks.append((f"{page.relative_to(ROOT)}:{line}", match.group(1)))
    return blocks


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_every_rules_file_of_the_repository(path):
    assert_faithful(path.read_text(encoding="utf-8"))


DOCS_BLOCKS = docs_blocks()


@pytest.mark.parametrize(("where", "text"), DOCS_BLOCKS, ids=[w for w, _ in DOCS_BLOCKS])
def test_every_whole_file_rules_block_of_the_docs(where, text):
    assert_faithful_or_refused(text, where)  # some blocks show a syntax error on purpose


# --------------------------------------------------------------------------- layout


def test_header_facts_defines_and_criteria():
    text = (
        'protocol  "MSC-001" title "A trial" registry_id "X-1"\n'
        "fact age:quantity 'a' range 0 to 130 \"Age\" fact pregnant : boolean\n"
        "fact lvef: quantity '%'\n"
        "define young = age < 65 years\n"
        'inclusion I1 "Adult" note "inclusive": age between 18 years and 65 years\n'
        'exclusion E1 "Pregnant": pregnant\n'
    )
    assert format_text(text) == (
        'protocol "MSC-001"\n'
        '  title       "A trial"\n'
        '  registry_id "X-1"\n'
        "\n"
        "fact age: quantity 'a' range 0 to 130 \"Age\"\n"
        "fact pregnant: boolean\n"
        "fact lvef: quantity '%'\n"
        "\n"
        "define young =\n"
        "  age < 65 years\n"
        "\n"
        'inclusion I1 "Adult"\n'
        '  note "inclusive":\n'
        "  age between 18 years and 65 years\n"
        "\n"
        'exclusion E1 "Pregnant":\n'
        "  pregnant\n"
    )


def test_a_protocol_id_that_is_a_reserved_word_stays_quoted():
    assert format_text('protocol "define"').startswith('protocol "define"\n')
    assert format_text('protocol "NCT01"').startswith("protocol NCT01\n")


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("((x > 1))", "x > 1"),
        ("not (x > 1)", "not x > 1"),
        ("(not p) and q", "not p and q"),
        ("not (p and q)", "not (p and q)"),
        ("(p or q) and r", "(p or q) and r"),
        ("p or (q and r)", "p or (q and r)"),  # readability: `and` inside `or` keeps its parens
        ("p and (q and r)", "p and (q and r)"),  # a nested chain is another tree
        ("(p and q) and r", "(p and q) and r"),
        ("(2 * x) + 1 > 0", "2 * x + 1 > 0"),
        ("2 * (x + 1) > 0", "2 * (x + 1) > 0"),
        ("(x - 1) - 2 > 0", "x - 1 - 2 > 0"),
        ("x - (1 - 2) > 0", "x - (1 - 2) > 0"),
        ("-(-x) > 0", "- -x > 0"),
        ("(x > 1) = p", "(x > 1) = p"),
        ("x   not  in {1,2 ,3}", "x not in {1, 2, 3}"),
        ("x in {-1, 2.50, 1e3}", "x in {-1, 2.5, 1000.0}"),
        ("max(s over last 48 hours) > 2 * x", "max(s over last 48 hours) > 2 * x"),
        ("any(s over last 3 days) between 1 and 2", "any(s over last 3 days) between 1 and 2"),
        ("at least 2 of ( p , q,r )", "at least 2 of (p, q, r)"),
        ("x > 25000 '/uL' or x is unknown", "x > 25000 '/uL' or x is unknown"),
        ('t = "a \\"quoted\\" \\\\ text"', 't = "a \\"quoted\\" \\\\ text"'),
        ("d < @2026-03-01T08:00", "d < @2026-03-01T08:00"),
    ],
)
def test_minimal_parentheses_and_spacing(written, canonical):
    text = f'protocol T\ninclusion I1 "x": {written}\n'
    assert format_text(text) == f'protocol T\n\ninclusion I1 "x":\n  {canonical}\n'


def test_long_chains_one_operand_per_line():
    operands = [f"condition_number_{i} > {i}" for i in range(6)]
    text = 'protocol T\nexclusion E1 "x": ' + " or ".join(operands[:3])
    text += " or (" + " and ".join(operands[3:]) + " and a_rather_long_name_here is known)\n"
    assert format_text(text) == (
        "protocol T\n\n"
        'exclusion E1 "x":\n'
        "  condition_number_0 > 0\n"
        "  or condition_number_1 > 1\n"
        "  or condition_number_2 > 2\n"
        "  or (\n"
        "    condition_number_3 > 3\n"
        "    and condition_number_4 > 4\n"
        "    and condition_number_5 > 5\n"
        "    and a_rather_long_name_here is known\n"
        "  )\n"
    )


def test_long_sets_and_choice_lists_wrap_under_their_first_item():
    choices = [f"cause_number_{i}" for i in range(8)]
    text = (
        f"protocol T\nfact cause: one of {', '.join(choices)}\n"
        f'exclusion E1 "x": cause in {{{", ".join(choices)}}}\n'
    )
    formatted = format_text(text)
    assert formatted == (
        "protocol T\n\n"
        "fact cause: one of cause_number_0, cause_number_1, cause_number_2, cause_number_3, "
        "cause_number_4,\n"
        "                   cause_number_5, cause_number_6, cause_number_7\n"
        "\n"
        'exclusion E1 "x":\n'
        "  cause in {cause_number_0, cause_number_1, cause_number_2, cause_number_3, "
        "cause_number_4,\n"
        "            cause_number_5, cause_number_6, cause_number_7}\n"
    )


def test_a_long_description_goes_on_the_next_line():
    description = "A description long enough to push the declaration past one hundred columns"
    text = f'protocol T\nfact informed_consent: boolean "{description}"\n'
    assert format_text(text) == (
        f'protocol T\n\nfact informed_consent: boolean\n  "{description}"\n'
    )


def test_comments_stay_with_the_code_they_annotate():
    text = (
        "# About this file\n"
        "\n"
        "protocol T  # the id\n"
        '  title "t"\n'
        "# Facts\n"
        "\n"
        "fact a: boolean\n"
        "fact b: boolean # trailing\n"
        "\n"
        "fact c: boolean\n"
        "define d =\n"
        "  # inside the define\n"
        "  a or b\n"
        'exclusion E1 "x": a # after a\n'
        "  or b\n"
        "# the end\n"
    )
    assert format_text(text) == (
        "# About this file\n"
        "\n"
        "protocol T  # the id\n"
        '  title "t"\n'
        "\n"
        "# Facts\n"
        "\n"
        "fact a: boolean\n"
        "fact b: boolean  # trailing\n"
        "fact c: boolean\n"
        "\n"
        "define d =\n"
        "  # inside the define\n"
        "  a or b\n"
        "\n"
        'exclusion E1 "x":\n'
        "  a  # after a\n"
        "  or b\n"
        "# the end\n"
    )


def test_each_comment_stays_on_its_own_line_inside_an_expression():
    text = (
        "protocol T\n"
        "fact a: boolean\nfact b: boolean\nfact c: boolean\n"
        'inclusion I1 "x":\n'
        "  a  # a\n"
        "  and b  # b\n"
        "  # before c\n"
        "  and c\n"
        'exclusion E1 "y": (a or  # inside\n b) and not (b and  # deeper\n c)\n'
    )
    assert assert_faithful(text) == (
        "protocol T\n\n"
        "fact a: boolean\nfact b: boolean\nfact c: boolean\n\n"
        'inclusion I1 "x":\n'
        "  a  # a\n"
        "  and b  # b\n"
        "  # before c\n"
        "  and c\n\n"
        'exclusion E1 "y":\n'
        "  (\n"
        "    a  # inside\n"
        "    or b\n"
        "  )\n"
        "  and not (\n"
        "    b  # deeper\n"
        "    and c\n"
        "  )\n"
    )


def test_a_comment_after_the_last_operand_does_not_break_the_line():
    text = 'protocol T\nfact a: boolean\ninclusion I1 "x": (a and a  # end\n)\n'
    assert assert_faithful(text).endswith('inclusion I1 "x":\n  a and a  # end\n')


def test_a_comment_inside_an_operand_that_cannot_be_broken_ends_its_line():
    text = 'protocol T\nfact age: integer\ninclusion I1 "x": (true)and(age is # a note\nknown)\n'
    assert assert_faithful(text).endswith('inclusion I1 "x":\n  true and age is known  # a note\n')


@pytest.mark.parametrize(
    ("written", "formatted"),
    [
        ("a and not # c\n b", "  a and not b  # c\n"),
        ("not ( # c\n a or b)", "  not (a or b)  # c\n"),
        ("not (a or # c\n b)", "  not (\n    a  # c\n    or b\n  )\n"),
    ],
)
def test_a_comment_after_not_stays_on_its_line(written, formatted):
    text = f'protocol T\nfact a: boolean\nfact b: boolean\ninclusion I1 "x": {written}\n'
    assert assert_faithful(text).endswith('inclusion I1 "x":\n' + formatted)


def test_comments_between_the_conditions_of_a_count_keep_their_lines():
    text = 'protocol T\ninclusion I1 "x": at least 1 of ( # c\n a, b # d\n, c # e\n)\n'
    assert assert_faithful(text).endswith(
        'inclusion I1 "x":\n  at least 1 of (  # c\n    a,\n    b,  # d\n    c  # e\n  )\n'
    )


def test_hash_signs_in_texts_and_units_are_not_comments():
    text = 'protocol T\nexclusion E1 "#1 rule": x = "#x"\n'
    assert format_text(text) == 'protocol T\n\nexclusion E1 "#1 rule":\n  x = "#x"\n'


def test_syntax_errors_are_raised_with_their_diagnostics():
    with pytest.raises(ProtocolError) as caught:
        format_text('protocol T\ninclusion I1 "x": age >\nfact : boolean\n', "bad.rules")
    codes = [d.code for d in caught.value.diagnostics]
    assert codes and all(code.startswith("PR1") for code in codes)
    assert caught.value.diagnostics[0].span.source.name == "bad.rules"


def test_type_errors_do_not_stop_the_formatter():
    text = "protocol T\ninclusion I1 \"x\":   nosuch   > 1 'furlong'\n"
    assert format_text(text) == "protocol T\n\ninclusion I1 \"x\":\n  nosuch > 1 'furlong'\n"


def test_an_empty_file():
    assert format_text("") == ""
    assert format_text("\n\n# only a comment\n\n") == "# only a comment\n"


# --------------------------------------------------------------------------- the command


def test_fmt_check_reports_files_that_would_change(tmp_path):
    messy = tmp_path / "messy.rules"
    messy.write_text('protocol T fact a: boolean inclusion I1 "x": a\n', encoding="utf-8")
    tidy = tmp_path / "tidy.rules"
    tidy.write_text(format_text(messy.read_text()), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(cli, ["fmt", "--check", str(messy), str(tidy)])
    assert result.exit_code == 1
    assert f"would reformat {messy}" in result.output
    assert str(tidy) not in result.output
    assert messy.read_text() == 'protocol T fact a: boolean inclusion I1 "x": a\n'
    assert runner.invoke(cli, ["fmt", "--check", str(tidy)]).exit_code == 0


def test_fmt_rewrites_files_in_place(tmp_path):
    messy = tmp_path / "messy.rules"
    messy.write_text('protocol T fact a: boolean inclusion I1 "x": a\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["fmt", str(messy)])
    assert result.exit_code == 0
    assert messy.read_text() == format_text('protocol T fact a: boolean inclusion I1 "x": a')
    assert CliRunner().invoke(cli, ["fmt", "--check", str(messy)]).exit_code == 0


def test_fmt_replaces_the_file_whole_and_keeps_its_mode(tmp_path, monkeypatch):
    messy = tmp_path / "messy.rules"
    messy.write_text('protocol T fact a: boolean inclusion I1 "x": a\n', encoding="utf-8")
    messy.chmod(0o640)
    inode = messy.stat().st_ino
    written = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (written.append((a, b)), real_replace(a, b)))
    assert CliRunner().invoke(cli, ["fmt", str(messy)]).exit_code == 0
    ((temporary, target),) = written
    assert os.path.dirname(temporary) == str(tmp_path) and target == str(messy)
    assert messy.stat().st_ino != inode  # a new file renamed over it, not truncated in place
    assert messy.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["messy.rules"]


def test_fmt_interrupted_while_writing_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    original = 'protocol T fact a: boolean inclusion I1 "x": a\n'
    messy = tmp_path / "messy.rules"
    messy.write_text(original, encoding="utf-8")

    def crash(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", crash)
    result = CliRunner().invoke(cli, ["fmt", str(messy)])
    assert result.exit_code == 1 and "PR001" in result.output
    assert messy.read_text(encoding="utf-8") == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["messy.rules"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_fmt_follows_a_symlink_and_keeps_it(tmp_path):
    real = tmp_path / "real.rules"
    real.write_text('protocol T fact a: boolean inclusion I1 "x": a\n', encoding="utf-8")
    link = tmp_path / "link.rules"
    link.symlink_to(real)
    assert CliRunner().invoke(cli, ["fmt", str(link)]).exit_code == 0
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text(encoding="utf-8") == format_text(
        'protocol T fact a: boolean inclusion I1 "x": a'
    )


def test_fmt_reads_standard_input():
    result = CliRunner().invoke(cli, ["fmt", "-"], input="protocol   T\n")
    assert result.exit_code == 0
    assert result.output == "protocol T\n"


def test_fmt_refuses_a_file_that_does_not_parse(tmp_path):
    bad = tmp_path / "bad.rules"
    bad.write_text('protocol T\ninclusion I1 "x": a and\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["fmt", str(bad)])
    assert result.exit_code == 1
    assert "PR103" in result.output
    assert bad.read_text() == 'protocol T\ninclusion I1 "x": a and\n'


# --------------------------------------------------------------------------- calculation
# docs/language/calculation.md, functions.md, libraries.md


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("-2^2 = -4", "-2 ^ 2 = -4"),
        ("(-2) ^ 2 = 4", "(-2) ^ 2 = 4"),
        ("(2 ^ 3) ^ 2 > 1", "(2 ^ 3) ^ 2 > 1"),
        ("2 ^ (3 ^ 2) > 1", "2 ^ 3 ^ 2 > 1"),
        ("x ^ (-1.2) > 1", "x ^ -1.2 > 1"),
        ("2 * (x ^ 2) > 1", "2 * x ^ 2 > 1"),
        ("(2 * x) ^ 2 > 1", "(2 * x) ^ 2 > 1"),
        ("(if p then x else y) > 1", "(if p then x else y) > 1"),
        ("if (p or q) then (x > 1) else unknown", "if p or q then x > 1 else unknown"),
        ("if (if p then q else r) then p else q", "if (if p then q else r) then p else q"),
        (
            "if p then q else (if q then p else unknown)",
            "if p then q else if q then p else unknown",
        ),
        ("f(if p then 1 else 2) > 1", "f(if p then 1 else 2) > 1"),
        ("p and (if p then q else r)", "p and (if p then q else r)"),
        ("first_known( x,y , 2 ) > round( x , 1 )", "first_known(x, y, 2) > round(x, 1)"),
    ],
)
def test_calculation_layout(written, canonical):
    text = f'protocol T\ninclusion I1 "x": {written}\n'
    assert format_text(text) == f'protocol T\n\ninclusion I1 "x":\n  {canonical}\n'


def test_functions_uses_and_long_if_expressions():
    text = (
        "protocol T use kidney use   \"egfr.rules\" fact urine: series of quantity 'mL/kg/h'\n"
        "define f( a :number,b: quantity 'kg' ) : number note \"a note\" = a*b / 1 'kg'\n"
        'inclusion I1 "x": if count(urine over last 6 hours) >= 6 then all(urine over last 6 '
        "hours) < 0.5 'mL/kg/h' else unknown\n"
    )
    assert format_text(text) == (
        "protocol T\n\n"
        "use kidney\n"
        'use "egfr.rules"\n\n'
        "fact urine: series of quantity 'mL/kg/h'\n\n"
        "define f(a: number, b: quantity 'kg'): number\n"
        '  note "a note" =\n'
        "  a * b / 1 'kg'\n\n"
        'inclusion I1 "x":\n'
        "  if count(urine over last 6 hours) >= 6\n"
        "    then all(urine over last 6 hours) < 0.5 'mL/kg/h'\n"
        "    else unknown\n"
    )


def test_long_parameter_lists_and_products_wrap():
    params = ", ".join(f"parameter_{i}: quantity 'mg/dL'" for i in range(4))
    product = " * ".join(f"(parameter_{i} / 1 'mg/dL')" for i in range(4))
    text = f"define long_function_name({params}): number =\n  {product} * 1000\n"
    assert format_text(text) == (
        "define long_function_name(parameter_0: quantity 'mg/dL', parameter_1: quantity 'mg/dL',\n"
        "                          parameter_2: quantity 'mg/dL', parameter_3: quantity 'mg/dL'):"
        " number =\n"
        "  parameter_0 / 1 'mg/dL' * (parameter_1 / 1 'mg/dL') * (parameter_2 / 1 'mg/dL')\n"
        "    * (parameter_3 / 1 'mg/dL') * 1000\n"
    )
    assert_faithful(text)


def test_the_shipped_libraries_are_formatted():
    from protocol_rules.library import shipped, shipped_text

    for name in shipped():
        text = shipped_text(name)
        assert format_text(text) == text, f"run `protocol-rules fmt` on {name}.rules"
