"""Checker pass: bound how deeply expressions nest, counting through the defines they use.

The parser refuses one expression nested too deeply (PR107), but a define's value is computed
inside the expression that uses it, so a chain of defines nests as deeply as their sum: five
defines of a hundred `not`s are one expression five hundred levels deep for the evaluator and
for every renderer that walks a trace. This pass measures that total depth, without recursion,
and refuses what is deeper than `MAX_TOTAL_DEPTH` (PR213).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..diagnostics import Diagnostic, error
from ..source import Span
from . import ir

#: Deepest nesting of a criterion accepted, counting the levels of the defines it uses.
#: Evaluation and traces recurse once or twice per level: this keeps them far from Python's
#: recursion limit, even when called from deep inside an application.
MAX_TOTAL_DEPTH = 200


def depth(root: ir.Node, define_depths: dict[str, int]) -> tuple[int, bool]:
    """(levels below and including `root`, whether a define it uses is itself too deep)."""
    deepest, inherited = 0, False
    stack = [(root, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, ir.DefineRef):
            used = define_depths.get(node.name, 0)
            inherited = inherited or used > MAX_TOTAL_DEPTH
            level += used
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ir.children(node))
    return deepest, inherited


def too_deep(
    defines: Iterable[tuple[str, ir.Node, Span]], criteria: Iterable[tuple[str, ir.Node, Span]]
) -> Iterator[Diagnostic]:
    """PR213 for each define and criterion deeper than the limit by its own doing.

    `defines` come in dependency order (a define after those it uses). A define or criterion
    that is too deep only because a define it uses is too deep is not reported again.
    """
    depths: dict[str, int] = {}
    for name, body, span in defines:
        depths[name], inherited = depth(body, depths)
        if depths[name] > MAX_TOTAL_DEPTH and not inherited:
            yield _error(f"define `{name}`", depths[name], span)
    for ident, body, span in criteria:
        levels, inherited = depth(body, depths)
        if levels > MAX_TOTAL_DEPTH and not inherited:
            yield _error(f"criterion `{ident}`", levels, span)


def _error(what: str, levels: int, span: Span) -> Diagnostic:
    return error(
        "PR213",
        f"{what} nests {levels} levels deep counting the defines it uses "
        f"(at most {MAX_TOTAL_DEPTH})",
        span,
        label="too deep",
        help="a define is evaluated inside the expressions that use it: chain fewer defines, "
        "or write the conditions flatter (`a or b or c` rather than nested parentheses)",
    )
