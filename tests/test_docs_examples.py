"""Every example on the docs site runs: rules blocks check, Python blocks execute, outputs match.

Conventions (written as HTML comments on the lines right above a fenced block; several may be
stacked, blank lines between them are allowed; they are invisible on the rendered site):

``rules`` blocks
    * A block whose first word is ``protocol``, or that is saved as a file (``<!-- file: … -->``,
      below), is a whole file: `check_text` must report no error (warnings are fine). A block
      saved as a file is checked as that file, beside the page's other ``file:`` blocks (so
      that ``use "other.rules"`` finds them); a file holding only defines is a library.
    * Any other block is a fragment, checked inside a wrapper protocol. A fragment that starts
      with ``fact``, ``define``, ``inclusion`` or ``exclusion`` is a list of items and is
      appended to the wrapper; anything else is an expression and becomes the body of
      ``inclusion X "x": …``.
    * ``<!-- facts: age: quantity 'a'; pregnant: boolean -->`` declares the facts a fragment
      uses (each part, separated by ``;``, gets ``fact`` in front of it).
    * ``<!-- expect: PR201 -->`` marks a deliberately wrong example: each listed code (comma or
      space separated) must be among the diagnostics.
    * ``<!-- excerpt-of: protocols/x.rules -->`` marks a block quoted from a file of the
      checkout: its lines must appear in that file, in order and contiguous (indentation and
      trailing spaces aside), and the file itself must check without errors.
``python`` blocks
    Run in a fresh interpreter (``PYTHONPATH`` = the checkout's ``src``), in a temporary working
    directory that holds ``protocols/`` and ``examples/`` of the checkout and every block of the
    same page marked ``<!-- file: NAME -->``. ``<!-- skip-run -->`` leaves a block out.
``text`` blocks marked ``<!-- output -->``
    Must equal what the nearest ``python`` or ``console`` block above them printed (trailing
    spaces ignored). Regenerate them all with ``python tests/test_docs_examples.py --update``.
``console`` blocks marked ``<!-- run -->``
    Each ``$ protocol-rules …`` line is run (in-process, with click's test runner) in the page's
    working directory, and the lines after it, up to the next ``$``, must equal its output. With
    ``<!-- expect: PR001 -->`` the output must show each listed code.
``json`` blocks marked ``<!-- protocol: FILE -->``
    A patient record, evaluated against FILE (a ``file:`` block of the page or a path in the
    checkout). With ``<!-- expect: PR403 -->`` it must be refused with that code; with
    ``<!-- status: eligible -->`` it must get that verdict. ``<!-- as-of: 2026-03-01 -->`` sets
    the evaluation time when the record has no ``as_of``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SRC = ROOT / "src"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<lang>[\w+-]*)[^\n]*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*(?P<key>[\w-]+)\s*(?::\s*(?P<value>.*?))?\s*-->\s*$")
_ITEM_WORDS = ("fact", "define", "inclusion", "exclusion")


@dataclass
class Block:
    """One fenced code block of a docs page, with the directives written above it."""

    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    directives: dict[str, str] = field(default_factory=dict)
    fence: str = "```"

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(DOCS).as_posix()}:{self.line}"


def parse_blocks(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, lang = match["indent"], match["fence"], match["lang"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (
            lines[j].strip().startswith(fence) and lines[j].strip().strip("`") == ""
        ):
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            j += 1
        text = "\n".join(body) + "\n"
        blocks.append(Block(page, i + 1, lang, text, _directives(lines, i), fence))
        i = j + 1
    return blocks


def _directives(lines: list[str], fence: int) -> dict[str, str]:
    found: dict[str, str] = {}
    k = fence - 1
    while k >= 0:
        text = lines[k]
        match = _DIRECTIVE.match(text)
        if match:
            found.setdefault(match["key"], (match["value"] or "").strip())
        elif text.strip():
            break
        k -= 1
    return found


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in parse_blocks(page)]


def _blocks(lang: str, predicate=lambda b: True) -> list[Block]:  # type: ignore[no-untyped-def]
    return [b for b in all_blocks() if b.lang == lang and predicate(b)]


def _params(blocks: list[Block]) -> list[object]:
    return [pytest.param(b, id=b.id) for b in blocks]


# --------------------------------------------------------------------------- rules blocks


def _first_word(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped.split()[0].rstrip(":")
    return ""


def wrap_fragment(block: Block) -> str:
    """The text `check_text` sees for a rules block (see the module docstring)."""
    text = block.text
    first = _first_word(text)
    if first == "protocol" or "file" in block.directives:
        return text
    facts = [f"fact {part.strip()}" for part in block.directives.get("facts", "").split(";")
             if part.strip()]  # fmt: skip
    head = "protocol DOCS_EXAMPLE\n" + "".join(f"{f}\n" for f in facts)
    if first in _ITEM_WORDS:
        return head + text
    return head + 'inclusion X "x":\n' + text


def _expected_codes(block: Block) -> list[str]:
    return re.findall(r"PR\d{3}", block.directives.get("expect", ""))


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("block", _params(_blocks("rules")))
def test_rules_block(block: Block, tmp_path: Path) -> None:
    from protocol_rules import check_text

    source = block.directives.get("excerpt-of")
    if source:
        whole = (ROOT / source).read_text(encoding="utf-8")
        quoted, lines = _lines(block.text), _lines(whole)
        assert any(lines[i : i + len(quoted)] == quoted for i in range(len(lines))), (
            f"{block.id} is not an excerpt of {source}: update the page"
        )
        errors = [str(d) for d in check_text(whole, source) if d.is_error]
        assert not errors, errors
        return
    text = wrap_fragment(block)
    where = block.id
    if "file" in block.directives:  # checked as the file, beside the page's other files
        where = str(_workdir(block.page, tmp_path) / block.directives["file"])
    diagnostics = check_text(text, where)
    codes = [d.code for d in diagnostics]
    expected = _expected_codes(block)
    shown = "\n".join(str(d) for d in diagnostics)
    if expected:
        missing = [c for c in expected if c not in codes]
        assert not missing, f"expected {missing} in the diagnostics of\n{text}\ngot:\n{shown}"
    else:
        errors = [d for d in diagnostics if d.is_error]
        assert not errors, f"the example has errors:\n{text}\n{shown}"


def test_docs_have_rules_blocks() -> None:
    assert len(_blocks("rules")) > 50, "the language pages should be full of examples"


def test_every_diagnostic_code_is_documented() -> None:
    from protocol_rules.diagnostics import CODES

    page = (DOCS / "diagnostics.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (PR\d{3})\b", page, re.MULTILINE))
    assert set(CODES) <= headings, f"undocumented codes: {sorted(set(CODES) - headings)}"
    assert headings <= set(CODES), f"documented codes that do not exist: {headings - set(CODES)}"


def test_every_syntax_and_type_error_example_triggers_its_code() -> None:
    """Each PR1xx-PR3xx section of the diagnostics page shows a block that triggers its code."""
    from protocol_rules.diagnostics import CODES

    blocks = parse_blocks(DOCS / "diagnostics.md")
    triggered = {code for b in blocks for code in _expected_codes(b)}
    # PR311 is reserved: this version never reports it, and docs/diagnostics.md says so.
    static = {c for c in CODES if c < "PR400" and c != "PR311"}
    assert static <= triggered, f"codes without a triggering example: {sorted(static - triggered)}"


# --------------------------------------------------------------------------- running code


def _workdir(page: Path, tmp: Path) -> Path:
    """A working directory for one page: the checkout's data and the page's `file:` blocks."""
    for name in ("protocols", "examples"):
        if (ROOT / name).exists() and not (tmp / name).exists():
            (tmp / name).symlink_to(ROOT / name)
    for block in parse_blocks(page):
        name = block.directives.get("file")
        if name:
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
    return tmp


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "100"
    env.pop("FORCE_COLOR", None)
    return env


#: Put before a block that uses Hypothesis: on a loaded machine drawing NCT04194671 patients
#: can trip the "input generation is slow" health check, which says nothing about the example.
_HYPOTHESIS_PROLOGUE = (
    "import hypothesis as _h; _h.settings.register_profile('docs', deadline=None, "
    "suppress_health_check=[_h.HealthCheck.too_slow]); _h.settings.load_profile('docs')\n"
)


def run_python(block: Block, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = block.text
    if "hypothesis" in code:
        code = _HYPOTHESIS_PROLOGUE + code
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def run_console(command: str, cwd: Path) -> str:
    """Run one ``protocol-rules …`` command line in-process, in `cwd`; stdout and stderr."""
    from click.testing import CliRunner

    from protocol_rules.cli import cli

    words = shlex.split(command)
    assert words[0] == "protocol-rules", f"only protocol-rules commands run: {command}"
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        done = CliRunner(env={"NO_COLOR": "1"}).invoke(cli, words[1:], prog_name="protocol-rules")
    finally:
        os.chdir(previous)
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return done.output


def console_commands(block: Block) -> Iterator[tuple[str, str]]:
    """(command line, expected output) for each ``$ protocol-rules`` line of a console block."""
    command: str | None = None
    output: list[str] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            if command is not None:
                yield command, "\n".join(output)
            command, output = line[2:], []
        elif command is not None:
            output.append(line)
    if command is not None:
        yield command, "\n".join(output)


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _output_block(block: Block) -> Block | None:
    """The ``<!-- output -->`` text block that follows `block` on its page, if any."""
    blocks = parse_blocks(block.page)
    index = next(i for i, b in enumerate(blocks) if b.line == block.line)
    for following in blocks[index + 1 :]:
        if following.lang in ("python", "console"):
            return None
        if "output" in following.directives:
            return following
    return None


@pytest.mark.parametrize(
    "block", _params(_blocks("python", lambda b: "skip-run" not in b.directives))
)
def test_python_block(block: Block, tmp_path: Path) -> None:
    done = run_python(block, _workdir(block.page, tmp_path))
    assert done.returncode == 0, f"{block.id} failed:\n{block.text}\n{done.stderr}"
    expected = _output_block(block)
    if expected is not None:
        assert _normalise(done.stdout) == _normalise(expected.text), (
            f"{block.id}: output differs from {expected.id}; "
            "run `python tests/test_docs_examples.py --update`"
        )


@pytest.mark.parametrize("block", _params(_blocks("console", lambda b: "run" in b.directives)))
def test_console_block(block: Block, tmp_path: Path) -> None:
    pytest.importorskip("protocol_rules.cli", reason="the CLI is not written yet")
    cwd = _workdir(block.page, tmp_path)
    printed = []
    for command, expected in console_commands(block):
        got = run_console(command, cwd)
        printed.append(got)
        assert _normalise(got) == _normalise(expected), (
            f"{block.id}: `{command}` printed\n{got}\n"
            "run `python tests/test_docs_examples.py --update`"
        )
    for code in _expected_codes(block):  # `<!-- expect: PR001 -->` on a console block
        assert any(f"[{code}]" in out for out in printed), f"{block.id} does not show {code}"


@pytest.mark.parametrize("block", _params(_blocks("json", lambda b: "protocol" in b.directives)))
def test_patient_block(block: Block, tmp_path: Path) -> None:
    from protocol_rules import PatientDataError, load_protocol

    cwd = _workdir(block.page, tmp_path)
    protocol = load_protocol(cwd / block.directives["protocol"])
    patient = json.loads(block.text)
    as_of = block.directives.get("as-of") or None
    expected = _expected_codes(block)
    if expected:
        with pytest.raises(PatientDataError) as caught:
            protocol.evaluate(patient, as_of=as_of)
        codes = [d.code for d in caught.value.diagnostics]
        assert set(expected) <= set(codes), f"{block.id}: expected {expected}, got {codes}"
        return
    result = protocol.evaluate(patient, as_of=as_of)
    if "status" in block.directives:
        assert result.status.value == block.directives["status"], block.id


# --------------------------------------------------------------------------- --update


def update_outputs() -> int:
    """Rewrite every ``<!-- output -->`` block from what its code prints today."""
    changed = 0
    for page in pages():
        blocks = parse_blocks(page)
        lines = page.read_text(encoding="utf-8").splitlines()
        replacements: list[tuple[Block, str]] = []
        with tempfile.TemporaryDirectory() as tmp:
            cwd = _workdir(page, Path(tmp))
            for block in blocks:
                if block.lang == "python" and "skip-run" not in block.directives:
                    target = _output_block(block)
                    if target is not None:
                        done = run_python(block, cwd)
                        if done.returncode != 0:
                            print(f"{block.id}: failed\n{done.stderr}", file=sys.stderr)
                            continue
                        if target.fence in done.stdout:
                            print(
                                f"{target.id}: the output holds {target.fence}; use a longer fence",
                                file=sys.stderr,
                            )
                            continue
                        replacements.append((target, done.stdout))
                elif block.lang == "console" and "run" in block.directives:
                    parts = []
                    for command, _ in console_commands(block):
                        parts.append(f"$ {command}\n{run_console(command, cwd).rstrip()}")
                    replacements.append((block, "\n".join(parts) + "\n"))
        for target, output in sorted(replacements, key=lambda r: -r[0].line):
            start = target.line  # index of the first body line
            end = start
            while lines[end].strip() != target.fence:
                end += 1
            indent = re.match(r"[ \t]*", lines[target.line - 1]).group(0)  # type: ignore[union-attr]
            new = [indent + line if line else "" for line in _normalise(output).splitlines()]
            if lines[start:end] != new:
                lines[start:end] = new
                changed += 1
        page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return changed


if __name__ == "__main__":
    if "--update" in sys.argv:
        sys.path.insert(0, str(SRC))
        print(f"{update_outputs()} output blocks updated")
    else:
        sys.exit(pytest.main([__file__, "-q"]))
