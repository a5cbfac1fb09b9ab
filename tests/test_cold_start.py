"""A fresh process starts fast: the parser's tables come from the cache folder, the package
imports what a command needs and no more. (The speed itself is measured by
benchmarks/cold_start.py, not here.)"""

from __future__ import annotations

import json
import subprocess
import sys

import lark
import pytest

from protocol_rules import _cache, _grammar

from .conftest import PROTOCOL_FILE, ROOT

TEXT = PROTOCOL_FILE.read_text(encoding="utf-8")


@pytest.fixture
def cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(_cache.ENV_VAR, str(tmp_path))
    return tmp_path


def test_the_cached_parser_parses_exactly_as_the_built_one(cache_folder):
    built = _grammar._load_or_build()  # builds and stores the tables
    (stored,) = list(cache_folder.rglob("parser-*.json"))
    json.loads(stored.read_text(encoding="utf-8"))  # plain JSON, never pickle
    loaded = _grammar._load_or_build()
    assert not hasattr(loaded, "grammar") or loaded is not built
    assert loaded.parse(TEXT) == built.parse(TEXT)
    for broken in ('protocol P\ninclusion I1 "x": a ==', "protocol P\nfact a: boolean &"):
        errors = []
        for parser in (built, loaded):
            with pytest.raises(lark.UnexpectedInput) as caught:
                parser.parse(broken)
            errors.append((type(caught.value), getattr(caught.value, "expected", None)))
        assert errors[0] == errors[1]


@pytest.mark.parametrize("content", [b"", b"{]", b'{"format": 1, "key": "k", "data": 3}'])
def test_a_damaged_parser_cache_is_rebuilt(cache_folder, content):
    _grammar._load_or_build()
    (stored,) = list(cache_folder.rglob("parser-*.json"))
    stored.write_bytes(content)
    assert _grammar._load_or_build().parse(TEXT)
    json.loads(stored.read_text(encoding="utf-8"))  # written again, whole


def test_a_new_grammar_gets_its_own_cache_file(cache_folder, monkeypatch):
    _grammar._load_or_build()
    first = {p.name for p in cache_folder.rglob("parser-*.json")}
    text = _grammar.grammar_text() + "\n// a comment changes the key\n"
    monkeypatch.setattr(_grammar, "grammar_text", lambda: text)
    _grammar._load_or_build()
    second = {p.name for p in cache_folder.rglob("parser-*.json")}
    assert first != second and len(second) == 1  # the old file is removed


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    env = {"PYTHONPATH": str(ROOT / "src"), _cache.ENV_VAR: ""}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_importing_the_package_loads_nothing_heavy():
    loaded = _modules_after("import protocol_rules")
    assert not loaded & {"lark", "pint", "click", "protocol_rules.evaluate", "protocol_rules.facts"}


def test_the_command_line_loads_the_parser_only_for_commands_that_parse():
    loaded = _modules_after(
        "from protocol_rules.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass"
    )
    assert "click" in loaded
    assert not loaded & {"lark", "pint", "protocol_rules.parser", "protocol_rules.evaluate"}


def test_check_of_a_known_protocol_builds_no_unit_registry(tmp_path):
    script = (
        "import sys\n"
        "from protocol_rules.cli import main\n"
        f"try:\n    main(['check', {str(PROTOCOL_FILE)!r}])\nexcept SystemExit:\n    pass\n"
        "print('pint' in sys.modules, 'protocol_rules.evaluate' in sys.modules, file=sys.stderr)"
    )
    env = {"PYTHONPATH": str(ROOT / "src"), _cache.ENV_VAR: str(tmp_path)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
        )
        for _ in range(2)
    ]
    assert [r.stderr.split() for r in runs] == [["True", "False"], ["False", "False"]]
