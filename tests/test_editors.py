"""The editor files agree with the language: the TextMate grammar of the VS Code extension
(editors/vscode) highlights the words the Pygments lexer highlights."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from protocol_rules import lexer

ROOT = Path(__file__).resolve().parents[1]
GRAMMAR = ROOT / "editors" / "vscode" / "syntaxes" / "rules.tmLanguage.json"


def alternatives(pattern: str) -> set[str]:
    found = re.search(r"\(\?:([a-z_0-9|?]+)\)", pattern)
    assert found, pattern
    return set(found.group(1).split("|"))


def scope_words(scope: str) -> set[str]:
    repository = json.loads(GRAMMAR.read_text(encoding="utf-8"))["repository"]
    words: set[str] = set()
    for group in ("words", "call"):
        for rule in repository[group]["patterns"]:
            if rule.get("name") == scope:
                words |= alternatives(rule["match"])
    return words


def test_the_grammar_knows_the_lexers_words() -> None:
    assert scope_words("storage.type.rules") == set(lexer.TYPES)
    assert scope_words("support.function.builtin.rules") == set(lexer.FUNCTIONS)
    assert scope_words("keyword.operator.logical.rules") == set(lexer.LOGIC)
    assert scope_words("variable.language.rules") == set(lexer.PSEUDO_VALUES)
    keywords = scope_words("keyword.other.rules") | scope_words("keyword.control.conditional.rules")
    assert keywords == set(lexer.KEYWORDS)
    assert scope_words("keyword.other.declaration.rules") == set(lexer.DECLARATIONS)


def test_the_extension_names_its_parts() -> None:
    folder = GRAMMAR.parents[1]
    manifest = json.loads((folder / "package.json").read_text(encoding="utf-8"))
    (language,) = manifest["contributes"]["languages"]
    assert language["extensions"] == [".rules"]
    (grammar,) = manifest["contributes"]["grammars"]
    assert (folder / grammar["path"]).resolve() == GRAMMAR
    assert (folder / language["configuration"]).is_file()
    assert (folder / "package-lock.json").is_file(), "CI installs with npm ci"
    config = json.loads((folder / "language-configuration.json").read_text(encoding="utf-8"))
    assert config["comments"]["lineComment"] == "#"


def test_the_language_server_without_pygls_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from protocol_rules.cli import cli

    monkeypatch.delitem(sys.modules, "protocol_rules.lsp.server", raising=False)
    # as if it were not installed (its modules too: conftest has imported every module, and a
    # module already in sys.modules would be found without its package)
    for name in [n for n in sys.modules if n == "pygls" or n.startswith("pygls.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "pygls", None)
    result = CliRunner().invoke(cli, ["lsp"])
    assert result.exit_code == 2
    assert "error[PR701]: the language server needs pygls" in result.output
    assert "help: install the lsp extra: pip install 'protocol-rules[lsp]'" in result.output
    assert "Traceback" not in result.output
