"""Stage 4's door for files: a patient record read from JSON text, or a `PatientDataError`.

`json.loads` alone fails on patient files in ways that are not about JSON syntax: nesting deep
enough to exhaust the stack (`RecursionError`), an integer longer than Python converts
(`ValueError`), a UTF-8 byte-order mark, and — silently — a key given twice, where the last
value wins. Every way of failing here is a diagnostic naming the file and the place, so that the
command line exits 1 ("bad data") and never 2 ("internal error").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from .diagnostics import Diagnostic, PatientDataError, error
from .render.safe import printable

#: Deepest nesting of arrays and objects accepted. A record needs four levels (record, series,
#: observation, quantity); the margin leaves room for extra keys a caller ignores.
MAX_DEPTH = 64
#: Longest integer accepted, in digits; longer ones are refused as too large (PR404) by name.
MAX_INT_DIGITS = 400

_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_HELP = 'a patient is a JSON object such as {"age": 54}'


class _Object(dict[str, Any]):
    """A JSON object that had a key twice; `duplicates` lists those keys."""

    duplicates: list[str]


class _HugeInt:
    """An integer literal of more than `MAX_INT_DIGITS` digits, kept as its digit count."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


def read_patient_json(text: str | bytes, path: str = "<patient>") -> Any:
    """The patient record in `text` (JSON), or `PatientDataError` saying what is wrong.

    A UTF-8 byte-order mark is accepted. Refused: text that is not JSON (PR401), nesting deeper
    than `MAX_DEPTH` (PR413), a key given twice in one object (PR412), and integers of more
    than `MAX_INT_DIGITS` digits (PR404). Whether the record is an object, and what its facts
    hold, is checked by `Protocol.evaluate`.
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PatientDataError(
                [error("PR401", f"the patient file is not UTF-8 text: {exc.reason}", None,
                       path=f"{path}:byte {exc.start}", help=_HELP)]
            ) from None  # fmt: skip
    text = text.removeprefix("\ufeff")
    too_deep = _too_deep(text, path)
    if too_deep is not None:
        raise PatientDataError([too_deep])
    flags = {"duplicates": False, "huge": False}
    try:
        data = json.loads(
            text,
            object_pairs_hook=lambda pairs: _object(pairs, flags),
            parse_int=lambda digits: _integer(digits, flags),
        )
    except json.JSONDecodeError as exc:
        raise PatientDataError(
            [error("PR401", f"the patient file is not valid JSON: {exc.msg}", None,
                   path=f"{path}:{exc.lineno}:{exc.colno}", help=_HELP)]
        ) from None  # fmt: skip
    except (ValueError, RecursionError) as exc:  # pragma: no cover - refused above
        raise PatientDataError(
            [error("PR401", f"the patient file cannot be read as JSON: {exc}", None,
                   path=path, help=_HELP)]
        ) from None  # fmt: skip
    if flags["duplicates"] or flags["huge"]:
        raise PatientDataError(list(_problems(data)))
    return data


def _too_deep(text: str, path: str) -> Diagnostic | None:
    """PR413 at the first bracket that opens level `MAX_DEPTH + 1`, if any."""
    depth = 0
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, match.start()) + 1
                column = match.start() - text.rfind("\n", 0, match.start())
                return error(
                    "PR413",
                    f"the patient record is nested more than {MAX_DEPTH} levels deep",
                    None,
                    path=f"{path}:{line}:{column}",
                    help="a patient record is an object of facts; a series is a list of "
                    'observations such as {"value": 2.1, "at": "2026-03-01T08:00:00Z"}',
                )
        elif token in "]}":
            depth = max(0, depth - 1)
    return None


def _object(pairs: list[tuple[str, Any]], flags: dict[str, bool]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    duplicates = [k for k, _ in pairs if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
    marked = _Object(pairs)
    marked.duplicates = list(dict.fromkeys(duplicates))
    flags["duplicates"] = True
    return marked


def _integer(digits: str, flags: dict[str, bool]) -> Any:
    if len(digits) <= MAX_INT_DIGITS:
        return int(digits)
    flags["huge"] = True
    return _HugeInt(len(digits.lstrip("-")))


def _problems(data: Any) -> Iterator[Diagnostic]:
    """The duplicated keys and huge integers in parsed data, with their JSON paths."""
    stack: list[tuple[Any, str]] = [(data, "$")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, _HugeInt):
            yield error(
                "PR404",
                f"the number at `{where}` has {value.digits:,} digits, too large to be a value",
                None,
                path=where,
                help="check the value and its unit",
            )
        elif isinstance(value, dict):
            for key in getattr(value, "duplicates", ()):
                shown = printable(key, newlines=False)
                yield error(
                    "PR412",
                    f"the key `{shown}` is given twice in one object",
                    None,
                    path=_child(where, key),
                    help="keep one value per key: with two, it is not clear which is meant",
                )
            stack.extend((v, _child(where, k)) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]") for i, v in reversed(list(enumerate(value))))


def _child(where: str, key: str) -> str:
    return f"{where}.{printable(key, newlines=False)}"
