"""The canonical layout of `.rules` files, beside the pipeline: text -> syntax tree -> text.

`format_text` parses a file (it never checks it: a file with a type error still formats) and
prints its syntax tree in one layout:

- the header, then its metadata lines indented 2 with the values aligned, then a blank line;
- facts one per line, without blank lines between them (a description that would pass
  column 100 goes on the next line, a long `one of` list wraps under its first choice);
- every define and criterion after a blank line, with its expression on the next line
  indented 2; a criterion's `note` on its own line;
- an expression on one line when it fits in 100 columns, otherwise its `and` / `or` chain one
  operand per line with the operator in front; long sets wrap under their first item;
- parentheses only where precedence needs them, plus one readability rule: an `and` chain
  inside an `or` chain is always parenthesised, as `(a and b) or c`.

Comments are not in the grammar (it ignores them), so they are collected from the text with
their positions: a comment on a line of its own stays attached to the code that follows it
(before the item, or before the line of an expression that holds the next token), a comment
after code stays at the end of the line that prints the code before it. A blank line that
separates a comment from what precedes or follows it is kept (one at most), so section
banners keep their air. The layout depends only on the syntax tree, the comments and those
blank lines, so formatting is idempotent and ``parse(format_text(x)) == parse(x)`` (spans
aside).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Iterator
from functools import cache

import attrs
from attrs import define, field

from . import ast
from ._grammar import grammar_text
from .diagnostics import ProtocolError
from .parser import has_errors, parse
from .source import Source, Span, normalise

__all__ = ["WIDTH", "format_text"]

#: The column a formatted line should not pass (strings are never broken, so some do).
WIDTH = 100
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_UNIT = re.compile(r"'[^'\n]*'")
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_]*#[A-Za-z0-9][A-Za-z0-9.\-]*\*?")  # `LOINC#2160-0`
_WORD = re.compile(r"[A-Za-z0-9_]+")


def format_text(text: str, filename: str = "<string>") -> str:
    """The canonical layout of rules text. Raises `ProtocolError` if the text does not parse."""
    source = Source(filename, normalise(text))
    tree, diagnostics = parse(source)
    if tree is None or has_errors(diagnostics):
        raise ProtocolError(diagnostics)
    comments = list(_comments(source.text))
    blocks = _Printer(source, [c.start for c in comments]).blocks(tree)
    return _Assembler(source, blocks, comments).render()


# --------------------------------------------------------------------------- comments


@define
class _Comment:
    start: int
    text: str
    own_line: bool


def _comments(text: str) -> Iterator[_Comment]:
    """Every `#` comment of the text, skipping `#` inside texts and units."""
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == '"' or char == "'":
            match = (_STRING if char == '"' else _UNIT).match(text, i)
            i = match.end() if match else i + 1
        elif char.isalnum() or char == "_":  # a word, or a code such as `LOINC#2160-0`
            match = _CODE.match(text, i) or _WORD.match(text, i)
            i = match.end() if match else i + 1
        elif char == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
            line_start = text.rfind("\n", 0, i) + 1
            own = not text[line_start:i].strip()
            yield _Comment(i, text[i:end].rstrip(), own)
            i = end
        else:
            i += 1


def _next_code(text: str, pos: int) -> int:
    """The offset of the first character of code at or after `pos` (skipping comments)."""
    n = len(text)
    while pos < n:
        if text[pos].isspace():
            pos += 1
        elif text[pos] == "#":
            end = text.find("\n", pos)
            pos = n if end < 0 else end
        else:
            return pos
    return n


def _last_code(text: str, pos: int) -> int:
    """The offset of the last non-blank character before `pos` on the same line."""
    pos -= 1
    while pos > 0 and text[pos] in " \t\f\r":
        pos -= 1
    return pos


# --------------------------------------------------------------------------- lines


@define
class _Frag:
    """A piece of a printed line; `start`/`end` locate its token in the source, if known."""

    text: str
    start: int | None = None
    end: int | None = None
    group: int | None = None  # a fill group (a set or a list of choices) this piece is in
    sep: bool = False  # a `, ` of a fill group, where the line may break


@define
class _Line:
    indent: int
    frags: list[_Frag]
    before: list[str] = field(factory=list)  # comments on their own lines above this line
    after: list[str] = field(factory=list)  # comments at the end of this line

    @property
    def text(self) -> str:
        return " " * self.indent + "".join(f.text for f in self.frags)


@define
class _Block:
    """One item (or the header) as printed lines, with its place in the source."""

    kind: str
    start: int
    end: int
    lines: list[_Line]


def _width(frags: Iterable[_Frag]) -> int:
    return sum(len(f.text) for f in frags)


def _at(text: str, span: Span) -> _Frag:
    return _Frag(text, span.start, span.end)


def _kw(text: str, start: int) -> _Frag:
    """A keyword (or the words of a name) at `start`; its range is its first word."""
    word = re.match(r"\w+|\S", text.strip())
    return _Frag(text, start, start + (len(word.group()) if word else 1))


# --------------------------------------------------------------------------- literals


@cache
def _reserved() -> frozenset[str]:
    words = set(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"', grammar_text()))
    return frozenset(words | set(ast.TIME_WORDS))


def _number(value: float, integer: bool | None = None) -> str:
    """Number text that parses back to `value` (and to the same integer-ness)."""
    if integer is None:
        integer = math.isfinite(value) and float(value).is_integer()
    sign = "-" if value < 0 or (value == 0 and math.copysign(1.0, value) < 0) else ""
    magnitude = abs(value)
    if math.isinf(magnitude):
        body = "1" + "0" * 400 if integer else "1e999"
    elif integer:
        body = str(int(magnitude))
    else:
        body = repr(float(magnitude))
    return sign + body


def _unsigned(value: float, integer: bool | None = None) -> str:
    return _number(value, integer).lstrip("-")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unit(value: str) -> str:
    return "'" + value.replace("\\", "\\\\") + "'"


def _ident(value: str) -> str:
    """A protocol id: bare when it is a name that is not a reserved word, else quoted."""
    if _NAME.match(value) and value not in _reserved():
        return value
    return _quote(value)


# --------------------------------------------------------------------------- precedence

_OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _UNARY, _POWER, _ATOM = range(1, 10)
_IF = 0  # `if … then … else …` binds loosest: parenthesised wherever an operand is expected
#: `W where C`: its condition runs to the end of the expression, so it is parenthesised
#: wherever anything could follow it.
_WHERE = 0


def _prec(node: ast.Expr) -> int:
    match node:
        case ast.If():
            return _IF
        case ast.Power():
            return _POWER
        case ast.Logic(op=ast.LogicOp.OR):
            return _OR
        case ast.Logic():
            return _AND
        case ast.Not():
            return _NOT
        case (
            ast.Comparison()
            | ast.Between()
            | ast.InSet()
            | ast.IsKnown()
            | ast.Contains()
            | ast.Window()
            | ast.Quantified()
            | ast.WindowFromTo()
            | ast.IsNever()
        ):
            return _COMPARE
        case ast.Where():
            return _WHERE
        case ast.Arithmetic(op=ast.ArithOp.ADD | ast.ArithOp.SUB):
            return _SUM
        case ast.Arithmetic():
            return _PRODUCT
        case ast.Negate():
            return _UNARY
    return _ATOM


def _operand_need(parent: ast.Logic, operand: ast.Expr) -> int:
    """The precedence an operand of `and`/`or` needs to print bare."""
    if parent.op is ast.LogicOp.OR and isinstance(operand, ast.Logic):
        return _OR + 2  # readability: `(a and b) or c`, never `a and b or c`
    return _NOT if parent.op is ast.LogicOp.AND else _AND


# --------------------------------------------------------------------------- the printer


class _Printer:
    """Syntax tree -> blocks of lines (comments are placed afterwards)."""

    def __init__(self, source: Source, comments: list[int] | None = None) -> None:
        self.source = source
        self.text = source.text
        self._groups = 0
        self._comments = sorted(comments or [])

    def _holds_comment(self, node: ast.Expr) -> bool:
        """Whether `node` must be broken into lines to keep a comment written inside it.

        That is a comment between two operands of an `and`/`or` chain or of `at least … of`
        (or after its `(`), or one held so by such an operand (of a `not` too). A comment
        before the first operand or after the last, even inside parentheses the layout may
        drop, stays beside that operand in every layout; one inside an operand that cannot be
        broken (`age is # … known`) ends that operand's line.
        """
        match node:
            case ast.Logic(operands=parts) | ast.Count(conditions=parts):
                points = [x for part in parts for x in (_core_start(part), _core_end(part))]
                if isinstance(node, ast.Count):  # from its `(`, which every layout keeps
                    points = [node.span.start, *points[:-1]]
                else:
                    points = points[1:-1]
                gaps = list(zip(points[::2], points[1::2], strict=True))
            case ast.Not(operand=operand):
                parts, gaps = (operand,), []
            case _:
                return False
        return any(self._comment_between(a, b) for a, b in gaps) or any(
            self._holds_comment(part) for part in parts
        )

    def _group(self) -> int:
        self._groups += 1
        return self._groups

    def _comment_between(self, start: int, end: int) -> bool:
        i = bisect.bisect_right(self._comments, start)
        return i < len(self._comments) and self._comments[i] < end

    # ---- items

    def blocks(self, tree: ast.ProtocolFile) -> list[_Block]:
        out = []
        if tree.header is not None:
            out.append(self.header(tree.header))
        for item in tree.items:
            match item:
                case ast.Fact():
                    out.append(self.fact(item))
                case ast.Define():
                    out.append(self.define(item))
                case ast.Criterion():
                    out.append(self.criterion(item))
                case ast.Use():
                    out.append(self.use(item))
                case ast.Codes():
                    out.append(self.codes(item))
        return out

    def header(self, header: ast.Header) -> _Block:
        start = header.span.start
        id_at = _next_code(self.text, start + len("protocol"))
        lines = [
            _Line(
                0, [_kw("protocol", start), _Frag(" "), _Frag(_ident(header.id), id_at, id_at + 1)]
            )
        ]
        width = max((len(m.key) for m in header.meta), default=0)
        for meta in header.meta:
            key = _kw(meta.key.ljust(width + 1), meta.span.start)
            value = _Frag(_quote(meta.value), meta.span.end - 1, meta.span.end)
            lines.append(_Line(2, [key, value]))
        return _Block("header", start, header.span.end, lines)

    def fact(self, fact: ast.Fact) -> _Block:
        frags = [_kw("fact ", fact.span.start), _at(fact.name, fact.name_span), _Frag(": ")]
        frags += self.type_(fact.type)
        if fact.range is not None:
            low, high = _number(fact.range.low), _number(fact.range.high)
            frags += [_Frag(" "), _at(f"range {low} to {high}", fact.range.span)]
        if fact.molar_mass is not None:
            mm = fact.molar_mass
            text = f"molar_mass {_unsigned(mm.value)} {_unit(mm.unit)}"
            frags += [_Frag(" "), _at(text, mm.span)]
        if fact.past is not None:
            frags += [_Frag(" "), _at("past", fact.past.span)]
        lines = _wrap(_Line(0, frags))
        if fact.description is not None:
            end = fact.span.end
            description = _Frag(_quote(fact.description), end - 1, end)
            last = lines[-1]
            if len(last.text) + 1 + len(description.text) <= WIDTH:
                last.frags += [_Frag(" "), description]
            else:
                lines.append(_Line(2, [description]))
        return _Block("fact", fact.span.start, fact.span.end, lines)

    def type_(self, node: ast.TypeExpr) -> list[_Frag]:
        words = {
            ast.BooleanType: "boolean",
            ast.IntegerType: "integer",
            ast.NumberType: "number",
            ast.DateType: "date",
            ast.DateTimeType: "datetime",
            ast.TextType: "text",
            ast.CodeType: "code",
        }
        match node:
            case ast.QuantityType(unit=unit):
                return [_at(f"quantity {_unit(unit)}", node.span)]
            case ast.ChoiceType(choices=choices):
                group = self._group()
                frags = [_kw("one of ", node.span.start)]
                for i, (choice, span) in enumerate(zip(choices, node.choice_spans, strict=True)):
                    if i:
                        frags.append(_Frag(", ", group=group, sep=True))
                    frags.append(_Frag(choice, span.start, span.end, group=group))
                return frags
            case ast.SeriesType(element=element):
                return [_kw("series of ", node.span.start), *self.type_(element)]
            case ast.SetType(element=element):
                return [_kw("set of ", node.span.start), *self.type_(element)]
            case ast.DateType(never=True) | ast.DateTimeType(never=True):
                return [_at(f"{words[type(node)]} or never", node.span)]
        return [_at(words[type(node)], node.span)]

    def define(self, item: ast.Define) -> _Block:
        head = [_kw("define ", item.span.start), _at(item.name, item.name_span)]
        if item.params is not None:  # a function: its parameters are a fill group
            group = self._group()
            head.append(_Frag("("))
            for i, param in enumerate(item.params):
                if i:
                    head.append(_Frag(", ", group=group, sep=True))
                head.append(_Frag(param.name, param.name_span.start, param.name_span.end, group))
                head.append(_Frag(": ", group=group))
                head += [attrs.evolve(f, group=group) for f in self.type_(param.type)]
            head.append(_Frag(")"))
        if item.type is not None:
            head += [_Frag(": "), *self.type_(item.type)]
        if item.note is None:
            lines = [*_wrap(_Line(0, [*head, _Frag(" =")]))]
        else:
            note_at = _next_code(self.text, item.type.span.end if item.type else item.span.start)
            note_at = self.text.find("note", note_at)
            text_at = _next_code(self.text, note_at + len("note"))
            note = [_kw("note ", note_at), _Frag(_quote(item.note), text_at, text_at + 1)]
            lines = [*_wrap(_Line(0, head)), _Line(2, [*note, _Frag(" =")])]
        lines += self.lines(item.expr, 2)
        return _Block("define", item.span.start, item.span.end, lines)

    def codes(self, item: ast.Codes) -> _Block:
        """`codes aki = {ICD10CM#N17*, SNOMED#14669001 "…"}`, wrapped under the first member."""
        group = self._group()
        frags = [_kw("codes ", item.span.start), _at(item.name, item.name_span), _Frag(" = {")]
        for i, member in enumerate(item.members):
            if i:
                frags.append(_Frag(", ", group=group, sep=True))
            text = _set_item(member)
            if isinstance(member, ast.CodeLit) and member.display is not None:
                text += " " + _quote(member.display)
            frags.append(_Frag(text, member.span.start, member.span.end, group=group))
        frags.append(_Frag("}"))
        return _Block("codes", item.span.start, item.span.end, _wrap(_Line(0, frags)))

    def use(self, item: ast.Use) -> _Block:
        name = _quote(item.name) if item.is_file else item.name
        line = _Line(
            0, [_kw("use ", item.span.start), _Frag(name, item.span.end - 1, item.span.end)]
        )
        return _Block("use", item.span.start, item.span.end, [line])

    def criterion(self, item: ast.Criterion) -> _Block:
        start = item.span.start
        text_at = _next_code(self.text, item.id_span.end)
        head = [
            _kw(item.kind.value + " ", start),
            _at(item.id, item.id_span),
            _Frag(" "),
            _Frag(_quote(item.text), text_at, text_at + 1),
        ]
        lines = [_Line(0, head)]
        if item.note is None:
            head.append(_Frag(":"))
        else:
            string = _STRING.match(self.text, text_at)
            note_at = _next_code(self.text, string.end() if string else text_at + 1)
            note_text_at = _next_code(self.text, note_at + len("note"))
            note = [
                _kw("note ", note_at),
                _Frag(_quote(item.note), note_text_at, note_text_at + 1),
                _Frag(":"),
            ]
            lines.append(_Line(2, note))
        lines += self.lines(item.expr, 2)
        return _Block("criterion", start, item.span.end, lines)

    # ---- expressions laid out on lines

    def lines(
        self,
        node: ast.Expr,
        indent: int,
        prefix: list[_Frag] | None = None,
        suffix: list[_Frag] | None = None,
        need: int = 0,
    ) -> list[_Line]:
        """`node` on one line if it fits, else broken at its `and`/`or` operands.

        A node with a comment inside is broken too, so that each comment stays on the line of
        the code it was written beside.
        """
        prefix, suffix = prefix or [], suffix or []
        flat = [*prefix, *self.flat(node, need), *suffix]
        if indent + _width(flat) <= WIDTH and not (
            isinstance(node, ast.Logic | ast.Count | ast.Not) and self._holds_comment(node)
        ):
            return [_Line(indent, flat)]
        match node:
            case ast.Logic():
                if _prec(node) < need or prefix or suffix:
                    return [
                        _Line(indent, [*prefix, _Frag("(")]),
                        *self.chain(node, indent + 2),
                        _Line(indent, [_Frag(")"), *suffix]),
                    ]
                return self.chain(node, indent)
            case ast.Not(operand=ast.Logic() | ast.Count() | ast.Not() as operand):
                word = _kw("not ", node.span.start)
                return self.lines(operand, indent, [*prefix, word], suffix, _NOT)
            case ast.Count():
                return self.count_lines(node, indent, prefix, suffix)
            case ast.Where(window=window, condition=condition) if _prec(node) >= need:
                head = [*prefix, *self.flat(window, _COMPARE), _Frag(" where")]
                return [_Line(indent, head), *self.lines(condition, indent + 2, None, suffix)]
            case ast.If():
                return self.if_lines(node, indent, prefix, suffix, need)
            case ast.Arithmetic() if _prec(node) >= need:
                return self.arithmetic_lines(node, indent, prefix, suffix)
        return _wrap(_Line(indent, flat))

    def arithmetic_lines(
        self, node: ast.Arithmetic, indent: int, prefix: list[_Frag], suffix: list[_Frag]
    ) -> list[_Line]:
        """A long `a * b * c` chain filled onto lines, each next line starting with its operator."""
        level = _prec(node)
        rights: list[tuple[ast.ArithOp, ast.Expr]] = []
        left: ast.Expr = node
        while isinstance(left, ast.Arithmetic) and _prec(left) == level:
            rights.append((left.op, left.right))
            left = left.left
        out = [_Line(indent, [*prefix, *self.flat(left, level)])]
        for op, right in reversed(rights):
            piece = [_Frag(f"{op.value} "), *self.flat(right, level + 1)]
            line = out[-1]
            if len(line.text) + 1 + _width(piece) <= WIDTH:
                line.frags += [_Frag(" "), *piece]
            else:
                out.append(_Line(indent + 2, piece))
        out[-1].frags += suffix
        return out

    def if_lines(
        self, node: ast.If, indent: int, prefix: list[_Frag], suffix: list[_Frag], need: int
    ) -> list[_Line]:
        """`if C` / `then A` / `else B` on their own lines, the branches indented 2."""
        if _prec(node) < need:
            return [
                _Line(indent, [*prefix, _Frag("(")]),
                *self.if_lines(node, indent + 2, [], [], 0),
                _Line(indent, [_Frag(")"), *suffix]),
            ]
        head = [*prefix, _kw("if ", node.span.start)]
        return [
            *self.lines(node.condition, indent, head, None, _OR),
            *self.lines(node.then, indent + 2, [_Frag("then ")], None, _OR),
            *self.lines(node.otherwise, indent + 2, [_Frag("else ")], suffix, _IF),
        ]

    def chain(self, node: ast.Logic, indent: int) -> list[_Line]:
        out: list[_Line] = []
        for i, operand in enumerate(node.operands):
            prefix = [_Frag(f"{node.op.value} ")] if i else []
            out += self.lines(operand, indent, prefix, None, _operand_need(node, operand))
        return out

    def count_lines(
        self, node: ast.Count, indent: int, prefix: list[_Frag], suffix: list[_Frag]
    ) -> list[_Line]:
        head = _kw(f"{node.op.value} {node.n} of (", node.span.start)
        out = [_Line(indent, [*prefix, head])]
        last = len(node.conditions) - 1
        for i, condition in enumerate(node.conditions):
            comma = [_Frag(",")] if i < last else []
            out += self.lines(condition, indent + 2, None, comma)
        out.append(_Line(indent, [_Frag(")"), *suffix]))
        return out

    # ---- expressions on one line

    def flat(self, node: ast.Expr, need: int = 0) -> list[_Frag]:
        """`node` printed on one line, parenthesised if its precedence is below `need`."""
        inner = self._flat(node)
        if _prec(node) < need:
            return [_Frag("("), *inner, _Frag(")")]
        return inner

    def _flat(self, node: ast.Expr) -> list[_Frag]:
        match node:
            case ast.NumberLit(value=v, is_integer=i):
                return [_at(_number(v, i), node.span)]
            case ast.QuantityLit(value=v, unit=u):
                return [_at(f"{_number(v)} {_unit(u)}", node.span)]
            case ast.DurationLit(value=v, word=w):
                return [_at(f"{_number(v)} {w}", node.span)]
            case ast.DateLit(value=v):
                return [_at("@" + v, node.span)]
            case ast.TextLit(value=v):
                return [_at(_quote(v), node.span)]
            case ast.BoolLit(value=v):
                return [_at("true" if v else "false", node.span)]
            case ast.Name(name=name):
                return [_at(name, node.span)]
            case ast.Call(function=function, args=args):
                out = [_at(function, node.name_span), _Frag("(")]
                for i, arg in enumerate(args):
                    if i:
                        out.append(_Frag(", "))
                    out += self.flat(arg)
                return [*out, _Frag(")")]
            case ast.Not(operand=operand):
                return [_kw("not ", node.span.start), *self.flat(operand, _NOT)]
            case ast.Logic(op=op, operands=operands):
                out = []
                for i, operand in enumerate(operands):
                    if i:
                        out.append(_Frag(f" {op.value} "))
                    out += self.flat(operand, _operand_need(node, operand))
                return out
            case ast.Comparison(op=op, left=left, right=right):
                return [*self.flat(left, _SUM), _Frag(f" {op.value} "), *self.flat(right, _SUM)]
            case ast.Between(operand=operand, low=low, high=high):
                return [
                    *self.flat(operand, _SUM),
                    _Frag(" between "),
                    *self.flat(low, _SUM),
                    _Frag(" and "),
                    *self.flat(high, _SUM),
                ]
            case ast.InSet(operand=operand, items=items, negated=negated):
                word = " not in " if negated else " in "
                return [*self.flat(operand, _SUM), _Frag(word), *self.set_(items)]
            case ast.CodeLit() | ast.ValueSetRef():
                return [_at(_set_item(node), node.span)]
            case ast.IsKnown(operand=operand, negated=negated):
                word = " is unknown" if negated else " is known"
                return [*self.flat(operand, _SUM), _Frag(word)]
            case ast.Contains(collection=collection, mode=mode, items=items):
                out = [*self.flat(collection, _SUM), _Frag(f" {mode.value} ")]
                if mode is ast.ContainsMode.ONE or _named_set(items):
                    return [*out, *self.flat(items[0], _SUM)]
                return [*out, *self.set_(items)]
            case ast.Window(series=series, duration=duration, before=before):
                out = [*self.flat(series, _SUM), _Frag(" over last "), *self.flat(duration, _SUM)]
                if before is not None:
                    out += [_Frag(" before "), *self.flat(before, _SUM)]
                return out
            case ast.WindowFromTo(series=series, start=start, end=end):
                return [
                    *self.flat(series, _SUM),
                    _Frag(" from "),
                    *self.flat(start, _SUM),
                    _Frag(" to "),
                    *self.flat(end, _SUM),
                ]
            case ast.Where(window=window, condition=condition):
                return [*self.flat(window, _COMPARE), _Frag(" where "), *self.flat(condition)]
            case ast.IsNever(operand=operand):
                return [*self.flat(operand, _SUM), _Frag(" is never")]
            case ast.AsOf():
                return [_at("as_of", node.span)]
            case ast.ObservationValue():
                return [_at("value", node.span)]
            case ast.Quantified():
                return self._quantified(node)
            case ast.Count(op=op, n=n, conditions=conditions):
                out = [_kw(f"{op.value} {n} of (", node.span.start)]
                for i, condition in enumerate(conditions):
                    if i:
                        out.append(_Frag(", "))
                    out += self.flat(condition)
                return [*out, _Frag(")")]
            case ast.Arithmetic():
                return self._arithmetic(node)
            case ast.Negate(operand=operand):
                sign = "- " if isinstance(operand, ast.Negate) else "-"
                return [_kw(sign, node.span.start), *self.flat(operand, _UNARY)]
            case ast.Each():
                raise AssertionError("`Each` is printed by its quantifier")
            case ast.UnknownLit():
                return [_at("unknown", node.span)]
            case ast.If(condition=condition, then=then, otherwise=otherwise):
                return [
                    _kw("if ", node.span.start),
                    *self.flat(condition, _OR),
                    _Frag(" then "),
                    *self.flat(then, _OR),
                    _Frag(" else "),
                    *self.flat(otherwise, _IF),
                ]
            case ast.Power(base=base, exponent=exponent):
                return [*self.flat(base, _ATOM), _Frag(" ^ "), *self.flat(exponent, _UNARY)]
        raise AssertionError(f"unknown node {node!r}")

    def _quantified(self, node: ast.Quantified) -> list[_Frag]:
        word = node.quantifier.value
        out = [_kw(f"{word}(", node.span.start), *self.flat(node.window), _Frag(")")]
        match node.condition:
            case ast.Comparison(op=op, right=right):
                return [*out, _Frag(f" {op.value} "), *self.flat(right, _SUM)]
            case ast.Between(low=low, high=high):
                return [
                    *out,
                    _Frag(" between "),
                    *self.flat(low, _SUM),
                    _Frag(" and "),
                    *self.flat(high, _SUM),
                ]
            case ast.InSet(items=items, negated=negated):
                word = " not in " if negated else " in "
                return [*out, _Frag(word), *self.set_(items)]
        raise AssertionError(f"unexpected quantified condition {node.condition!r}")

    def _arithmetic(self, node: ast.Arithmetic) -> list[_Frag]:
        """A left-leaning chain `a + b - c` printed without recursing down its left side."""
        level = _prec(node)
        rights: list[tuple[ast.ArithOp, ast.Expr]] = []
        left: ast.Expr = node
        while isinstance(left, ast.Arithmetic) and _prec(left) == level:
            rights.append((left.op, left.right))
            left = left.left
        out = self.flat(left, level)
        for op, right in reversed(rights):
            out += [_Frag(f" {op.value} "), *self.flat(right, level + 1)]
        return out

    def set_(self, items: tuple[ast.Expr, ...]) -> list[_Frag]:
        if _named_set(items):  # `in aki`: a value set by name (docs/language/codes.md)
            return [_at(_set_item(items[0]), items[0].span)]
        group = self._group()
        out = [_Frag("{")]
        for i, item in enumerate(items):
            if i:
                out.append(_Frag(", ", group=group, sep=True))
            text = _set_item(item)
            out.append(_Frag(text, item.span.start, item.span.end, group=group))
        return [*out, _Frag("}")]


def _core_start(node: ast.Expr) -> int:
    """Where the first token of `node` starts, not counting parentheses around its first operand."""
    match node:
        case ast.Logic(operands=operands):
            return _core_start(operands[0])
    return node.span.start


def _core_end(node: ast.Expr) -> int:
    """Where the last token of `node` ends, not counting parentheses around its last operand."""
    match node:
        case ast.Logic(operands=operands):
            return _core_end(operands[-1])
        case ast.Not(operand=operand):
            return _core_end(operand)
    return node.span.end


def _set_item(item: ast.Expr) -> str:
    match item:
        case ast.NumberLit(value=v, is_integer=i):
            return _number(v, i)
        case ast.QuantityLit(value=v, unit=u):
            return f"{_number(v)} {_unit(u)}"
        case ast.DurationLit(value=v, word=w):
            return f"{_number(v)} {w}"
        case ast.TextLit(value=v):
            return _quote(v)
        case ast.Name(name=name) | ast.ValueSetRef(name=name):
            return name
        case ast.CodeLit(system=system, code=code, descendants=star):
            return f"{system}#{code}" + ("*" if star else "")
    raise AssertionError(f"unexpected set item {item!r}")


def _named_set(items: tuple[ast.Expr, ...]) -> bool:
    return len(items) == 1 and isinstance(items[0], ast.ValueSetRef)


def _wrap(line: _Line) -> list[_Line]:
    """Break a line that passes `WIDTH` inside its first fill group, aligned under the group."""
    if len(line.text) <= WIDTH:
        return [line]
    group = next((f.group for f in line.frags if f.group is not None), None)
    if group is None:
        return [line]
    first = next(i for i, f in enumerate(line.frags) if f.group == group)
    column = line.indent + _width(line.frags[:first])
    out = [_Line(line.indent, [])]
    col = line.indent
    frags = line.frags
    for i, frag in enumerate(frags):
        if frag.sep and frag.group == group:
            upto = next(
                (j for j in range(i + 1, len(frags)) if frags[j].sep and frags[j].group == group),
                None,
            )
            rest = frags[i + 1 : upto] if upto is not None else frags[i + 1 :]
            if col + len(frag.text) + _width(rest) > WIDTH:
                out[-1].frags.append(_Frag(","))
                out.append(_Line(column, []))
                col = column
                continue
        out[-1].frags.append(frag)
        col += len(frag.text)
    return out


# --------------------------------------------------------------------------- assembly


class _Assembler:
    """Places comments and blank lines around the printed blocks, then renders the text."""

    def __init__(self, source: Source, blocks: list[_Block], comments: list[_Comment]) -> None:
        self.source = source
        self.text = source.text
        self.blocks = blocks
        self.gaps: dict[int, list[_Comment]] = {}  # block index (len = end) -> own-line comments
        ranged = [
            (frag, line)
            for block in blocks
            for line in block.lines
            for frag in line.frags
            if frag.start is not None
        ]
        self.by_start = sorted(ranged, key=lambda pair: pair[0].start)  # type: ignore[arg-type]
        for comment in comments:
            self._place(comment)

    def _place(self, comment: _Comment) -> None:
        if not comment.own_line:
            q = _last_code(self.text, comment.start)
            line = self._line_before(q)
            if line is not None:
                line.after.append(comment.text)
                return
        index = next((i for i, b in enumerate(self.blocks) if comment.start < b.end), None)
        block = self.blocks[index] if index is not None else None
        if block is not None and block.start < comment.start:
            r = _next_code(self.text, comment.start)
            line = self._line_after(r, block)
            if line is not None:
                line.before.append(comment.text)
                return
        self.gaps.setdefault(len(self.blocks) if index is None else index, []).append(comment)

    def _line_before(self, q: int) -> _Line | None:
        best = None
        for frag, line in self.by_start:
            if frag.start > q:  # type: ignore[operator]
                break
            best = line
        return best

    def _line_after(self, r: int, block: _Block) -> _Line | None:
        candidates = [
            (frag.start, line)
            for line in block.lines
            for frag in line.frags
            if frag.end is not None and frag.end > r
        ]
        return min(candidates, key=lambda c: c[0])[1] if candidates else None

    # ---- blank lines

    def _blank_between(self, a: int, b: int) -> bool:
        """Whether the source has an empty line between offsets `a` and `b`."""
        first = self.source.position(a)[0]
        last = self.source.position(b)[0]
        return any(not self.source.line_text(n).strip() for n in range(first + 1, last))

    def _gap(self, index: int, out: list[str]) -> None:
        """Blank lines and own-line comments before block `index` (or the end of the file)."""
        prev = self.blocks[index - 1] if index > 0 else None
        nxt = self.blocks[index] if index < len(self.blocks) else None
        comments = self.gaps.get(index, [])
        prev_end = prev.end if prev else 0
        next_start = nxt.start if nxt else len(self.text)
        first_start = comments[0].start if comments else next_start
        if prev is None:
            blank = False
        elif nxt is None or (prev.kind == nxt.kind and prev.kind in ("fact", "use", "codes")):
            blank = bool(comments) and self._blank_between(prev_end, first_start)
        else:
            blank = True
        if prev is not None and nxt is None and not comments:
            return
        if blank and out:
            out.append("")
        for i, comment in enumerate(comments):
            if i and self._blank_between(comments[i - 1].start, comment.start):
                out.append("")
            out.append(comment.text)
        if comments and nxt is not None and self._blank_between(comments[-1].start, next_start):
            out.append("")

    def render(self) -> str:
        out: list[str] = []
        for index, block in enumerate(self.blocks):
            self._gap(index, out)
            for line in block.lines:
                pad = " " * line.indent
                out += [pad + comment for comment in line.before]
                text = line.text.rstrip()
                if line.after:
                    text += "  " + " ".join(line.after)
                out.append(text)
        self._gap(len(self.blocks), out)
        while out and not out[-1]:
            out.pop()
        return "\n".join(out) + "\n" if out else ""
