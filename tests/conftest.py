"""Shared fixtures and the Hypothesis profiles (``ci``: thorough and derandomized; ``dev``: quick).

The profile is chosen by ``HYPOTHESIS_PROFILE``; on CI (``CI`` set) it defaults to ``ci``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import protocol_rules

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_FILE = ROOT / "protocols" / "nct04194671.rules"
PATIENTS = ROOT / "examples" / "patients"

settings.register_profile(
    "ci",
    max_examples=300,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def nct() -> protocol_rules.Protocol:
    return protocol_rules.load_protocol(PROTOCOL_FILE)


def load_patient(name: str) -> dict:
    return json.loads((PATIENTS / name).read_text(encoding="utf-8"))


def expected() -> dict:
    return json.loads((PATIENTS / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for every Spark test (starting one takes seconds); skipped when
    pyspark or a Java runtime is missing. CI installs both (.ci/run)."""
    import shutil

    pytest.importorskip("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs a Java runtime (java is not on PATH)")
    from protocol_rules.engines.spark import session

    active = session("local[2]")
    active.sparkContext.setLogLevel("ERROR")
    yield active
    active.stop()
