"""The language server over stdio, on pygls: `protocol-rules lsp`.

Every change of a document is analysed (parsed, checked as ``protocol-rules check`` does,
indexed) on one worker thread, newest text first: a burst of keystrokes costs one analysis
of the latest text, not one per keystroke, and the editor's other questions (hover,
completion, the outline) are answered on the main thread meanwhile from the latest analysis.
The UCUM units library is loaded on a background thread as the server starts; until it is
ready, a document is first indexed without its unit checks (so hover and completion work at
once) and its diagnostics follow when the units are there. Nothing heavy is imported before
the editor's `initialize` is answered.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types as t
from pygls.lsp.server import LanguageServer

from .. import __version__
from . import features
from .incremental import IncrementalParser
from .index import Analysis, analyse

__all__ = ["RulesLanguageServer", "serve"]

log = logging.getLogger(__name__)


def uri_path(uri: str) -> str | None:
    """The file path of a `file:` URI, else None (an unsaved document)."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else None


class RulesLanguageServer(LanguageServer):
    """pygls server with the analyses of open documents."""

    def __init__(self) -> None:
        super().__init__("protocol-rules", __version__)
        self.latest: dict[str, tuple[int | None, str]] = {}  # uri -> (version, text)
        self.analyses: dict[str, Analysis] = {}  # uri -> latest analysis
        self.good: dict[str, Analysis] = {}  # uri -> latest analysis that parsed
        self.done: dict[str, int | None] = {}  # uri -> version last published
        self.parsers: dict[str, IncrementalParser] = {}  # uri -> its parser (worker only)
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="rules-analysis")
        self.units_ready = threading.Event()

    # -- the units library, loaded once in the background

    def warm_up(self) -> None:
        def load() -> None:
            try:
                from .. import units
                from ..parser import parse
                from ..source import Source

                parse(Source("<warm-up>", "protocol WARM_UP\n"))  # builds the Lark parser
                units.check_unit("mg/dL")  # builds (or reads from the cache) the registry
            except Exception:  # pragma: no cover - reported by the first check instead
                log.exception("loading the units library failed")
            finally:
                self.units_ready.set()

        threading.Thread(target=load, name="rules-units", daemon=True).start()

    # -- documents

    @property
    def encoding(self) -> str:
        encoding = self.server_capabilities.position_encoding
        return str(encoding.value if hasattr(encoding, "value") else encoding or "utf-16")

    def changed(self, uri: str, version: int | None, text: str) -> None:
        """Record the newest text of a document and queue its analysis."""
        self.latest[uri] = (version, text)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.worker, self._analyse, uri)
        future.add_done_callback(self._publish)

    def _analyse(self, uri: str) -> Analysis | None:
        """On the worker: analyse the newest text of `uri` unless that is already done."""
        latest = self.latest.get(uri)
        if latest is None:
            return None
        version, text = latest
        previous = self.analyses.get(uri)
        if self.done.get(uri, object()) == version and previous and previous.text == text:
            return None
        path = uri_path(uri)
        open_texts = {p: v[1] for u, v in self.latest.items() if (p := uri_path(u))}
        parser = self.parsers.setdefault(uri, IncrementalParser())
        if not self.units_ready.is_set():
            first = analyse(uri, text, path, version, check=False, open_texts=open_texts)
            self._store(first)
            self.units_ready.wait()
        analysis = analyse(uri, text, path, version, open_texts=open_texts, parser=parser)
        self._store(analysis)
        self.done[uri] = version
        return analysis

    def _store(self, analysis: Analysis) -> None:
        self.analyses[analysis.uri] = analysis
        if analysis.syntax is not None:
            self.good[analysis.uri] = analysis

    def _publish(self, future: Any) -> None:
        try:
            analysis = future.result()
        except Exception:  # pragma: no cover - a bug: say so in the log, keep serving
            log.exception("analysis failed")
            return
        if analysis is None or analysis.uri not in self.latest:
            return
        positions = features.Positions(analysis, self.encoding)
        self.text_document_publish_diagnostics(
            t.PublishDiagnosticsParams(
                uri=analysis.uri,
                diagnostics=features.diagnostics(analysis, positions),
                version=analysis.version,
            )
        )

    def closed(self, uri: str) -> None:
        for table in (self.latest, self.analyses, self.good, self.done, self.parsers):
            table.pop(uri, None)
        self.text_document_publish_diagnostics(t.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    def view(self, uri: str) -> tuple[Analysis, str, features.Positions] | None:
        """The latest analysis (the last that parsed, for the index), the current text, and a
        position converter of the current text."""
        analysis = self.analyses.get(uri)
        if analysis is None:
            return None
        if analysis.syntax is None and uri in self.good:
            analysis = self.good[uri]
        text = self.latest.get(uri, (None, analysis.text))[1]
        return analysis, text, features.Positions(analysis, self.encoding, text)


server = RulesLanguageServer()


@server.feature(t.INITIALIZED)
def initialized(ls: RulesLanguageServer, params: t.InitializedParams) -> None:
    ls.warm_up()


@server.feature(t.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: RulesLanguageServer, params: t.DidOpenTextDocumentParams) -> None:
    doc = params.text_document
    ls.changed(doc.uri, doc.version, doc.text)


@server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: RulesLanguageServer, params: t.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    document = ls.workspace.get_text_document(uri)
    ls.changed(uri, params.text_document.version, document.source)


@server.feature(t.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: RulesLanguageServer, params: t.DidSaveTextDocumentParams) -> None:
    uri = params.text_document.uri
    for other, (version, text) in list(ls.latest.items()):  # files that use it see the change
        if other != uri:
            ls.done.pop(other, None)
            ls.changed(other, version, text)


@server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: RulesLanguageServer, params: t.DidCloseTextDocumentParams) -> None:
    ls.closed(params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_HOVER)
