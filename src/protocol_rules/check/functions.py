"""Checker pass over defines and functions, and over the libraries a file uses.

- `check_definitions` checks the defines of one file (values and functions) in dependency
  order: a cycle among values is PR204, a function that calls itself (directly or through
  others) is PR230. A function's body is checked once, against its declared parameter types;
  each call is then checked against the signature (check/calc.py) and carries the body.
- `check_libraries` checks each used library in its own scope (its defines and the libraries
  it uses itself, never the protocol's facts), dependencies first; `import_library` makes a
  library's public names (those not starting with `_`) visible in the file that uses it.

docs/language/functions.md, docs/language/libraries.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from attrs import frozen

from .. import ast, units
from ..diagnostics import Diagnostic, error, warning
from . import ir
from .calc import SCALAR_FUNCTIONS
from .expressions import FUNCTIONS, ExprChecker, _a
from .model import DefineInfo, FunctionInfo
from .types import ERROR, ErrorT, NumT, QtyT, TimeT, Type

if TYPE_CHECKING:
    from ..library import Resolved

#: Declares a type: (type syntax, owner name, diagnostics) -> Type (check._declared_type).
Declare = Callable[[ast.TypeExpr, str, list[Diagnostic]], Type]


@frozen
class Exports:
    """The public names of a checked library: values and functions by the name they are used by."""

    label: str
    defines: dict[str, DefineInfo]
    functions: dict[str, FunctionInfo]

    @property
    def names(self) -> set[str]:
        return {*self.defines, *self.functions}


# --------------------------------------------------------------------------- definitions


def check_definitions(
    defines: Sequence[ast.Define],
    checker: ExprChecker,
    define_types: dict[str, Type],
    declare: Declare,
    diags: list[Diagnostic],
    origin: str | None = None,
) -> tuple[list[DefineInfo], list[FunctionInfo]]:
    """Check the defines and functions of one file; returns them in dependency order."""
    prefix = f"{origin}." if origin else ""
    if origin:  # a library file (a protocol's duplicates are checked with its facts)
        diags += _duplicate_values(defines)
    local_functions = _register_functions(defines, checker, diags)
    for define in defines:
        if define.params is None and define.name in checker.imported:
            diags.append(_clash(define, checker.imported[define.name]))
    order, cyclic = _order(defines, local_functions, diags)
    values: list[DefineInfo] = []
    functions: list[FunctionInfo] = []
    reads: dict[str, bool] = {}
    for define in order:
        if define.params is None:
            info = _check_value(define, checker, declare, diags, prefix, origin)
            define_types[define.name] = info.type
            checker.define_bodies[define.name] = info.body
            if origin:
                checker.define_keys[define.name] = info.name
            reads[info.name] = _reads_facts(info.body, reads)
            checker.define_reads_facts[define.name] = reads[info.name]
            values.append(info)
        elif local_functions.get(define.name) is define:
            function = _check_function(define, checker, declare, diags, prefix, origin)
            checker.functions[define.name] = function
            functions.append(function)
    for name in cyclic:
        define_types.setdefault(name, ERROR)
    return values, functions


def _duplicate_values(defines: Sequence[ast.Define]) -> Iterator[Diagnostic]:
    seen: set[str] = set()
    for define in defines:
        if define.params is None:
            if define.name in seen:
                yield error(
                    "PR203",
                    f"`{define.name}` is declared twice",
                    define.name_span,
                    help="give each define its own name",
                )
            seen.add(define.name)


def _register_functions(
    defines: Sequence[ast.Define], checker: ExprChecker, diags: list[Diagnostic]
) -> dict[str, ast.Define]:
    """Make the file's function names known (checked later), reporting clashes."""
    builtins = {*FUNCTIONS, *SCALAR_FUNCTIONS}
    local: dict[str, ast.Define] = {}
    for define in defines:
        if define.params is None:
            continue
        name = define.name
        if name in builtins:
            diags.append(
                error(
                    "PR232",
                    f"`{name}` is a built-in function and cannot be redefined",
                    define.name_span,
                    help=f"give the function another name, such as `{name}_of`",
                )
            )
        elif name in local:
            diags.append(
                error(
                    "PR203",
                    f"function `{name}` is declared twice",
                    define.name_span,
                    help="give each function its own name",
                )
            )
        else:
            if name in checker.imported:
                diags.append(_clash(define, checker.imported[name]))
            local[name] = define
            checker.functions[name] = None  # known, checked in dependency order
    return local


def _clash(define: ast.Define, library: str) -> Diagnostic:
    kind = "a function" if define.params is not None else "a define"
    return error(
        "PR232",
        f"`{define.name}` is both {kind} of this file and a name of library `{library}`",
        define.name_span,
        label="clashes with the library",
        help=f"rename yours (e.g. `my_{define.name}`), or do not use `{library}`",
    )


