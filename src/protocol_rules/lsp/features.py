"""The editor's questions, answered from an `Analysis`: LSP values built with lsprotocol.

Diagnostics (the checker's, with help, notes and related places), hover, completion,
definitions and references, rename, the outline, semantic tokens, formatting and quick fixes.
Each function is pure: an analysis (and the current text) in, LSP values out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from lsprotocol import types as t

from .. import ast
from ..diagnostics import Diagnostic
from .incremental import common_prefix, common_suffix
from .index import (
    BUILTIN,
    CHOICE,
    CRITERION,
    DEFINE,
    FACT,
    FUNCTION,
    LIBRARY,
    METADATA,
    PARAMETER,
    Analysis,
    Symbol,
    choice_type,
    declared_names,
)
from .knowledge import BUILTINS, DURATION_WORDS, KEYWORDS_ALL, UNITS
from .text import Lines, unit_at, word_at

SOURCE = "protocol-rules"

# --------------------------------------------------------------------------- positions


class Positions:
    """Converts offsets and spans to LSP ranges, and LSP positions to offsets.

    `text` is the document as the editor has it now (positions in requests are in it); the
    analysis may be of an older text (the worker has not caught up yet, or the newest text does
    not parse). Offsets into the analysed text are then moved into the current one: those before
    the part that changed stay, those after it move by the change in length.
    """

    def __init__(
        self, analysis: Analysis, encoding: str = "utf-16", text: str | None = None
    ) -> None:
        self.analysis = analysis
        self.encoding = encoding
        self.lines = Lines(analysis.text if text is None else text, encoding)
        old = analysis.text
        self.current = text is None or text == old
        self._prefix = self._unchanged_from = self._delta = 0
        if text is not None and not self.current:
            self._prefix = common_prefix(old, text)
            suffix = common_suffix(old, text, min(len(old), len(text)) - self._prefix)
            self._unchanged_from = len(old) - suffix  # old[unchanged_from:] is text's end
            self._delta = len(text) - len(old)
        self._others: dict[str, Lines] = {}

    def moved(self, offset: int, end: bool = False) -> int | None:
        """An offset into the analysed text as one into the current text; None when it lies in
        the part that changed. At a pure insertion a start goes after it, an end before it."""
        if self.current:
            return offset
        before = offset <= self._prefix
        after = offset >= self._unchanged_from
        if after and not (end and before):
            return offset + self._delta
        return offset if before else None

    def range(self, start: int, end: int, text_lines: Lines | None = None) -> t.Range:
        """The range of offsets into the current text (or into `text_lines`)."""
        lines = text_lines or self.lines
        a, b = lines.position(start), lines.position(end)
        return t.Range(t.Position(*a), t.Position(*b))

    def doc_range(self, start: int, end: int) -> t.Range:
        """The range, in the current text, of offsets into the analysed text (spans of items
        and declarations); a bound inside the part that changed goes to that part's edge."""
        a, b = self.moved(start), self.moved(end, end=True)
        a = self._prefix if a is None else a
        b = self._unchanged_from + self._delta if b is None else b
        return self.range(a, max(a, b))

    def exact_range(self, start: int, end: int) -> t.Range | None:
        """The range, in the current text, of a name in the analysed text; None when the name
        lies in the part that changed (it may not be there any more)."""
        a, b = self.moved(start), self.moved(end, end=True)
        if a is None or b is None or b < a:
            return None
        return self.range(a, b)

    def of_span(self, span) -> t.Range:  # type: ignore[no-untyped-def]
        """The range of a span of the document or of any other source.

        A span of the document may hold an earlier `Source` of it (an item the incremental
        parser kept): its offsets are those of the analysed text.
        """
        if span.source is self.analysis.source or span.source.name == self.analysis.source.name:
            return self.doc_range(span.start, span.end)
        lines = self._others.get(span.source.name)
        if lines is None or lines.text != span.source.text:
            lines = self._others[span.source.name] = Lines(span.source.text, self.encoding)
        return self.range(span.start, span.end, lines)

    def offset(self, position: t.Position) -> int:
        return self.lines.offset(position.line, position.character)

    def location(self, symbol: Symbol) -> t.Location | None:
        if symbol.kind == LIBRARY:
            start = t.Position(0, 0)
            return t.Location(file_uri(symbol.path or ""), t.Range(start, start))
        if symbol.span is None:
            return None
        uri = file_uri(symbol.path) if symbol.path else self.analysis.uri
        return t.Location(uri, self.of_span(symbol.span))