def hover(ls: RulesLanguageServer, params: t.HoverParams) -> t.Hover | None:
    view = ls.view(params.text_document.uri)
    if view is None:
        return None
    analysis, text, positions = view
    return features.hover(analysis, text, positions.offset(params.position), positions)


@server.feature(t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions(trigger_characters=["'", "{", "("]))
def completion(ls: RulesLanguageServer, params: t.CompletionParams) -> t.CompletionList | None:
    view = ls.view(params.text_document.uri)
    if view is None:
        return None
    analysis, text, positions = view
    return features.completion(analysis, text, positions.offset(params.position), positions)


@server.feature(t.TEXT_DOCUMENT_DEFINITION)
def definition(ls: RulesLanguageServer, params: t.DefinitionParams) -> list[t.Location] | None:
    view = ls.view(params.text_document.uri)
    if view is None:
        return None
    analysis, text, positions = view
    return features.definition(analysis, text, positions.offset(params.position), positions)


@server.feature(t.TEXT_DOCUMENT_REFERENCES)
def references(ls: RulesLanguageServer, params: t.ReferenceParams) -> list[t.Location] | None:
    view = ls.view(params.text_document.uri)
    if view is None:
        return None
    analysis, text, positions = view
    offset = positions.offset(params.position)
    include = params.context.include_declaration
    return features.references(analysis, text, offset, positions, include)


@server.feature(t.TEXT_DOCUMENT_RENAME)
def rename(ls: RulesLanguageServer, params: t.RenameParams) -> t.WorkspaceEdit | None:
    view = ls.view(params.text_document.uri)
    if view is None:
        return None
    analysis, text, positions = view
    offset = positions.offset(params.position)
    return features.rename(analysis, text, offset, params.new_name, positions)


@server.feature(t.TEXT_DOCUMENT_DOCUMENT_HIGHLIGHT)
def document_highlight(
    ls: RulesLanguageServer, params: t.DocumentHighlightParams
) -> list[t.DocumentHighlight] | None:
    view = ls.view(params.text_document.uri)
    if view is None:
        return None
    analysis, text, positions = view
    return features.highlights(analysis, text, positions.offset(params.position), positions)


@server.feature(
    t.TEXT_DOCUMENT_SIGNATURE_HELP, t.SignatureHelpOptions(trigger_characters=["(", ","])
)
def signature_help(
    ls: RulesLanguageServer, params: t.SignatureHelpParams
) -> t.SignatureHelp | None:
    view = ls.view(params.text_document.uri)
    if view is None:
        return None
    analysis, text, positions = view
    return features.signature_help(analysis, text, positions.offset(params.position))


@server.feature(t.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbol(
    ls: RulesLanguageServer, params: t.DocumentSymbolParams
) -> list[t.DocumentSymbol] | None:
    view = ls.view(params.text_document.uri)
    if view is None:
        return None
    analysis, _, positions = view
    return features.document_symbols(analysis, positions)


@server.feature(t.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, features.LEGEND)
def semantic_tokens(
    ls: RulesLanguageServer, params: t.SemanticTokensParams
) -> t.SemanticTokens | None:
    view = ls.view(params.text_document.uri)
    if view is None:
        return None
    analysis, _, positions = view
    return features.semantic_tokens(analysis, positions)


@server.feature(t.TEXT_DOCUMENT_FORMATTING)
def formatting(
    ls: RulesLanguageServer, params: t.DocumentFormattingParams
) -> list[t.TextEdit] | None:
    uri = params.text_document.uri
    text = ls.latest.get(uri, (None, None))[1]
    if text is None:
        return None
    view = ls.view(uri)
    if view is None:
        return None
    return features.formatting(text, uri_path(uri) or uri, view[2])


@server.feature(
    t.TEXT_DOCUMENT_CODE_ACTION, t.CodeActionOptions(code_action_kinds=[t.CodeActionKind.QuickFix])
)
def code_action(ls: RulesLanguageServer, params: t.CodeActionParams) -> list[t.CodeAction]:
    return features.quick_fixes(params.text_document.uri, params.context)


def serve() -> None:
    """Run the server on standard input and output until the editor stops it."""
    server.start_io()
