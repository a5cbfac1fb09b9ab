"""The `screen` and `convert` commands, and the HTML report (checked in headless Chromium)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from protocol_rules import parse_protocol
from protocol_rules.cli import cli
from protocol_rules.render.report import report_html

ROOT = Path(__file__).resolve().parents[1]
RULES = str(ROOT / "protocols" / "nct04194671.rules")
sys.path.insert(0, str(ROOT / "benchmarks"))
from patients import generate  # noqa: E402


def run(*args: str) -> Any:
    return CliRunner(env={"NO_COLOR": "1"}).invoke(cli, list(args), prog_name="protocol-rules")


@pytest.fixture
def population(tmp_path: Path) -> Path:
    path = tmp_path / "population.jsonl"
    lines = [json.dumps({"id": f"P{i}", **r}) for i, r in enumerate(generate(300, seed=2))]
    lines.append(json.dumps({"id": "BAD", "as_of": "2026-03-01", "age": "old"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_screen_prints_attrition_and_counts(population: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "r.parquet", tmp_path / "r.html"
    done = run("screen", RULES, str(population), "--out", str(out), "--report", str(report))
    assert done.exit_code == 0, done.output
    assert "301 patients screened" in done.output
    assert "Attrition (criteria in file order)" in done.output
    assert "E20" in done.output and "Criteria" in done.output
    assert "patient BAD: error[PR403]" in done.output  # on standard error, mixed in by click
    frame = pl.read_parquet(out)
    assert frame.height == 301
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_screen_json_and_what_if(population: Path) -> None:
    done = CliRunner(env={"NO_COLOR": "1"}).invoke(
        cli, ["screen", RULES, str(population), "--format", "json", "--without", "E9"]
    )
    assert done.exit_code == 0
    data = json.loads(done.stdout)
    assert data["version"] == "1.0"
    assert data["patients"] == 301 and data["statuses"]["error"] == 1
    assert data["what_if"]["without"] == ["E9"]
    assert [e["code"] for e in data["errors"]] == ["PR403"]


def test_convert_then_screen_the_layout(population: Path, tmp_path: Path) -> None:
    folder = tmp_path / "layout"
    done = run("convert", str(population), str(folder))
    assert done.exit_code == 0, done.output
    assert (folder / "patients.parquet").exists() and (folder / "observations.parquet").exists()
    by_layout = run("screen", RULES, str(folder), "--format", "json")
    by_records = run("screen", RULES, str(population), "--format", "json")
    assert json.loads(by_layout.stdout)["attrition"] == json.loads(by_records.stdout)["attrition"]


def test_exit_1_on_bad_protocol_or_unreadable_data(population: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.rules"
    bad.write_text('protocol X\ninclusion I1 "x": agee > 1\n', encoding="utf-8")
    assert run("screen", str(bad), str(population)).exit_code == 1
    done = run("screen", RULES, str(tmp_path / "missing.jsonl"))
    assert done.exit_code == 1 and "PR508" in done.output
    assert run("screen", RULES, str(population), "--without", "E99").exit_code == 1
    assert run("convert", str(tmp_path / "missing.jsonl"), str(tmp_path / "o")).exit_code == 1


# --------------------------------------------------------------------------- the report

HOSTILE = """\
protocol "X<script>alert(1)</script>"
  title "<img src=x onerror=alert(2)>"
fact age: quantity 'a'
fact platelet_count: quantity '/uL'
inclusion I1 "Age <b>between</b> 18 & 65 \\"years\\"": age between 18 years and 65 years
exclusion E1 "Platelets <25,000/uL <iframe src=//evil>": platelet_count < 25000 '/uL'
"""


def hostile_report() -> str:
    protocol = parse_protocol(HOSTILE)
    records = [
        {"id": "<svg onload=alert(3)>", "age": 40, "platelet_count": 20000},
        {"id": "p2", "age": 40, "platelet_count": 30000},
        {"id": "p3", "age": 70},
        {"id": "p4", "age": "<i>old</i>"},
    ]
    return report_html(protocol.screen(records), without=["E1"])


def test_report_escapes_every_text() -> None:
    page = hostile_report()
    for raw in ("<script>", "<img", "<iframe", "<svg onload", "<i>old", "<b>between"):
        assert raw not in page, raw
    assert "&lt;iframe src=//evil&gt;" in page
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing fetched


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def headless(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed here (.ci/run installs it, so CI runs this test)")
    return subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", *args,
        ],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_report_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(hostile_report(), encoding="utf-8")
    shot = tmp_path / "report.png"
    done = headless(tmp_path, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri())
    assert shot.exists(), done.stderr.decode(errors="replace")[-2000:]
    assert png_size(shot) == (1200, 1600)
    assert shot.stat().st_size > 20_000, "the screenshot is (nearly) blank"
    dom = headless(tmp_path, "--dump-dom", page.as_uri()).stdout.decode()
    assert dom.count("<svg") >= 2, "the funnel and the gains charts"
    assert "<script" not in dom and "<iframe" not in dom and "onerror" not in dom.split("&lt;")[0]
    assert "Platelets &lt;25,000/uL &lt;iframe src=//evil&gt;" in dom


def test_progress_is_off_when_stderr_is_not_a_terminal(population: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from protocol_rules.cli import main; main()", "screen", RULES,
         str(population)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stderr
    assert done.stderr.startswith("1 problem(s) in malformed records")