def file_uri(path: str) -> str:
    return Path(path).as_uri() if Path(path).is_absolute() else path


# --------------------------------------------------------------------------- diagnostics

_UNNECESSARY = {"PR209", "PR210", "PR239"}


def diagnostics(analysis: Analysis, positions: Positions) -> list[t.Diagnostic]:
    """The checker's diagnostics as LSP diagnostics, for the document itself.

    A diagnostic inside a used library file is shown on the `use` line that brought it, with
    the real place as related information.
    """
    out = []
    for d in analysis.diagnostics:
        out.append(_diagnostic(d, analysis, positions))
    return out


def _diagnostic(d: Diagnostic, analysis: Analysis, positions: Positions) -> t.Diagnostic:
    lines = [d.message]
    if d.label and d.label not in d.message:
        lines[0] += f" ({d.label})"
    lines += [f"note: {note}" for note in d.notes]
    if d.help:
        lines.append(f"help: {d.help}")
    related = [
        t.DiagnosticRelatedInformation(_location(r.span, analysis, positions), r.message)
        for r in getattr(d, "related", ())
    ]
    span = d.span
    if span is None:
        where = t.Range(t.Position(0, 0), t.Position(0, 0))
    elif _in_document(span, analysis):
        where = positions.of_span(span)
    else:  # inside a used library: point at the `use`, and relate the real place
        where = _use_range(span.source.name, analysis, positions)
        related.insert(0, t.DiagnosticRelatedInformation(_location(span, analysis, positions),
                                                         f"{d.code} here"))  # fmt: skip
        lines[0] = f"in {Path(span.source.name).name}:{span.line}:{span.column}: {lines[0]}"
    return t.Diagnostic(
        range=where,
        message="\n".join(lines),
        severity=t.DiagnosticSeverity.Error if d.is_error else t.DiagnosticSeverity.Warning,
        code=d.code,
        source=SOURCE,
        related_information=related or None,
        tags=[t.DiagnosticTag.Unnecessary] if d.code in _UNNECESSARY else None,
    )


def _in_document(span, analysis: Analysis) -> bool:  # type: ignore[no-untyped-def]
    return span.source is analysis.source or span.source.name == analysis.source.name


def _location(span, analysis: Analysis, positions: Positions) -> t.Location:  # type: ignore[no-untyped-def]
    if _in_document(span, analysis):
        return t.Location(analysis.uri, positions.of_span(span))
    return t.Location(file_uri(span.source.name), positions.of_span(span))


def _use_range(name: str, analysis: Analysis, positions: Positions) -> t.Range:
    syntax = analysis.syntax
    uses = [i for i in syntax.items if isinstance(i, ast.Use)] if syntax else []
    for use in uses:
        path = analysis.libraries.get(use.name, "")
        if path and (Path(path).name == Path(name).name or name.endswith(use.name + ".rules")):
            return positions.of_span(use.span)
    if uses:
        return positions.of_span(uses[0].span)
    return t.Range(t.Position(0, 0), t.Position(0, 0))


# --------------------------------------------------------------------------- hover


def hover(analysis: Analysis, text: str, offset: int, positions: Positions) -> t.Hover | None:
    """What the name (or unit) under the cursor is, in Markdown."""
    unit = unit_at(text, offset)
    if unit is not None:
        start, end, code = unit
        return _hover(unit_markdown(code), positions.range(start - 1, end + 1))
    symbol, where = symbol_at(analysis, text, offset)
    if symbol is None or where is None:
        return None
    return _hover(symbol_markdown(symbol, analysis), positions.range(*where))


def _hover(markdown: str, where: t.Range) -> t.Hover:
    return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, markdown), where)


