"""The `use` libraries: those shipped in this folder (`use kidney` reads `kidney.rules`) and
`.rules` files beside a protocol (`use "egfr.rules"`). docs/language/libraries.md.

Between the parser and the checker: `resolve` finds, reads and parses every library a file
uses (and those they use), in dependency order; `check.check` then checks each in its own
scope. A library file holds only defines (values and functions) and `use`s. A file is found
relative to the file that uses it, must end in `.rules`, and must stay inside the protocol's
folder once symbolic links and `..` are resolved; a cycle of `use`s is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path

from attrs import frozen

from .. import ast
from ..diagnostics import Diagnostic, error
from ..parser import parse
from ..source import Source, read_text
from ..suggestions import did_you_mean

__all__ = ["Library", "Resolved", "resolve", "shipped", "shipped_text"]

SUFFIX = ".rules"


@frozen
class Library:
    """A parsed library: `key` is unique (a shipped name, or a resolved path), `label` is how
    messages and traces name it (`kidney`, `egfr.rules`), `uses` its own `use`s with the key
    each resolved to (None when it failed)."""

    key: str
    label: str
    syntax: ast.ProtocolFile
    uses: tuple[tuple[ast.Use, str | None], ...]


@frozen
class Resolved:
    """The libraries a file uses, dependencies first, and the file's own `use`s."""

    libraries: tuple[Library, ...]
    uses: tuple[tuple[ast.Use, str | None], ...]
    failed: bool = False  # some library could not be loaded (its names will be missing)


EMPTY = Resolved((), ())


@cache
def shipped() -> tuple[str, ...]:
    """The names of the libraries shipped with the package (`kidney`, …)."""
    folder = resources.files(__package__)
    return tuple(
        sorted(
            entry.name[: -len(SUFFIX)]
            for entry in folder.iterdir()
            if entry.name.endswith(SUFFIX) and entry.is_file()
        )
    )


@cache
def shipped_text(name: str) -> str:
    """The rules text of a shipped library."""
    return resources.files(__package__).joinpath(name + SUFFIX).read_text(encoding="utf-8")


@cache
def _shipped_syntax(name: str) -> tuple[ast.ProtocolFile | None, tuple[Diagnostic, ...]]:
    source = Source(f"<protocol_rules>/library/{name}{SUFFIX}", shipped_text(name))
    syntax, diagnostics = parse(source)
    return syntax, tuple(diagnostics)


def resolve(
    file: ast.ProtocolFile, folder: Path | None, path: Path | None = None
) -> tuple[Resolved, list[Diagnostic]]:
    """Load every library `file` uses. `folder` is the protocol's folder (None for a protocol
    given as text: it can then use shipped libraries only); `path` is the file itself."""
    if not any(isinstance(item, ast.Use) for item in file.items):
        return EMPTY, []
    resolver = _Resolver(folder.resolve() if folder is not None else None, folder)
    if path is not None:
        resolver.stack.append(str(path.resolve()))
    uses = resolver.uses_of(file, resolver.root, shipped_only=False)
    return Resolved(tuple(resolver.order), uses, resolver.failed), resolver.diagnostics


