"""One document, understood: its syntax tree, its diagnostics and an index of its names.

`analyse` parses a document once, checks it exactly as ``protocol-rules check`` does (the same
codes, spans, help and related places), and records every declaration (facts, defines,
functions and their parameters, the choices of `one of` facts, criteria, metadata) and every use
of a name, resolved the way the checker resolves it: a parameter inside its function, then a
fact or define, then a choice. Functions of used libraries (`use kidney`, `use "egfr.rules"`)
are indexed from their own files, so that a definition can be opened there.

Nothing here knows about LSP: offsets are character offsets into the document's text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from attrs import define, field, frozen

from .. import ast
from ..diagnostics import Diagnostic, sort_key
from ..parser import parse
from ..source import Source, Span

__all__ = ["Analysis", "Occurrence", "Symbol", "analyse"]

FACT = "fact"
DEFINE = "define"
FUNCTION = "function"
PARAMETER = "parameter"
CHOICE = "choice"
CRITERION = "criterion"
METADATA = "metadata"
LIBRARY = "library"
BUILTIN = "builtin"


@frozen
class Symbol:
    """A declared name: what it is, where it is declared, and the node that declares it.

    `key` is unique in a document (`fact:age`, `function:kidney:bmi`, `param:bmi:weight`);
    `path` is the file that declares it when that is not the document (a used library);
    `owner` is the function of a parameter or the fact of a choice; `origin` the library.
    """

    kind: str
    name: str
    key: str
    span: Span | None
    node: Any = field(eq=False, repr=False)
    path: str | None = None
    owner: str | None = None
    origin: str | None = None


@frozen
class Occurrence:
    """A name written in the document, `[start, end)`, and the symbol it stands for."""

    start: int
    end: int
    key: str
    declaration: bool = False


@define
class Analysis:
    """A document parsed, checked and indexed. `syntax` is None when it does not parse."""

    uri: str
    version: int | None
    text: str
    source: Source
    syntax: ast.ProtocolFile | None
    diagnostics: list[Diagnostic]
    symbols: dict[str, Symbol] = field(factory=dict)
    values: dict[str, str] = field(factory=dict)  # fact and define names -> key
    functions: dict[str, str] = field(factory=dict)  # function names -> key
    choices: dict[str, list[str]] = field(factory=dict)  # choice names -> keys (one per fact)
    occurrences: list[Occurrence] = field(factory=list)  # in document order
    libraries: dict[str, str] = field(factory=dict)  # `use` name -> path of its file

    def at(self, offset: int) -> Occurrence | None:
        """The occurrence holding `offset` (its end included, where a cursor sits after it)."""
        for occurrence in self.occurrences:
            if occurrence.start <= offset <= occurrence.end:
                return occurrence
            if occurrence.start > offset:
                break
        return None

    def references(self, key: str) -> Iterator[Occurrence]:
        return (o for o in self.occurrences if o.key == key)

    def fact_of_choice_context(self, name: str) -> Symbol | None:
        """The fact called `name` when it is a `one of` fact (or a series or set of one)."""
        key = self.values.get(name)
        symbol = self.symbols.get(key) if key else None
        if symbol is None or symbol.kind != FACT:
            return None
        return symbol if choice_type(symbol.node.type) is not None else None


def choice_type(node: ast.TypeExpr) -> ast.ChoiceType | None:
    """The `one of` of a fact type, also inside `series of` and `set of`."""
    while isinstance(node, ast.SeriesType | ast.SetType):
        node = node.element
    return node if isinstance(node, ast.ChoiceType) else None


# --------------------------------------------------------------------------- analysing


def analyse(
    uri: str,
    text: str,
    path: str | None,
    version: int | None = None,
    *,
    check: bool = True,
    open_texts: dict[str, str] | None = None,
    parser: Any = None,
) -> Analysis:
    """Parse `text` (the document at `path`, when it is a file), check it and index it.

    With `check` false only the syntax diagnostics are kept (the index does not need units).
    `open_texts` maps file paths to the text of documents open in the editor, which win over
    the disk for used library files. `parser` (an `incremental.IncrementalParser`) reuses the
    trees of the items an edit did not touch.
    """
    name = path or uri
    source = Source(name, text)
    syntax, diagnostics = parser.parse(source) if parser is not None else parse(source)
    analysis = Analysis(uri, version, text, source, syntax, list(diagnostics))
    if syntax is None:
        return analysis
    if check:
        from ..protocol import _check

        # the parser's own (a misspelt duration word it recovered from, PR110) and the checks'
        checked = _check(syntax, name, None)[1]
        analysis.diagnostics = sorted([*diagnostics, *checked], key=sort_key)
    _Indexer(analysis, path, open_texts or {}).run(syntax)
    return analysis


class _Indexer:
    def __init__(self, analysis: Analysis, path: str | None, open_texts: dict[str, str]) -> None:
        self.a = analysis
        self.folder = Path(path).parent if path else None
        self.open_texts = open_texts

    # -- declarations

    def add(self, symbol: Symbol, declare: bool = True) -> None:
        self.a.symbols.setdefault(symbol.key, symbol)
        if declare and symbol.span is not None and symbol.path is None:
            self.a.occurrences.append(
                Occurrence(symbol.span.start, symbol.span.end, symbol.key, True)
            )

    def run(self, syntax: ast.ProtocolFile) -> None:
        if syntax.header is not None:
            for meta in syntax.header.meta:
                span = Span(meta.span.source, meta.span.start, meta.span.start + len(meta.key))
                self.add(Symbol(METADATA, meta.key, f"meta:{meta.key}", span, meta))
        for item in syntax.items:
            if isinstance(item, ast.Use):
                self.use(item)
        for item in syntax.items:
            match item:
                case ast.Fact():
                    self.fact(item)
                case ast.Define(params=None):
                    key = f"define:{item.name}"
                    self.add(Symbol(DEFINE, item.name, key, item.name_span, item))
                    self.a.values.setdefault(item.name, key)
                case ast.Define():
                    key = f"function:{item.name}"
                    self.add(Symbol(FUNCTION, item.name, key, item.name_span, item))
                    self.a.functions[item.name] = key  # the file's own win over a library's
                case ast.Criterion():
                    key = f"criterion:{item.id}"
                    self.add(Symbol(CRITERION, item.id, key, item.id_span, item))
        for item in syntax.items:
            match item:
                case ast.Define():
                    self.define_body(item)
                case ast.Criterion():
                    self.expression(item.expr, {})
        self.a.occurrences.sort(key=lambda o: (o.start, not o.declaration))

    def fact(self, item: ast.Fact) -> None:
        key = f"fact:{item.name}"
        self.add(Symbol(FACT, item.name, key, item.name_span, item))
        self.a.values.setdefault(item.name, key)
        choices = choice_type(item.type)
        if choices is None:
            return
        for name, span in zip(choices.choices, choices.choice_spans, strict=True):
            choice_key = f"choice:{item.name}:{name}"
            self.add(Symbol(CHOICE, name, choice_key, span, item, owner=item.name))
            keys = self.a.choices.setdefault(name, [])
            if choice_key not in keys:
                keys.append(choice_key)

    def define_body(self, item: ast.Define) -> None:
        scope: dict[str, str] = {}
        for param in item.params or ():
            key = f"param:{item.name}:{param.name}"
            self.add(Symbol(PARAMETER, param.name, key, param.name_span, param, owner=item.name))
            scope[param.name] = key
        self.expression(item.expr, scope)

    # -- uses

    def expression(self, node: ast.Expr, scope: dict[str, str]) -> None:
        stack = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, ast.Name):
                key = self.resolve(current.name, scope)
                if key is not None:
                    span = current.span
                    self.a.occurrences.append(Occurrence(span.start, span.end, key))
            elif isinstance(current, ast.Call) and current.name_span is not None:
                key = self.a.functions.get(current.function)
                if key is None and current.function in _builtins():
                    key = f"builtin:{current.function}"
                    self.a.symbols.setdefault(
                        key, Symbol(BUILTIN, current.function, key, None, None)
                    )
                if key is not None:
                    span = current.name_span
                    self.a.occurrences.append(Occurrence(span.start, span.end, key))
            stack.extend(ast.children(current))

    def resolve(self, name: str, scope: dict[str, str]) -> str | None:
        if name in scope:
            return scope[name]
        if name in self.a.values:
            return self.a.values[name]
        keys = self.a.choices.get(name)
        return keys[0] if keys else None

    def use(self, item: ast.Use) -> None:
        found = self.library_file(item)
        if found is None:
            return
        path, text = found
        key = f"library:{item.name}"
        self.add(Symbol(LIBRARY, item.name, key, None, item, path=path))
        self.a.libraries[item.name] = path
        span = item.span
        self.a.occurrences.append(Occurrence(span.start, span.end, key))
        syntax = _parse_library(path, text)
        if syntax is None:
            return
        for node in syntax.items:
            if not isinstance(node, ast.Define) or node.name.startswith("_"):
                continue
            kind = DEFINE if node.params is None else FUNCTION
            key = f"{kind}:{item.name}:{node.name}"
            symbol = Symbol(kind, node.name, key, node.name_span, node, path, None, item.name)
            self.add(symbol, declare=False)
            table = self.a.values if kind == DEFINE else self.a.functions
            table.setdefault(node.name, key)

    def library_file(self, item: ast.Use) -> tuple[str, str] | None:
        if not item.is_file:
            return _shipped(item.name)
        if self.folder is None or not item.name.endswith(".rules"):
            return None
        path = (self.folder / item.name).resolve()
        if not path.is_relative_to(self.folder.resolve()):
            return None  # the checker says why (PR233)
        name = str(path)
        if name in self.open_texts:
            return name, self.open_texts[name]
        try:
            return name, path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None


@cache
def _builtins() -> frozenset[str]:
    from .knowledge import BUILTINS

    return frozenset(BUILTINS)


@cache
def _shipped(name: str) -> tuple[str, str] | None:
    """The file and text of a shipped library (`kidney`), or None if there is none."""
    from ..library import shipped, shipped_text

    if name not in shipped():
        return None
    text = shipped_text(name)
    entry = resources.files("protocol_rules.library").joinpath(name + ".rules")
    path = str(entry) if isinstance(entry, Path) else f"<protocol_rules>/library/{name}.rules"
    return path, text


_library_cache: dict[str, tuple[str, ast.ProtocolFile | None]] = {}


def _parse_library(path: str, text: str) -> ast.ProtocolFile | None:
    """A library file's syntax tree, parsed again only when its text changed."""
    cached = _library_cache.get(path)
    if cached is not None and cached[0] == text:
        return cached[1]
    syntax, _ = parse(Source(path, text))
    _library_cache[path] = (text, syntax)
    return syntax


# --------------------------------------------------------------------------- while typing

_DECLARED = re.compile(r"^[ \t]*(fact|define)[ \t]+([a-z_][A-Za-z0-9_]*)", re.MULTILINE)


def declared_names(text: str) -> Iterator[tuple[str, str]]:
    """(kind, name) of every `fact` and `define` of a text that may not parse while typing."""
    for match in _DECLARED.finditer(text):
        yield match.group(1), match.group(2)