def symbol_at(
    analysis: Analysis, text: str, offset: int
) -> tuple[Symbol | None, tuple[int, int] | None]:
    """The symbol under the cursor and the range of its name there.

    The index is used when it is of the current text; while the text does not parse, the name
    under the cursor is looked up by name.
    """
    if analysis.text == text and analysis.syntax is not None:
        occurrence = analysis.at(offset)
        if occurrence is not None:
            return analysis.symbols.get(occurrence.key), (occurrence.start, occurrence.end)
    found = word_at(text, offset)
    if found is None:
        return None, None
    start, end, word = found
    calls = text[end:].lstrip().startswith("(")
    key = (analysis.functions.get(word) if calls else None) or analysis.values.get(word)
    if key is None and word in analysis.choices:
        key = analysis.choices[word][0]
    if key is None and calls and word in BUILTINS:
        return Symbol(BUILTIN, word, f"builtin:{word}", None, None), (start, end)
    if key is None:
        key = f"criterion:{word}" if f"criterion:{word}" in analysis.symbols else None
    symbol = analysis.symbols.get(key) if key else None
    return symbol, (start, end) if symbol else None


def _code(text: str) -> str:
    return f"```rules\n{text}\n```"


def _declaration_text(node) -> str:  # type: ignore[no-untyped-def]
    text = node.span.text
    lines = text.splitlines()
    if len(lines) > 12:
        lines = [*lines[:12], "  …"]
    return "\n".join(lines)


def type_text(node: ast.TypeExpr | None) -> str:
    return node.span.text if node is not None and node.span is not None else ""


def signature(define: ast.Define) -> str:
    """`bmi(weight: quantity 'kg', height: quantity 'm'): quantity 'kg/m2'`."""
    params = ", ".join(f"{p.name}: {type_text(p.type)}" for p in define.params or ())
    result = f": {type_text(define.type)}" if define.type is not None else ""
    return f"{define.name}({params}){result}"


def symbol_markdown(symbol: Symbol, analysis: Analysis) -> str:
    """The hover text of a symbol."""
    node = symbol.node
    match symbol.kind:
        case "fact":
            parts = [_code(_declaration_text(node)), _fact_summary(node)]
            if node.description:
                parts.append(node.description)
            return "\n\n".join(p for p in parts if p)
        case "define":
            origin = f" · from `use {symbol.origin}`" if symbol.origin else ""
            parts = [_code(_declaration_text(node)), f"*define*{origin}"]
            if node.note:
                parts.append(node.note)
            return "\n\n".join(parts)
        case "function":
            origin = f" · from `use {symbol.origin}`" if symbol.origin else ""
            parts = [_code(signature(node)), f"*function*{origin}"]
            if node.note:
                parts.append(node.note)
            return "\n\n".join(parts)
        case "builtin":
            builtin = BUILTINS[symbol.name]
            return f"{_code(builtin.signature)}\n\n*built-in* — {builtin.doc}"
        case "parameter":
            declared = _code(f"{node.name}: {type_text(node.type)}")
            return f"{declared}\n\n*parameter of* `{symbol.owner}(…)`"
        case "choice":
            owners = [analysis.symbols[k].owner for k in analysis.choices.get(symbol.name, ())]
            of = ", ".join(f"`{o}`" for o in owners if o)
            return f"{_code(symbol.name)}\n\n*choice of* {of}"
        case "criterion":
            parts = [f"**{node.kind.value} {node.id}**", f"> {node.text}"]
            if node.note:
                parts.append(f"*note:* {node.note}")
            return "\n\n".join(parts)
        case "metadata":
            return f"*metadata* `{node.key}`: {node.value}"
        case "library":
            return f"*library* `{symbol.name}` — `{symbol.path}`"
    return f"`{symbol.name}`"


def _fact_summary(node: ast.Fact) -> str:
    facts = []
    element = node.type
    kind = ""
    while isinstance(element, ast.SeriesType | ast.SetType):
        kind += "series of " if isinstance(element, ast.SeriesType) else "set of "
        element = element.element
    if isinstance(element, ast.QuantityType):
        facts.append(
            f"*fact* · {kind}quantity in `'{element.unit}'` — {unit_meaning(element.unit)}"
        )
    else:
        facts.append(f"*fact* · {kind}{type_text(element).split(' ')[0]}")
    if node.range is not None:
        unit = f" '{element.unit}'" if isinstance(element, ast.QuantityType) else ""
        facts.append(f"range {node.range.low:g} to {node.range.high:g}{unit}")
    if node.molar_mass is not None:
        facts.append(f"molar mass {node.molar_mass.value:g} '{node.molar_mass.unit}'")
    if node.past is not None:
        facts.append("past (a date after `as_of` is refused)")
    return " · ".join(facts)


