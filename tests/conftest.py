"""Shared fixtures and the Hypothesis profiles (``ci``: thorough and derandomized; ``dev``: quick).

The profile is chosen by ``HYPOTHESIS_PROFILE``; on CI (``CI`` set) it defaults to ``ci``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Keep the suite's unit and parser cache out of the user's cache folder (subprocesses inherit it).
os.environ.setdefault("PROTOCOL_RULES_CACHE_DIR", tempfile.mkdtemp(prefix="protocol-rules-cache-"))

import protocol_rules


def _import_every_module() -> None:
    """Import every module of `protocol_rules` now. Hypothesis mines constants from the local
    modules loaded when a test draws (not from test files), so without this the derandomized
    draws of a test changed with which other tests had run before it — a test could pass alone
    and fail in a selection, or the other way round. A module whose optional dependency is
    missing is left out (the tests that need it are skipped too)."""
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(protocol_rules.__path__, "protocol_rules."):
        try:
            importlib.import_module(module.name)
        except ImportError:
            continue


_import_every_module()

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


# Tests that take seconds each (subprocesses, the docs build, long property runs). A contributor
# runs the rest in well under a minute with `pytest -m "not slow"`; CI runs everything. A test
# named here (without its parameters) is slow in every parametrization.
SLOW = {
    "tests/test_sql.py::test_nct04194671_agrees_with_evaluate",
    "tests/test_sql.py::test_random_protocols_agree_or_are_refused",
    "tests/test_docs_examples.py::test_python_block",
    "tests/test_lexer.py::test_docs_build_highlights_rules_blocks",
    "tests/test_format.py::test_programs_from_the_grammar",
    "tests/test_format.py::test_generated_protocols_in_any_layout",
    "tests/test_format.py::test_formatting_does_not_depend_on_the_layout",
    "tests/test_cli.py::test_console_script_runs_outside_the_checkout",
    "tests/test_properties.py::test_conditions_without_is_known_are_monotone",
    "tests/test_properties.py::test_same_input_same_result_and_json_round_trips",
    "tests/test_properties.py::test_learning_a_missing_fact_never_changes_a_decided_outcome",
    "tests/test_properties.py::test_reloading_the_protocol_changes_nothing",
    "tests/test_properties.py::test_order_of_keys_and_observations_does_not_matter",
    "tests/test_robustness.py::test_expressions_from_the_grammar_load_or_are_refused",
    "tests/test_robustness.py::test_generated_protocols_load_and_evaluate_their_patients",
    "tests/test_robustness.py::test_edits_of_a_valid_file_load_or_are_refused",
    "tests/test_robustness.py::test_programs_from_the_grammar_load_or_are_refused",
    "tests/test_units.py::test_the_cache_file_is_json_written_whole",
    "tests/test_cold_start.py::test_check_of_a_known_protocol_builds_no_unit_registry",
    "tests/test_packaging.py::test_the_wheel_ships_the_grammar_the_types_marker_and_the_license",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.split("[", 1)[0] in SLOW:
            item.add_marker(pytest.mark.slow)


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
    # a few thousand rows: two shuffle partitions (one per core) instead of Spark's 200
    active.conf.set("spark.sql.shuffle.partitions", "2")
    yield active
    active.stop()
