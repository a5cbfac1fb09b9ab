"""The language server: `protocol-rules lsp`, the rules language in any editor that speaks LSP.

Beside the pipeline, reading it from the top: `index` parses a document and indexes its names
(declarations, uses, the libraries it uses) and runs the same checks as `protocol-rules check`;
`features` answers the editor's questions (hover, completion, definitions, references, the
outline, semantic tokens) from that index; `server` is the pygls wiring over stdio, and
`command` the `lsp` command on the CLI. Only `server` imports pygls (the ``[lsp]`` extra).
docs/editors.md describes it.
"""