def unit_meaning(code: str) -> str:
    """What a UCUM unit means, in words: from the table of common units, else its dimension
    when the units library is already loaded (hover never waits for it)."""
    if code in UNITS:
        return UNITS[code]
    from .. import units

    if getattr(units, "_registry", None) is None:
        return "a UCUM unit (its details appear once the units library has loaded)"
    try:
        return f"a UCUM unit of dimension {units.dimension(code)}"
    except Exception:  # an invalid unit: the diagnostic says why
        return "not a valid UCUM unit"


def unit_markdown(code: str) -> str:
    return f"`'{code}'` — {unit_meaning(code)}"


# --------------------------------------------------------------------------- completion

_TYPE_CONTEXT = re.compile(r"^\s*fact\s+\w+\s*:\s*(?:(?:series|set)\s+of\s+)?\w*$")
_PARAM_TYPE = re.compile(r"(?:\(|,)\s*\w+\s*:\s*\w*$")
_CHOICE_SET = re.compile(
    r"\b([a-z_]\w*)\s+(?:not\s+)?(?:in|contains\s+(?:any|all)\s+of)\s*\{[^{}]*$"
)
_CHOICE_COMPARE = re.compile(r"\b([a-z_]\w*)\s*(?:!?=|contains)\s*\w*$")
_AFTER_NUMBER = re.compile(r"\b\d[\d_]*(?:\.\d+)?\s+\w*$")
_ITEM = re.compile(r"^[ \t]*(?:protocol|fact|define|inclusion|exclusion|use)\b", re.MULTILINE)
_TYPES = ("boolean", "integer", "number", "quantity ''", "date", "datetime", "text", "one of ",
          "series of ", "set of ", "date or never")  # fmt: skip


def completion(
    analysis: Analysis, text: str, offset: int, positions: Positions
) -> t.CompletionList:
    """Completions at `offset`: units in quotes, choices of a `one of`, types, names, words."""
    unit = unit_at(text, offset)
    if unit is not None:
        start = unit[0]
        where = positions.range(start, offset)
        return t.CompletionList(False, [_unit_item(code, where) for code in UNITS])
    line_start = text.rfind("\n", 0, offset) + 1
    line = text[line_start:offset]
    if _in_text_or_comment(line):
        return t.CompletionList(False, [])
    if _TYPE_CONTEXT.match(line) or _PARAM_TYPE.search(line):
        return t.CompletionList(False, [_keyword(w, "type") for w in _TYPES])
    item_start = max((m.start() for m in _ITEM.finditer(text, 0, offset)), default=0)
    before = text[item_start:offset]
    match = _CHOICE_SET.search(before) or _CHOICE_COMPARE.search(before)
    if match is not None:
        fact = analysis.fact_of_choice_context(match.group(1))
        if fact is not None:
            node = choice_type(fact.node.type)
            assert node is not None
            return t.CompletionList(False, [_choice_item(c, fact.name) for c in node.choices])
    items: list[t.CompletionItem] = []
    if _AFTER_NUMBER.search(line):
        items += [_keyword(w, "duration", "0") for w in DURATION_WORDS]
    items += _names(analysis, text)
    items += [_keyword(w, "keyword") for w in KEYWORDS_ALL]
    return t.CompletionList(False, items)


def _in_text_or_comment(line: str) -> bool:
    quotes = 0
    for index, char in enumerate(line):
        if char == '"' and (index == 0 or line[index - 1] != "\\"):
            quotes += 1
        elif char == "#" and quotes % 2 == 0:
            return True
    return quotes % 2 == 1


