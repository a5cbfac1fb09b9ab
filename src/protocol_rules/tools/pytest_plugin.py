"""A pytest plugin: ``*.tests.toml`` files are collected, one test item per case.

Installed with the package (entry point ``pytest11``), so a test suite that lists a folder
holding ``NAME.tests.toml`` files runs their cases beside its own tests; a failing case is
reported with the same diff of outcomes and explanation as ``protocol-rules test`` prints.
Disable it with ``-p no:protocol_rules``. See docs/testing-rules.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..diagnostics import RulesError
from .testfile import SUFFIX, TestCase, check_against, read_tests


class CaseFailed(Exception):
    """A case did not come out as its tests file expects; carries the failure text."""


class LoadFailed(Exception):
    """A tests file or its protocol could not be loaded."""


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(SUFFIX):
        return RulesTestFile.from_parent(parent, path=file_path)
    return None


def _render(exc: RulesError) -> str:
    from ..render.diagnostics import render_diagnostics

    return render_diagnostics(exc.diagnostics)


class RulesTestFile(pytest.File):
    """A ``NAME.tests.toml`` file: its cases against the protocol it names (``NAME.rules``)."""

    def collect(self) -> Iterator[pytest.Item]:
        from ..protocol import load_protocol

        tests, diagnostics = read_tests(self.path)
        if tests is None:
            raise LoadFailed(_render(RulesError(diagnostics)))
        try:
            protocol = load_protocol(tests.protocol_path)
        except RulesError as exc:
            raise LoadFailed(_render(exc)) from None
        problems = check_against(tests, protocol)
        if problems:
            raise LoadFailed(_render(RulesError(problems)))
        for case in tests.cases:
            yield RulesCase.from_parent(self, name=case.name, case=case, protocol=protocol)

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, LoadFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class RulesCase(pytest.Item):
    """One case of a tests file."""

    def __init__(self, *, case: TestCase, protocol: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.protocol = protocol

    def runtest(self) -> None:
        from .runner import failure_text, run_case

        result = run_case(self.protocol, self.case)
        if not result.passed:
            raise CaseFailed(failure_text(result, f"{self.path.name}:{self.case.span.line}"))

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.span.line - 1, f"case {self.case.name}"