def _check_value(
    define: ast.Define,
    checker: ExprChecker,
    declare: Declare,
    diags: list[Diagnostic],
    prefix: str,
    origin: str | None,
) -> DefineInfo:
    declared = declare(define.type, define.name, diags) if define.type else None
    body = checker.check(define.expr, declared)
    body, type_ = _with_declared(body, declared, define, checker)
    return DefineInfo(prefix + define.name, type_, body, define, origin)


def _check_function(
    define: ast.Define,
    checker: ExprChecker,
    declare: Declare,
    diags: list[Diagnostic],
    prefix: str,
    origin: str | None,
) -> FunctionInfo:
    params: dict[str, tuple[int, Type]] = {}
    signature: list[tuple[str, Type]] = []
    for index, param in enumerate(define.params or ()):
        type_ = declare(param.type, define.name, diags)
        if param.name in params:
            diags.append(
                error(
                    "PR238",
                    f"parameter `{param.name}` of `{define.name}` is declared twice",
                    param.name_span,
                    help="give each parameter its own name",
                )
            )
        params.setdefault(param.name, (index, type_))
        signature.append((param.name, type_))
    declared = declare(define.type, define.name, diags) if define.type else None
    checker.params, checker.function_name = params, define.name
    try:
        body = checker.check(define.expr, declared)
    finally:
        checker.params, checker.function_name = None, None
    body, type_ = _with_declared(body, declared, define, checker)
    return FunctionInfo(
        define.name, prefix + define.name, tuple(signature), type_, body, define, origin
    )


def _with_declared(
    body: ir.Node, declared: Type | None, define: ast.Define, checker: ExprChecker
) -> tuple[ir.Node, Type]:
    """The body converted to the declared type (PR336 when it cannot be)."""
    if declared is None or isinstance(declared, ErrorT) or isinstance(body.type, ErrorT):
        return body, body.type if declared is None else declared
    got = body.type
    if isinstance(declared, QtyT) and isinstance(got, QtyT):
        try:
            units.conversion(got.unit, declared.unit, got.molar_mass)
        except units.UnitError:
            pass
        else:
            return checker._convert(body, QtyT(declared.unit, got.molar_mass)), declared
    elif isinstance(declared, NumT) and isinstance(got, NumT):
        if got.integer or not declared.integer:
            return body, declared
    elif (isinstance(declared, TimeT) and isinstance(got, TimeT)) or declared == got:
        return body, declared
    shown = f"a quantity in `{got.unit}`" if isinstance(got, QtyT) else _a(got)
    checker._error(
        "PR336",
        f"`{define.name}` is declared as {_a(declared)}, but its expression is {shown}",
        define.expr.span,
        label=shown,
        help="correct the declared type after the name, or the expression",
    )
    return body, declared


def _reads_facts(node: ir.Node, reads: dict[str, bool]) -> bool:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ir.FactRef):
            return True
        if isinstance(current, ir.DefineRef) and reads.get(current.name):
            return True
        stack.extend(ir.children(current))
    return False


# --------------------------------------------------------------------------- order


def _walk(node: ast.Expr) -> Iterator[ast.Expr]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(ast.children(current))


def _dependencies(define: ast.Define, values: set[str], functions: set[str]) -> list[str]:
    params = {p.name for p in define.params or ()}
    out: dict[str, None] = {}
    for node in _walk(define.expr):
        if isinstance(node, ast.Name) and node.name in values and node.name not in params:
            out[node.name] = None
        elif isinstance(node, ast.Call) and node.function in functions:
            out["()" + node.function] = None
    return list(out)


def _order(
    defines: Sequence[ast.Define], functions: dict[str, ast.Define], diags: list[Diagnostic]
) -> tuple[list[ast.Define], set[str]]:
    """Defines and functions in dependency order, and the names caught in a cycle."""
    by_key: dict[str, ast.Define] = {}
    for define in defines:
        if define.params is None:
            by_key.setdefault(define.name, define)
    by_key.update({"()" + name: define for name, define in functions.items()})
    values = {k for k in by_key if not k.startswith("()")}
    deps = {k: _dependencies(d, values, set(functions)) for k, d in by_key.items()}
    order: list[ast.Define] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cyclic: set[str] = set()
    for start in by_key:  # depth first, with an explicit stack: chains may be long
        if state.get(start):
            continue
        path, pending = [start], [iter(deps[start])]
        state[start] = 1
        while pending:
            dep = next(pending[-1], None)
            if dep is None:
                pending.pop()
                key = path.pop()
                state[key] = 2
                if key not in cyclic:
                    order.append(by_key[key])
            elif state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep]
                if not cyclic.intersection(cycle):
                    diags.append(_cycle(cycle, by_key))
                cyclic.update(cycle)
            elif state.get(dep) != 2:
                state[dep] = 1
                path.append(dep)
                pending.append(iter(deps[dep]))
    return order, {k.removeprefix("()") for k in cyclic}