def _names(analysis: Analysis, text: str) -> Iterable[t.CompletionItem]:
    seen: set[str] = set()
    for name, key in analysis.values.items():
        symbol = analysis.symbols[key]
        seen.add(name)
        yield _symbol_item(symbol)
    for name, key in analysis.functions.items():
        seen.add(name + "()")
        yield _symbol_item(analysis.symbols[key])
    for kind, name in declared_names(text):  # declared since the last time the text parsed
        if name not in seen:
            yield t.CompletionItem(
                name,
                kind=t.CompletionItemKind.Field
                if kind == "fact"
                else t.CompletionItemKind.Constant,
                detail=kind,
                sort_text="1" + name,
            )
    for name, builtin in BUILTINS.items():
        if name + "()" not in seen:
            yield t.CompletionItem(
                name,
                kind=t.CompletionItemKind.Function,
                detail=builtin.signature,
                documentation=builtin.doc,
                insert_text=f"{name}($1)",
                insert_text_format=t.InsertTextFormat.Snippet,
                sort_text="2" + name,
            )


_KINDS = {
    FACT: t.CompletionItemKind.Field,
    DEFINE: t.CompletionItemKind.Constant,
    FUNCTION: t.CompletionItemKind.Function,
}


def _symbol_item(symbol: Symbol) -> t.CompletionItem:
    node = symbol.node
    if symbol.kind == FUNCTION:
        origin = f" (use {symbol.origin})" if symbol.origin else ""
        return t.CompletionItem(
            symbol.name,
            kind=t.CompletionItemKind.Function,
            detail=signature(node) + origin,
            documentation=t.MarkupContent(t.MarkupKind.Markdown, node.note or ""),
            insert_text=f"{symbol.name}($1)",
            insert_text_format=t.InsertTextFormat.Snippet,
            sort_text="1" + symbol.name,
        )
    if symbol.kind == FACT:
        detail = type_text(node.type)
        documentation = node.description
    else:
        detail = "define" + (f" (use {symbol.origin})" if symbol.origin else "")
        documentation = node.note
    return t.CompletionItem(
        symbol.name,
        kind=_KINDS.get(symbol.kind, t.CompletionItemKind.Variable),
        detail=detail,
        documentation=documentation,
        sort_text="1" + symbol.name,
    )


def _choice_item(choice: str, fact: str) -> t.CompletionItem:
    return t.CompletionItem(
        choice, kind=t.CompletionItemKind.EnumMember, detail=f"choice of {fact}", sort_text="0"
    )


def _keyword(word: str, detail: str, rank: str = "3") -> t.CompletionItem:
    return t.CompletionItem(
        word.strip(), kind=t.CompletionItemKind.Keyword, detail=detail, sort_text=rank + word
    )


def _unit_item(code: str, where: t.Range) -> t.CompletionItem:
    return t.CompletionItem(
        code,
        kind=t.CompletionItemKind.Unit,
        detail=UNITS[code],
        text_edit=t.TextEdit(where, code),
        filter_text=code,
    )


# --------------------------------------------------------------------------- navigation


def definition(
    analysis: Analysis, text: str, offset: int, positions: Positions
) -> list[t.Location]:
    symbol, _ = symbol_at(analysis, text, offset)
    if symbol is None:
        return []
    if symbol.kind == CHOICE:
        symbols = [analysis.symbols[k] for k in analysis.choices.get(symbol.name, ())]
    else:
        symbols = [symbol]
    return [loc for s in symbols if (loc := positions.location(s)) is not None]


def references(
    analysis: Analysis, text: str, offset: int, positions: Positions, declaration: bool
) -> list[t.Location]:
    symbol, _ = symbol_at(analysis, text, offset)
    if symbol is None:
        return []
    out = []
    if declaration and symbol.path is not None and symbol.kind != LIBRARY:
        location = positions.location(symbol)
        if location is not None:
            out.append(location)
    for occurrence in analysis.references(symbol.key):
        if occurrence.declaration and not declaration:
            continue
        where = positions.exact_range(occurrence.start, occurrence.end)
        if where is not None:
            out.append(t.Location(analysis.uri, where))
    return out


