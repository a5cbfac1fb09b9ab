"""The language server, driven as an editor drives it: `protocol-rules lsp` in a child process,
JSON-RPC over its standard input and output (tests/lsp_client.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pygls")

from protocol_rules.format import format_text
from protocol_rules.lsp.text import Lines, unit_at, word_at

from .lsp_client import Client, position

ROOT = Path(__file__).resolve().parents[1]
NCT = ROOT / "protocols" / "nct04194671.rules"

DEMO = """\
protocol DEMO
  title "A demo"

use kidney

fact age: quantity 'a' range 0 to 130 "Age at screening"
fact platelet_count: quantity '/uL' range 0 to 5000000
fact aki_cause: one of prerenal, septic, other
fact creatinine: quantity 'mg/dL' range 0 to 30
fact female: boolean

define body_mass(weight: quantity 'kg', height: quantity 'm') = weight / height ^ 2

inclusion I1 "Age between 18 and 65 years"
  note "inclusive at both ends":
  age between 18 years and 65 years

exclusion E1 "Platelet count <25,000/uL":
  platelet_count < 25000 '/uL' or aki_cause = septic

exclusion E2 "eGFR below 30":
  ckd_epi_2021(creatinine, age, female) < 30 'mL/min/{1.73_m2}'
    or body_mass(70 'kg', 1.8 'm') > 40 'kg/m2'