class _Resolver:
    def __init__(self, root: Path | None, shown: Path | None) -> None:
        self.root = root
        self.shown = shown  # the folder as the caller wrote it: messages name files like it
        self.loaded: dict[str, Library | None] = {}
        self.order: list[Library] = []
        self.stack: list[str] = []
        self.diagnostics: list[Diagnostic] = []
        self.failed = False

    def uses_of(
        self, file: ast.ProtocolFile, here: Path | None, shipped_only: bool
    ) -> tuple[tuple[ast.Use, str | None], ...]:
        out = []
        for item in file.items:
            if isinstance(item, ast.Use):
                key = self._load(item, here, shipped_only)
                self.failed = self.failed or key is None
                out.append((item, key))
        return tuple(out)

    def _refuse(self, code: str, message: str, use: ast.Use, **kw: object) -> None:
        self.diagnostics.append(error(code, message, use.span, **kw))

    def _load(self, use: ast.Use, here: Path | None, shipped_only: bool) -> str | None:
        if use.is_file:
            found = self._file(use, here, shipped_only)
            if found is None:
                return None
            key, label, source, folder = found
        else:
            if use.name not in shipped():
                names = shipped()
                self._refuse(
                    "PR231",
                    f"unknown library `{use.name}`",
                    use,
                    label="not a library shipped with protocol-rules",
                    help=did_you_mean(use.name, names)
                    or "the shipped libraries are "
                    + ", ".join(f"`{n}`" for n in names)
                    + '; a library of your own is a file: `use "mine.rules"`',
                )
                return None
            key, label, source, folder = use.name, use.name, None, None
        if key in self.stack:
            chain = " -> ".join(f"`{Path(k).name}`" for k in [*self.stack[1:], key])
            self._refuse(
                "PR234",
                f"library files use each other in a cycle: {chain}",
                use,
                help="move what both need into a third file that uses neither",
            )
            return None
        if key in self.loaded:
            return key if self.loaded[key] is not None else None
        self.stack.append(key)
        try:
            library = self._parse(use, key, label, source, folder)
        finally:
            self.stack.pop()
        self.loaded[key] = library
        if library is None:
            return None
        self.order.append(library)
        return key

    def _file(
        self, use: ast.Use, here: Path | None, shipped_only: bool
    ) -> tuple[str, str, Source, Path] | None:
        name = use.name
        if shipped_only or here is None or self.root is None:
            why = (
                "a shipped library can use only shipped libraries"
                if shipped_only
                else "this protocol was given as text, so it has no folder to find files in"
            )
            self._refuse(
                "PR233",
                f'cannot use the file "{name}": {why}',
                use,
                help="load the protocol from its file (`load_protocol(path)`), or pass "
                "`folder=` to `parse_protocol`",
            )
            return None
        if not name.endswith(SUFFIX):
            self._refuse(
                "PR233",
                f'a library file ends in `{SUFFIX}`, and "{name}" does not',
                use,
                help=f'rename the file, e.g. `use "{Path(name).stem}{SUFFIX}"`',
            )
            return None
        path = (here / name).resolve()
        if not path.is_relative_to(self.root):
            self._refuse(
                "PR233",
                f'"{name}" is outside the protocol\'s folder',
                use,
                label="resolved outside the folder",
                help="copy the library into the protocol's folder (or a folder inside it)",
            )
            return None
        if not path.is_file():
            nearby = (
                sorted(p.name for p in path.parent.glob(f"*{SUFFIX}"))
                if path.parent.is_dir()
                else []
            )
            self._refuse(
                "PR231",
                f'no library file "{name}" beside the protocol',
                use,
                help=did_you_mean(path.name, nearby) or "check the file name and its folder",
            )
            return None
        try:
            text = read_text(path)  # as every rules file is read: BOM, any line ending
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._refuse("PR231", f'cannot read "{name}": {reason}', use)
            return None
        label = path.relative_to(self.root).as_posix()
        shown = str(self.shown / label) if self.shown is not None else str(path)
        return str(path), label, Source(shown, text), path.parent

    def _parse(
        self, use: ast.Use, key: str, label: str, source: Source | None, folder: Path | None
    ) -> Library | None:
        if source is None:
            syntax, diagnostics = _shipped_syntax(key)
        else:
            syntax, found = parse(source)
            diagnostics = tuple(found)
        if syntax is None or any(d.is_error for d in diagnostics):
            self.diagnostics += diagnostics
            return None
        others = _not_library_items(syntax)
        if others:
            self._refuse(
                "PR235",
                f"`{label}` is not a library: it holds {others}",
                use,
                help="a library holds only `define`s and `use`s; declare facts and "
                "criteria in the protocol",
            )
        uses = self.uses_of(syntax, folder, shipped_only=source is None)
        return Library(key, label, syntax, uses)


def _not_library_items(syntax: ast.ProtocolFile) -> str:
    kinds: dict[str, None] = {}
    if syntax.header is not None:
        kinds["a protocol header"] = None
    for item in syntax.items:
        if isinstance(item, ast.Fact):
            kinds["facts"] = None
        elif isinstance(item, ast.Criterion):
            kinds["criteria"] = None
    return _words(kinds)


def _words(items: Iterable[str]) -> str:
    words = list(items)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]