def rename(
    analysis: Analysis, text: str, offset: int, new_name: str, positions: Positions
) -> t.WorkspaceEdit | None:
    """Rename a fact, define, function or parameter of the document, everywhere it is used."""
    symbol, _ = symbol_at(analysis, text, offset)
    if symbol is None or symbol.path is not None or symbol.kind in (BUILTIN, LIBRARY, METADATA):
        return None
    places = [positions.exact_range(o.start, o.end) for o in analysis.references(symbol.key)]
    if None in places:  # a use in the part being edited: renaming could miss or break it
        return None
    edits = [t.TextEdit(where, new_name) for where in places if where is not None]
    return t.WorkspaceEdit(changes={analysis.uri: edits})


def highlights(
    analysis: Analysis, text: str, offset: int, positions: Positions
) -> list[t.DocumentHighlight]:
    """Every place in the document of the name under the cursor (its declaration as a write)."""
    symbol, _ = symbol_at(analysis, text, offset)
    if symbol is None:
        return []
    out = []
    for o in analysis.references(symbol.key):
        where = positions.exact_range(o.start, o.end)
        if where is not None:
            kind = t.DocumentHighlightKind.Write if o.declaration else t.DocumentHighlightKind.Read
            out.append(t.DocumentHighlight(where, kind))
    return out


_HIDDEN = re.compile(r"\"[^\"\n]*(?:\"|$)|'[^'\n]*(?:'|$)|#[^\n]*", re.MULTILINE)
_CALLEE = re.compile(r"([A-Za-z_][A-Za-z_0-9]*)\s*$")


def open_call(text: str, offset: int) -> tuple[str, int] | None:
    """The function whose call the cursor is in (`name(a, |`), and which argument (from 0)."""
    from ..parser import _ITEM_START

    begin = max((m.start(1) for m in _ITEM_START.finditer(text, 0, offset)), default=0)
    # strings, units and comments hold no call: blank them (same length, same offsets)
    segment = _HIDDEN.sub(lambda m: " " * len(m.group()), text[begin:offset])
    depth = commas = 0
    for i in range(len(segment) - 1, -1, -1):
        c = segment[i]
        if c in ")]}":
            depth += 1
        elif c in "[{" and depth:
            depth -= 1
        elif c == "(":
            if depth == 0:
                callee = _CALLEE.search(segment, 0, i)
                return (callee.group(1), commas) if callee else None
            depth -= 1
        elif c == "," and depth == 0:
            commas += 1
    return None


def signature_help(analysis: Analysis, text: str, offset: int) -> t.SignatureHelp | None:
    """The signature of the function being called, its current parameter highlighted."""
    call = open_call(text, offset)
    if call is None:
        return None
    name, argument = call
    key = analysis.functions.get(name)
    symbol = analysis.symbols.get(key) if key else None
    node = symbol.node if symbol is not None else None
    if isinstance(node, ast.Define) and node.params is not None:
        label = signature(node)
        params = [f"{p.name}: {type_text(p.type)}" for p in node.params]
        doc = node.note
    elif name in BUILTINS:
        label, params, doc = BUILTINS[name].signature, [], BUILTINS[name].doc
    else:
        return None
    info = t.SignatureInformation(
        label,
        documentation=doc,
        parameters=[t.ParameterInformation(label=p) for p in params] or None,
    )
    active = min(argument, len(params) - 1) if params else None
    return t.SignatureHelp([info], active_signature=0, active_parameter=active)


# --------------------------------------------------------------------------- outline


def document_symbols(analysis: Analysis, positions: Positions) -> list[t.DocumentSymbol]:
    """The outline: the header with its metadata, then facts, defines and criteria in order."""
    syntax = analysis.syntax
    if syntax is None:
        return []
    out = []
    if syntax.header is not None:
        header = syntax.header
        children = [
            _symbol(m.key, t.SymbolKind.Property, m.span, m.span, positions, m.value)
            for m in header.meta
        ]
        out.append(
            _symbol(f"protocol {header.id}", t.SymbolKind.Module, header.span, header.span,
                    positions, None, children)
        )  # fmt: skip
    for item in syntax.items:
        match item:
            case ast.Fact():
                out.append(_symbol(item.name, t.SymbolKind.Field, item.span, item.name_span,
                                   positions, type_text(item.type)))  # fmt: skip
            case ast.Define():
                kind = t.SymbolKind.Constant if item.params is None else t.SymbolKind.Function
                detail = "define" if item.params is None else signature(item)
                out.append(_symbol(item.name, kind, item.span, item.name_span, positions, detail))
            case ast.Criterion():
                kind = (
                    t.SymbolKind.Boolean
                    if item.kind is ast.CriterionKind.INCLUSION
                    else t.SymbolKind.Event
                )
                name = f"{item.id}  {_short(item.text)}"
                out.append(_symbol(name, kind, item.span, item.id_span, positions, item.kind.value))
            case ast.Use():
                out.append(_symbol(f"use {item.name}", t.SymbolKind.Package, item.span, item.span,
                                   positions, None))  # fmt: skip
    return out


