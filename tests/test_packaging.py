"""Packaging: what the wheel and the sdist ship, and what an install without extras says."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile

import pytest

from .conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_package_is_marked_typed():
    assert "Typing :: Typed" in PYPROJECT["project"]["classifiers"]
    assert (ROOT / "src" / "protocol_rules" / "py.typed").is_file()


def test_the_license_file_matches_the_declared_license():
    assert PYPROJECT["project"]["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "LICENSE" in PYPROJECT["project"]["license-files"]
    assert "LICENSE" in PYPROJECT["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]


def test_the_wheel_ships_the_grammar_the_types_marker_and_the_license(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("protocol_rules-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "protocol_rules/py.typed" in names
    assert "protocol_rules/grammars/protocol_rules.lark" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_the_testing_module_without_hypothesis_says_which_extra_to_install():
    script = (
        "import sys\n"
        "sys.modules['hypothesis'] = None  # as if it were not installed\n"
        "try:\n"
        "    import protocol_rules.testing\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert "pip install 'protocol-rules[testing]'" in done.stdout


def test_the_readme_names_the_testing_extra_and_the_quick_test_run():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "protocol-rules[testing]" in readme
    assert '-m "not slow"' in readme


@pytest.mark.parametrize("page", ["testing.md"])
def test_the_docs_say_how_to_run_the_quick_tests(page):
    assert '-m "not slow"' in (ROOT / "docs" / page).read_text(encoding="utf-8")