"""


@pytest.fixture(scope="module")
def client():
    with Client() as c:
        c.initialize()
        yield c


def at(uri: str, text: str, needle: str, nth: int = 0, delta: int = 0) -> dict:
    return {"textDocument": {"uri": uri}, "position": position(text, needle, nth, delta)}


def open_doc(client: Client, path: Path, text: str) -> tuple[str, list]:
    path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    client.open(uri, text)
    return uri, client.diagnostics(uri, 1)


def test_initialize_advertises_the_features(tmp_path: Path) -> None:
    with Client() as c:
        capabilities = c.initialize()["capabilities"]
    for feature in (
        "hoverProvider",
        "completionProvider",
        "definitionProvider",
        "referencesProvider",
        "documentSymbolProvider",
        "documentFormattingProvider",
        "semanticTokensProvider",
        "renameProvider",
        "codeActionProvider",
        "documentHighlightProvider",
        "signatureHelpProvider",
    ):
        assert capabilities.get(feature), feature
    assert capabilities["textDocumentSync"]["change"] == 2  # incremental


def test_a_mistake_is_reported_as_you_type_and_cleared_when_fixed(
    client: Client, tmp_path: Path
) -> None:
    bad = DEMO.replace("  age between", "  agee between")
    uri, diagnostics = open_doc(client, tmp_path / "demo.rules", bad)
    assert [d["code"] for d in diagnostics] == ["PR201"]
    (d,) = diagnostics
    assert d["severity"] == 1 and d["source"] == "protocol-rules"
    assert d["range"] == {
        "start": position(bad, "agee"),
        "end": position(bad, "agee", delta=4),
    }
    assert "unknown name `agee`" in d["message"]
    assert "help: did you mean `age`?" in d["message"]
    # the same code, place and help as `protocol-rules check`
    from protocol_rules import check_text

    (expected,) = check_text(bad, str(tmp_path / "demo.rules"))
    assert (expected.span.line - 1, expected.span.column - 1) == (
        d["range"]["start"]["line"],
        d["range"]["start"]["character"],
    )
    assert expected.help in d["message"]

    # a keystroke: delete the extra `e` (an incremental change)
    start = position(bad, "agee", delta=3)
    client.edit(
        uri, 2, (start["line"], start["character"]), (start["line"], start["character"] + 1), ""
    )
    assert client.diagnostics(uri, 2) == []


def test_a_quick_fix_writes_the_suggestion(client: Client, tmp_path: Path) -> None:
    bad = DEMO.replace("  age between", "  agee between")
    uri, diagnostics = open_doc(client, tmp_path / "fix.rules", bad)
    actions = client.request(
        "textDocument/codeAction",
        {
            "textDocument": {"uri": uri},
            "range": diagnostics[0]["range"],
            "context": {"diagnostics": diagnostics},
        },
    )
    (action,) = actions
    assert action["kind"] == "quickfix" and action["title"] == "Write `age`"
    (edit,) = action["edit"]["changes"][uri]
    assert edit["newText"] == "age" and edit["range"] == diagnostics[0]["range"]


def test_warnings_and_syntax_errors(client: Client, tmp_path: Path) -> None:
    text = DEMO.replace("fact female: boolean", "fact female: boolean\nfact spare: boolean")
    uri, diagnostics = open_doc(client, tmp_path / "warn.rules", text)
    (unused,) = diagnostics
    assert unused["code"] == "PR209" and unused["severity"] == 2
    assert unused["tags"] == [1]  # shown faded: unnecessary
    client.change(uri, 2, text.replace("age between 18 years", "age between between"))
    (syntax,) = client.diagnostics(uri, 2)
    assert syntax["code"].startswith("PR1")


def test_a_mistake_in_a_used_file_shows_on_the_use_line(client: Client, tmp_path: Path) -> None:
    (tmp_path / "lib.rules").write_text(
        "define twice(x: number) = 2 * y\n", encoding="utf-8"
    )  # `y` is unknown
    text = DEMO.replace("use kidney", 'use kidney\nuse "lib.rules"')
    text = text.replace("< 30 'mL/min/{1.73_m2}'", "< twice(15) * 1 'mL/min/{1.73_m2}'")
    _, diagnostics = open_doc(client, tmp_path / "main.rules", text)
    inside = [d for d in diagnostics if "lib.rules" in d["message"]]
    assert inside, diagnostics
    d = inside[0]
    assert d["range"]["start"] == position(text, 'use "lib.rules"')
    related = d["relatedInformation"][0]["location"]
    assert related["uri"] == (tmp_path / "lib.rules").as_uri()
    assert related["range"]["start"]["line"] == 0


def test_hover(client: Client, tmp_path: Path) -> None:
    uri, _ = open_doc(client, tmp_path / "hover.rules", DEMO)

    def hover(needle: str, nth: int = 0, delta: int = 1) -> str:
        result = client.request("textDocument/hover", at(uri, DEMO, needle, nth, delta))
        assert result is not None, needle
        return result["contents"]["value"]

    fact = hover("age between")
    assert "fact age: quantity 'a' range 0 to 130" in fact
    assert "range 0 to 130 'a'" in fact and "year" in fact and "Age at screening" in fact
    criterion = hover("I1")
    assert "inclusion I1" in criterion and "Age between 18 and 65 years" in criterion
    assert "inclusive at both ends" in criterion
    own = hover("body_mass(70")
    assert "body_mass(weight: quantity 'kg', height: quantity 'm')" in own
    library = hover("ckd_epi_2021(")
    assert "ckd_epi_2021(creatinine: quantity 'mg/dL', age: quantity 'a'" in library
    assert "use kidney" in library and "Inker LA" in library
    unit = hover("'/uL'", 1, 2)
    assert "per microlitre" in unit
    assert "*choice of* `aki_cause`" in hover("septic", 1)
    assert "the largest" not in hover("platelet_count <")


def test_completion(client: Client, tmp_path: Path) -> None:
    uri, _ = open_doc(client, tmp_path / "complete.rules", DEMO)

    def labels(text: str, needle: str, delta: int) -> list[str]:
        result = client.request("textDocument/completion", at(uri, text, needle, 0, delta))
        return [item["label"] for item in result["items"]]

    everywhere = labels(DEMO, "platelet_count <", 0)
    for name in ("age", "platelet_count", "aki_cause", "body_mass", "ckd_epi_2021", "max",
                 "time_since", "between", "exclusion"):  # fmt: skip
        assert name in everywhere, name
    assert "septic" not in everywhere  # choices where a choice fits
    choices = labels(DEMO, "aki_cause = ", len("aki_cause = "))
    assert choices == ["prerenal", "septic", "other"]
    units = labels(DEMO, "'/uL'", 1)
    assert "mg/dL" in units and "10*9/L" in units and "mL/min/{1.73_m2}" in units


def test_completion_while_the_text_does_not_parse(client: Client, tmp_path: Path) -> None:
    uri, _ = open_doc(client, tmp_path / "typing.rules", DEMO)
    typing = DEMO + '\nexclusion E3 "x":\n  aki_cause in {sep'
    client.change(uri, 2, typing)
    client.diagnostics(uri, 2)
    result = client.request("textDocument/completion", at(uri, typing, "{sep", 0, 4))
    assert [item["label"] for item in result["items"]] == ["prerenal", "septic", "other"]
    typing = DEMO + "\nfact weight: quantity 'kg'\nexclusion E3 \"x\":\n  w"
    client.change(uri, 3, typing)
    client.diagnostics(uri, 3)
    result = client.request("textDocument/completion", at(uri, typing, "\n  w", 0, 4))
    assert "weight" in [item["label"] for item in result["items"]]


def test_definition_and_references(client: Client, tmp_path: Path) -> None:
    uri, _ = open_doc(client, tmp_path / "nav.rules", DEMO)
    (location,) = client.request("textDocument/definition", at(uri, DEMO, "age between", 0, 1))
    assert location["uri"] == uri
    assert location["range"]["start"] == position(DEMO, "age:")
    (location,) = client.request("textDocument/definition", at(uri, DEMO, "ckd_epi_2021", 0, 3))
    assert location["uri"].endswith("/protocol_rules/library/kidney.rules")
    library = Path(location["uri"][len("file://") :]).read_text(encoding="utf-8")
    line = library.splitlines()[location["range"]["start"]["line"]]
    assert line.startswith("define ckd_epi_2021(")
    references = client.request(
        "textDocument/references",
        {**at(uri, DEMO, "age:", 0, 1), "context": {"includeDeclaration": True}},
    )
    starts = [r["range"]["start"] for r in references]
    assert starts == [
        position(DEMO, "age:"),
        position(DEMO, "age between"),
        position(DEMO, "age, female"),
    ]
    params = client.request(
        "textDocument/references",
        {**at(uri, DEMO, "weight /", 0, 1), "context": {"includeDeclaration": False}},
    )
    assert [r["range"]["start"] for r in params] == [position(DEMO, "weight /")]


def test_highlight_marks_every_use_and_the_declaration(client: Client, tmp_path: Path) -> None:
    uri, _ = open_doc(client, tmp_path / "highlight.rules", DEMO)
    marks = client.request("textDocument/documentHighlight", at(uri, DEMO, "age between", 0, 1))
    assert [(m["range"]["start"], m["kind"]) for m in marks] == [
        (position(DEMO, "age:"), 3),  # write: the declaration
        (position(DEMO, "age between"), 2),  # read
        (position(DEMO, "age, female"), 2),
    ]


def test_signature_help_while_typing_a_call(client: Client, tmp_path: Path) -> None:
    uri, _ = open_doc(client, tmp_path / "signature.rules", DEMO)
    typing = DEMO + '\nexclusion E3 "Low (very low) eGFR, or":\n  ckd_epi_2021(creatinine, '
    client.change(uri, 2, typing)
    client.diagnostics(uri, 2)  # a syntax error: the call is not finished
    where = {"textDocument": {"uri": uri}, "position": position(typing, "creatinine, ", 1, 12)}
    help_ = client.request("textDocument/signatureHelp", where)
    (signature,) = help_["signatures"]
    assert signature["label"].startswith("ckd_epi_2021(creatinine: quantity 'mg/dL', age:")
    assert help_["activeParameter"] == 1
    assert signature["parameters"][1]["label"] == "age: quantity 'a'"
    assert "Inker LA" in signature["documentation"]
    own = client.request("textDocument/signatureHelp", at(uri, DEMO, "body_mass(70", 0, 10))
    assert own["signatures"][0]["label"].startswith("body_mass(weight: quantity 'kg'")
    assert own["activeParameter"] == 0
    outside = client.request("textDocument/signatureHelp", at(uri, DEMO, "platelet_count <", 0, 3))
    assert outside is None


def test_rename(client: Client, tmp_path: Path) -> None:
    uri, _ = open_doc(client, tmp_path / "rename.rules", DEMO)
    edit = client.request(
        "textDocument/rename", {**at(uri, DEMO, "platelet_count <", 0, 2), "newName": "platelets"}
    )
    edits = edit["changes"][uri]
    assert len(edits) == 2 and all(e["newText"] == "platelets" for e in edits)


def test_outline(client: Client) -> None:
    text = NCT.read_text(encoding="utf-8")
    uri = NCT.as_uri()
    client.open(uri, text)
    assert client.diagnostics(uri, 1) == []
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    names = [s["name"] for s in symbols]
    assert names[0] == "protocol NCT04194671"
    assert [c["name"] for c in symbols[0]["children"]][:2] == ["title", "sponsor"]
    criteria = [s for s in symbols if s.get("detail") in ("inclusion", "exclusion")]
    assert len(criteria) == 24
    assert criteria[0]["name"].startswith("I1  Have severe AKI")
    tokens = client.request("textDocument/semanticTokens/full", {"textDocument": {"uri": uri}})
    assert len(tokens["data"]) % 5 == 0 and len(tokens["data"]) > 100
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert client.diagnostics(uri) == []


def test_formatting(client: Client, tmp_path: Path) -> None:
    messy = DEMO.replace("fact age: quantity 'a'", "fact   age :quantity   'a'").replace(
        "  age between", "      age    between"
    )
    uri, _ = open_doc(client, tmp_path / "messy.rules", messy)
    (edit,) = client.request(
        "textDocument/formatting",
        {"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": True}},
    )
    assert edit["newText"] == format_text(messy) == format_text(DEMO)
    assert edit["range"]["start"] == {"line": 0, "character": 0}
    assert edit["range"]["end"]["line"] == messy.count("\n")


def test_semantic_tokens_tell_facts_from_choices_and_functions(
    client: Client, tmp_path: Path
) -> None:
    uri, _ = open_doc(client, tmp_path / "tokens.rules", DEMO)
    data = client.request("textDocument/semanticTokens/full", {"textDocument": {"uri": uri}})[
        "data"
    ]
    tokens, line, column = {}, 0, 0
    lines = DEMO.splitlines()
    for i in range(0, len(data), 5):
        d_line, d_col, length, kind, modifiers = data[i : i + 5]
        line += d_line
        column = column + d_col if d_line == 0 else d_col
        tokens.setdefault(lines[line][column : column + length], set()).add((kind, modifiers))
    assert (0, 0) in tokens["platelet_count"] and (0, 1) in tokens["platelet_count"]
    assert (3, 0) in tokens["septic"]  # an enum member
    assert (1, 0) in tokens["ckd_epi_2021"] and (2, 0) in tokens["weight"]


def test_positions_count_utf16_units() -> None:
    text = 'a\n"😀 x" b\n'
    lines = Lines(text)
    offset = text.index("b")
    assert lines.position(offset) == (1, 7)  # the emoji is two UTF-16 units
    assert lines.offset(1, 7) == offset
    assert Lines(text, "utf-8").position(offset) == (1, 9)
    assert Lines(text, "utf-32").position(offset) == (1, 6)
    assert word_at("max(age)", 6) == (4, 7, "age")
    assert unit_at("x < 25 '/uL' # 'no'", 9) == (8, 11, "/uL")
    assert unit_at('x "it\'s" < 2', 6) is None