def _short(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _symbol(name, kind, span, selection, positions, detail, children=None):  # type: ignore[no-untyped-def]
    return t.DocumentSymbol(
        name=name,
        kind=kind,
        range=positions.of_span(span),
        selection_range=positions.of_span(selection),
        detail=detail,
        children=children,
    )


# --------------------------------------------------------------------------- semantic tokens

TOKEN_TYPES = ["variable", "function", "parameter", "enumMember", "property", "class"]
TOKEN_MODIFIERS = ["declaration", "readonly", "defaultLibrary"]
LEGEND = t.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=TOKEN_MODIFIERS)
_TOKEN = {
    FACT: (0, 0),
    DEFINE: (0, 0b010),
    FUNCTION: (1, 0),
    BUILTIN: (1, 0b100),
    PARAMETER: (2, 0),
    CHOICE: (3, 0),
    METADATA: (4, 0),
    CRITERION: (5, 0),
}


def semantic_tokens(analysis: Analysis, positions: Positions) -> t.SemanticTokens:
    """Names by what they stand for: facts, defines, functions, parameters, choices."""
    data: list[int] = []
    last_line = last_col = 0
    for o in analysis.occurrences:
        symbol = analysis.symbols.get(o.key)
        if symbol is None or symbol.kind not in _TOKEN:
            continue
        kind, modifiers = _TOKEN[symbol.kind]
        if o.declaration:
            modifiers |= 0b001
        where = positions.exact_range(o.start, o.end)
        if where is None or where.end.line != where.start.line:
            continue
        line, col, end_col = where.start.line, where.start.character, where.end.character
        delta_col = col - last_col if line == last_line else col
        data += [line - last_line, delta_col, end_col - col, kind, modifiers]
        last_line, last_col = line, col
    return t.SemanticTokens(data=data)


# --------------------------------------------------------------------------- editing


def formatting(text: str, name: str, positions: Positions) -> list[t.TextEdit] | None:
    """The whole document in the canonical layout (`protocol-rules fmt`); None if it does not
    parse (the diagnostics say why)."""
    from ..diagnostics import RulesError
    from ..format import format_text

    try:
        formatted = format_text(text, name)
    except RulesError:
        return None
    if formatted == text:
        return []
    end = positions.lines.end()
    return [t.TextEdit(t.Range(t.Position(0, 0), t.Position(*end)), formatted)]


_SUGGESTION = re.compile(r"did you mean `([^`]+)`\?")
#: Codes whose span is exactly the misspelt name or unit, so the suggestion can replace it.
_FIXABLE = {"PR110", "PR201", "PR206", "PR207", "PR303"}


def quick_fixes(uri: str, context: t.CodeActionContext) -> list[t.CodeAction]:
    """ "did you mean `x`?" as a quick fix that writes `x` in place of the mistake."""
    actions = []
    for diagnostic in context.diagnostics:
        if diagnostic.source != SOURCE or diagnostic.code not in _FIXABLE:
            continue
        match = _SUGGESTION.search(diagnostic.message)
        if match is None:
            continue
        fix = match.group(1)
        actions.append(
            t.CodeAction(
                title=f"Write `{fix}`",
                kind=t.CodeActionKind.QuickFix,
                diagnostics=[diagnostic],
                is_preferred=True,
                edit=t.WorkspaceEdit(changes={uri: [t.TextEdit(diagnostic.range, fix)]}),
            )
        )
    return actions