def _cycle(cycle: list[str], by_key: dict[str, ast.Define]) -> Diagnostic:
    first = by_key[cycle[0]]
    shown = " -> ".join(f"`{k.removeprefix('()')}`" for k in cycle)
    if any(k.startswith("()") for k in cycle):
        if len(cycle) == 2:
            message = f"function `{first.name}` calls itself"
        else:
            message = f"functions call each other in a cycle: {shown}"
        return error(
            "PR230",
            message,
            first.name_span,
            label="recursion is not allowed",
            help="a function may call only functions that do not call it back; "
            "write the repeated step out, or use `if` and `first_known`",
        )
    return error(
        "PR204",
        f"defines refer to each other in a cycle: {shown}",
        first.name_span,
        help="a define may use only defines that do not use it back",
    )


# --------------------------------------------------------------------------- libraries


def check_libraries(
    resolved: Resolved, declare: Declare, diags: list[Diagnostic]
) -> tuple[dict[str, Exports], list[DefineInfo], list[FunctionInfo]]:
    """Check every library of `resolved` in its own scope, dependencies first."""
    exports: dict[str, Exports] = {}
    all_values: list[DefineInfo] = []
    all_functions: list[FunctionInfo] = []
    for library in resolved.libraries:
        defines = [i for i in library.syntax.items if isinstance(i, ast.Define)]
        define_types: dict[str, Type] = {}
        names = {d.name for d in defines if d.params is None}
        checker = ExprChecker({}, define_types.get, names, {})
        for use, key in library.uses:
            import_library(checker, exports.get(key) if key else None, use, define_types, diags)
        values, functions = check_definitions(
            defines, checker, define_types, declare, diags, origin=library.label
        )
        diags += checker.diagnostics
        exports[library.key] = Exports(
            library.label,
            {v.decl.name: v for v in values if not v.decl.name.startswith("_")},
            {f.name: f for f in functions if not f.name.startswith("_")},
        )
        all_values += values
        all_functions += functions
    return exports, all_values, all_functions


def import_library(
    checker: ExprChecker,
    exports: Exports | None,
    use: ast.Use,
    define_types: dict[str, Type],
    diags: list[Diagnostic],
) -> None:
    """Make the public names of a library visible to `checker` (the file that uses it)."""
    if exports is None:  # it failed to load: its names are missing, quietly
        checker.lenient = True
        return
    for name, function in exports.functions.items():
        if name in checker.imported and checker.imported[name] != exports.label:
            diags.append(_double_import(name, checker.imported[name], exports.label, use))
            continue
        checker.imported[name] = exports.label
        checker.functions[name] = function
    for name, value in exports.defines.items():
        if name in checker.imported and checker.imported[name] != exports.label:
            diags.append(_double_import(name, checker.imported[name], exports.label, use))
            continue
        if name in checker.facts:
            diags.append(
                error(
                    "PR232",
                    f"`{name}` is both a fact of this protocol and a define of library "
                    f"`{exports.label}`",
                    use.span,
                    help=f"rename the fact, or do not use `{exports.label}`",
                )
            )
            continue
        checker.imported[name] = exports.label
        if name in checker.define_names:
            continue  # the file's own define of that name: reported by `check_definitions`
        checker.define_names.add(name)
        define_types[name] = value.type
        checker.define_keys[name] = value.name
        checker.define_reads_facts[name] = False


def _double_import(name: str, first: str, second: str, use: ast.Use) -> Diagnostic:
    return error(
        "PR232",
        f"`{name}` is a name of both library `{first}` and library `{second}`",
        use.span,
        help="use only one of them, or rename the name in your own library file",
    )


def unused_uses(
    uses: Sequence[tuple[ast.Use, str | None]],
    exports: dict[str, Exports],
    checker: ExprChecker,
) -> Iterator[Diagnostic]:
    """PR239: a `use` whose library gives nothing the file uses."""
    used = checker.used_functions | checker.used_defines
    for use, key in uses:
        library = exports.get(key) if key else None
        if library is not None and library.names and not library.names & used:
            yield warning(
                "PR239",
                f"library `{library.label}` is used but none of its names is",
                use.span,
                help=f"call one of its functions, or remove `use {use.span.text[4:].strip()}`",
            )


def unused_functions(
    functions: Sequence[FunctionInfo], checker: ExprChecker
) -> Iterator[Diagnostic]:
    for function in functions:
        if function.name not in checker.used_functions:
            yield warning(
                "PR210",
                f"function `{function.name}` is never called",
                function.decl.name_span,
                help="call it in a criterion or a define, or remove it",
            )
