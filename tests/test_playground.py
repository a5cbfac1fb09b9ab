"""The playground page (docs/playground.md): its Python side natively, the runtime the mkdocs
hook copies into the site, and the page itself in headless Chromium (playground/browser-test.mjs;
skipped only where Chromium is absent, and never on CI; it runs ``npm ci`` in playground/ first
when its packages are not installed)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLAYGROUND = ROOT / "playground"
NCT = (ROOT / "protocols" / "nct04194671.rules").read_text(encoding="utf-8")
ELIGIBLE = (ROOT / "examples" / "patients" / "eligible.json").read_text(encoding="utf-8")


def load(name: str, path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    return load("playground_engine", ROOT / "docs" / "assets" / "playground" / "engine.py")


@pytest.fixture(scope="module")
def hook():  # type: ignore[no-untyped-def]
    return load("playground_hook", PLAYGROUND / "hook.py")


def test_the_engine_answers_a_verdict_and_an_explanation(engine) -> None:  # type: ignore[no-untyped-def]
    answer = json.loads(engine.run(NCT, ELIGIBLE))
    assert answer["status"] == "eligible" and answer["diagnostics"] == []
    assert answer["explanation"].startswith("NCT04194671")
    narrowed = NCT.replace("age between 18 years and 65 years", "age between 18 years and 50 years")
    answer = json.loads(engine.run(narrowed, ELIGIBLE))
    assert answer["status"] == "ineligible" and answer["deciding"] == ["I2"]


def test_the_engine_answers_diagnostics_with_javascript_offsets(engine) -> None:  # type: ignore[no-untyped-def]
    text = "# 😀 emoji\n" + NCT.replace("  age between", "  agee between")
    answer = json.loads(engine.run(text, ELIGIBLE))
    (d,) = answer["diagnostics"]
    assert d["code"] == "PR201" and d["help"] == "did you mean `age`?"
    start = text.index("agee")
    assert d["start"] == start + 1  # the emoji is two UTF-16 units
    assert d["end"] - d["start"] == 4
    assert answer["status"] is None


def test_the_engine_reports_patient_errors(engine) -> None:  # type: ignore[no-untyped-def]
    answer = json.loads(engine.run(NCT, "{"))
    (bad,) = answer["patient_errors"]
    assert bad["message"].startswith("not valid JSON") and bad["code"] == "PR401"
    assert (bad["line"], bad["column"]) == (1, 2)
    answer = json.loads(engine.run(NCT, '{"as_of": "2026-03-02T08:00:00Z", "age": "old"}'))
    assert [e["code"] for e in answer["patient_errors"]] == ["PR403"]
    assert answer["patient_errors"][0]["path"] == "$.age"


def test_the_hook_writes_the_examples_and_says_when_pyodide_is_missing(
    hook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(hook, "PYODIDE", tmp_path / "nowhere")
    manifest = hook.build(tmp_path / "site")
    runtime = tmp_path / "site" / "assets" / "playground" / "runtime"
    assert manifest["ready"] is False and "npm ci --prefix playground" in manifest["reason"]
    examples = json.loads((runtime / "examples.json").read_text(encoding="utf-8"))
    assert examples["protocol"]["text"] == NCT
    names = [p["name"] for p in examples["patients"]]
    assert "eligible.json" in names and "expected.json" not in names
    assert json.loads((runtime / "manifest.json").read_text()) == manifest


def test_the_hook_packs_the_engine_and_its_pure_python_dependencies(hook, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert hook.dependencies() == [
        "attrs", "flexcache", "flexparser", "lark", "pint", "platformdirs",
        "typing_extensions", "ucumvert",
    ]  # fmt: skip
    wheel = hook.project_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "protocol_rules/__init__.py" in names
    assert "protocol_rules/grammars/protocol_rules.lark" in names
    assert "protocol_rules/library/kidney.rules" in names
    assert not any(n.endswith(".pyc") for n in names)
    lark = hook.dependency_wheel("lark", tmp_path)
    with zipfile.ZipFile(lark) as archive:
        assert "lark/__init__.py" in archive.namelist()


def _chromium() -> str | None:
    named = os.environ.get("CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _required() -> bool:
    """On CI (.ci/run sets PROTOCOL_RULES_BROWSER_TESTS=required) the test never skips."""
    return os.environ.get("PROTOCOL_RULES_BROWSER_TESTS") == "required" or bool(
        os.environ.get("CI")
    )


def _node_packages() -> None:
    """`npm ci` in playground/ from its committed lockfile, when not done yet."""
    if all((PLAYGROUND / "node_modules" / p).is_dir() for p in ("pyodide", "playwright-core")):
        return
    npm = shutil.which("npm")
    assert npm is not None, "npm is not installed (the playground test needs node 20+ and npm)"
    done = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=PLAYGROUND, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_playground_in_headless_chromium(tmp_path: Path) -> None:
    """Skipped only where there is no Chromium at all (never on CI, which installs it)."""
    chromium = _chromium()
    if chromium is None:
        if _required():
            pytest.fail("chromium is not installed, and CI requires the browser test")
        pytest.skip("chromium is not installed (.ci/run installs it, and CI runs this test)")
    _node_packages()
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    shot = Path(os.environ.get("PLAYGROUND_SCREENSHOT", tmp_path / "playground.png"))
    done = subprocess.run(
        ["node", str(PLAYGROUND / "browser-test.mjs"), str(site), str(shot)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "CHROMIUM": chromium},
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    timings = json.loads(done.stdout.strip().splitlines()[-1])
    assert timings["ok"] is True
    print("playground timings (ms):", timings)
    assert shot.stat().st_size > 20_000, "the screenshot is (nearly) blank"
