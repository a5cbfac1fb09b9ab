"""Back ends of the one checked IR: the interpreter (`protocol_rules.evaluate`) is the reference;
`polars` compiles a protocol into columnar expressions for screening whole populations.

Importing this package imports no engine: each is loaded on demand by `engine(name)`, so the
core install (without the ``[screen]`` extra) stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ..diagnostics import RulesError, error

#: Engine name -> module that provides it (``compile_protocol(checked) -> compiled``).
ENGINES = {
    "polars": "protocol_rules.engines.polars",
    "duckdb": "protocol_rules.engines.duckdb",
    "spark": "protocol_rules.engines.spark",
}


class ScreeningError(RulesError):
    """A population cannot be screened: a missing extra, a bad layout, an unsupported construct."""


def require_polars() -> Any:
    """The `polars` module, or a `ScreeningError` saying how to install it."""
    try:
        import polars
    except ImportError:
        raise ScreeningError(
            [
                error(
                    "PR501",
                    "screening needs polars, which is not installed",
                    None,
                    path="polars",
                    help="install the screening extra: pip install 'protocol-rules[screen]'",
                )
            ]
        ) from None
    return polars


#: Per engine, the modules it needs besides polars, and the extra that installs them.
NEEDS = {"duckdb": (("sqlglot", "duckdb"), "sql"), "spark": (("sqlglot", "pyspark"), "spark")}


def require(module: str, extra: str) -> Any:
    """`module`, or a `ScreeningError` (PR524) saying which extra installs it."""
    try:
        return import_module(module)
    except ImportError:
        raise ScreeningError(
            [
                error(
                    "PR524",
                    f"this engine needs `{module}`, which is not installed",
                    None,
                    path=module,
                    help=f"install the extra: pip install 'protocol-rules[{extra}]'",
                )
            ]
        ) from None


def engine(name: str) -> Any:
    """The module of the engine called `name`."""
    if name not in ENGINES:
        choices = ", ".join(f"`{n}`" for n in ENGINES)
        raise ScreeningError(
            [error("PR502", f"unknown engine `{name}`", None, path="engine", help=f"use {choices}")]
        )
    require_polars()  # every engine hands its result to `Screening` as a polars frame
    modules, extra = NEEDS.get(name, ((), ""))
    for module in modules:
        require(module, extra)
    return import_module(ENGINES[name])


__all__ = ["ENGINES", "ScreeningError", "engine", "require", "require_polars"]


def series_read(node: Any, defines: dict[str, Any]) -> list[str]:
    """The series facts an expression reads, through defines (as `Program._undecided_series`):
    the missing facts every engine lists for an undecided `if`."""
    from ..check import ir
    from ..check.types import SeriesT

    found: dict[str, None] = {}
    stack = [node]
    seen: set[str] = set()
    while stack:
        current = stack.pop()
        if isinstance(current, ir.FactRef) and isinstance(current.type, SeriesT):
            found[current.name] = None
        elif isinstance(current, ir.DefineRef) and current.name not in seen:
            seen.add(current.name)
            if current.name in defines:
                stack.append(defines[current.name])
        stack.extend(ir.children(current))
    return list(found)
