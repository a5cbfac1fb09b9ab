r"""Syntax errors in words an author understands: Lark's exceptions -> diagnostics.

Used by `parser`. Says what was expected as words or literals (`expected \`:\` after the
criterion text`), never terminal names, and recognises the common mistakes (`==`, `=<`,
`between` without `and`, chained comparisons, a window compared without an aggregate).
"""

from __future__ import annotations

import re
import unicodedata

import lark
from lark import Token, Tree

from ._grammar import parser as _lark_parser
from .diagnostics import Diagnostic, error
from .source import Source, Span
from .suggestions import closest

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_REGEX_TERMINALS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a text in double quotes",
    "UNIT": "a unit in single quotes such as `'mg/dL'`",
    "DATE": "a date such as `@2026-03-01`",
    "TIME_WORD": "a time unit such as `days`",
    "CODE": "a code such as `LOINC#2160-0`",
    "$END": "the end of the file",
}
_COMPARISONS = {"LT", "LE", "GT", "GE", "EQ", "NE", "BETWEEN", "IN", "IS", "CONTAINS", "OVER"}
_ARITHMETIC = {"PLUS", "MINUS", "STAR", "SLASH"}
_VALUE_START = {"NAME", "NUMBER", "LPAR", "NOT", "TRUE", "FALSE", "STRING", "DATE", "AT"}
_VALUE_START |= {"AS_OF", "VALUE"}  # time, second edition
_VALUE_START |= {"CODE"}  # terminology (docs/language/codes.md)
_EXPRESSION_START = _VALUE_START | {"IF", "UNKNOWN"}  # `if` and `unknown` are reserved words
_ITEM_KEYWORDS = {"FACT", "DEFINE", "INCLUSION", "EXCLUSION", "USE", "CODES"}


#: Abbreviations authors write for the duration words.
_TIME_ABBREVIATIONS = {
    "y": "years", "yr": "years", "yrs": "years", "yo": "years",
    "mon": "months", "mos": "months", "mths": "months",
    "w": "weeks", "wk": "weeks", "wks": "weeks",
    "d": "days",
    "h": "hours", "hr": "hours", "hrs": "hours",
    "min": "minutes", "mins": "minutes",
}  # fmt: skip
_CRITERION_WORDS = ("criterion", "criteria", "include", "exclude", "inclusions", "exclusions")


def misspelt_duration(exc: lark.UnexpectedInput, source: Source) -> tuple[Diagnostic, str] | None:
    """A number followed by a misspelt duration word (`18 yeers`): PR110 with a did-you-mean.

    Returns the diagnostic and the text with the word replaced by a duration word of the same
    length or less (positions unchanged), so that parsing goes on and the file's other errors,
    syntax or not, are reported too. None when this is not such a mistake.
    """
    if not isinstance(exc, lark.UnexpectedToken) or exc.token.type != "NAME":
        return None
    stack = exc.interactive_parser.parser_state.value_stack if exc.interactive_parser else []
    if "TIME_WORD" not in exc.expected or _last_type(stack) != "NUMBER":
        return None
    token = exc.token
    word = str(token)
    fix = _TIME_ABBREVIATIONS.get(word.lower()) or closest(word, _TIME_WORD_LIST)
    if fix is None:
        return None
    text = source.text
    gap = token.start_pos - stack[-1].end_pos  # the spaces between the number and the word
    room = len(word) + gap
    stand_in = next((w for w in (fix, "days", "day") if len(w) <= room), None)
    if stand_in is None:
        return None
    start = stack[-1].end_pos
    patched = text[:start] + stand_in.ljust(room) + text[token.end_pos :]
    diagnostic = error(
        "PR110",
        f"`{word}` is not a duration word",
        source.span(token.start_pos, token.end_pos),
        label=f"did you mean `{fix}`?",
        help="a duration is a number and one of `years`, `months`, `weeks`, `days`, `hours` or "
        f"`minutes`: `{stack[-1]} {fix}`",
    )
    return diagnostic, patched


_TIME_WORD_LIST = [
    "year", "years", "month", "months", "week", "weeks", "day", "days",
    "hour", "hours", "minute", "minutes",
]  # fmt: skip


def describe(exc: lark.UnexpectedInput, source: Source) -> Diagnostic:
    if isinstance(exc, lark.UnexpectedCharacters):
        return _bad_character(exc, source)
    if isinstance(exc, lark.UnexpectedToken):
        return _bad_token(exc, source)
    if isinstance(exc, lark.UnexpectedEOF):  # pragma: no cover - LALR reports $END tokens
        end = len(source.text)
        return error("PR103", "unexpected end of file", source.span(end, end))
    raise AssertionError(exc)  # pragma: no cover


def _bad_character(exc: lark.UnexpectedCharacters, source: Source) -> Diagnostic:
    pos = exc.pos_in_stream
    char = source.text[pos]
    if char in "\"'":
        line_end = source.text.find("\n", pos)
        line_end = len(source.text) if line_end < 0 else line_end
        what = "text" if char == '"' else "unit"
        return error(
            "PR104",
            f"unterminated {what}: the closing `{char}` is missing",
            source.span(pos, line_end),
            label=f"this {what} is not closed on this line",
            help=f"close it with `{char}` on the same line",
        )
    if char == "@":
        return error(
            "PR108",
            "malformed date",
            source.span(pos, _word_end(source.text, pos)),
            help="write a date as `@2026-03-01` or a datetime as `@2026-03-01T08:00`",
        )
    if not char.isascii() and (char.isalpha() or char == "_"):
        return _non_ascii_name(source, pos)
    if char == "&" or char == "|":
        word = "and" if char == "&" else "or"
        return error(
            "PR102",
            f"unexpected character `{char}`",
            source.span(pos, pos + 1),
            help=f"write `{word}` to combine conditions",
        )
    return error(
        "PR102",
        f"unexpected character `{char}`",
        source.span(pos, pos + 1),
        label="not part of the rules language",
        help=_expected_help(exc.allowed) if exc.allowed else None,
    )


def _non_ascii_name(source: Source, pos: int) -> Diagnostic:
    """`âge`, `café_au_lait`: names are ASCII; suggest the word without its accents."""
    text = source.text
    start, end = pos, pos + 1
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    word = text[start:end]
    ascii_word = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode()
    ascii_word = re.sub(r"[^A-Za-z0-9_]", "_", ascii_word).strip("_")
    suggestion = f"write `{ascii_word}`" if _NAME_RE.match(ascii_word) else "rename it"
    return error(
        "PR102",
        f"names are written in ASCII letters, digits and `_`; `{word}` is not",
        source.span(pos, pos + 1),
        label="not an ASCII letter",
        help=f"{suggestion}; the protocol's own wording belongs in the criterion text or the "
        "fact's description, which may use any character",
    )


def _word_end(text: str, pos: int) -> int:
    end = pos + 1
    while end < len(text) and not text[end].isspace() and text[end] not in "(){},":
        end += 1
    return end


def _bad_token(exc: lark.UnexpectedToken, source: Source) -> Diagnostic:
    token = exc.token
    expected = set(exc.expected)
    stack = exc.interactive_parser.parser_state.value_stack if exc.interactive_parser else []
    calc = _calculation_syntax(token, expected, source, stack)
    if calc:
        return calc
    if token.type == "$END":
        end = len(source.text.rstrip())
        return error(
            "PR103",
            "unexpected end of file",
            source.span(end, end),
            label=f"expected {_describe_expected(expected)}",
            help=_end_help(expected),
        )
    span = source.span(token.start_pos, token.end_pos)
    bad_op = _bad_operator(token, source)
    if bad_op:
        return bad_op
    stack = exc.interactive_parser.parser_state.value_stack if exc.interactive_parser else []
    found = _describe_token(token)
    clause = _current_clause(stack)
    if token.type in _ITEM_KEYWORDS and "NUMBER" in expected:
        return error(
            "PR101",
            f"the expression ends early: expected an expression before {found}",
            _previous_token_span(stack, source) or span,
            label="needs something after it",
            help="complete the condition, or remove the dangling operator",
        )
    if token.type in _COMPARE_TOKENS and _has_tree(clause, "compare_op"):
        return error(
            "PR101",
            f"comparisons do not chain: found a second {found}",
            span,
            help="write `1 < n and n < 3`, or `n between LOW and HIGH` (inclusive)",
        )
    if token.type in _COMPARE_TOKENS and _stack_has(clause, "OVER"):
        return error(
            "PR307",
            "a window must be read by an aggregate or a quantifier before it is compared",
            span,
            help="write e.g. `max(serum_creatinine over last 48 hours) > …` or `any(…) > …`",
        )
    never = _never_as_a_value(token, stack, span)
    if never:
        return never
    keyword = token.type not in _VALUE_START | {"ANY", "ALL"}
    if token.type == "IF" and "NUMBER" in expected:  # `a or if …`: `if` binds loosest of all
        return error(
            "PR101",
            "an `if … then … else …` inside another expression is written in parentheses",
            span,
            label="put this `if` in parentheses",
            help="write e.g. `a or (if b then c else d)`; without parentheses `if` starts a "
            "criterion's whole condition",
        )
    if "NAME" in expected and keyword and _NAME_RE.match(str(token)):
        return error(
            "PR106",
            f"`{token}` is a reserved word and cannot be used as a name",
            span,
            help=f"choose another name, such as `{token}_value`",
        )
    if "AND" in expected and _open_between(stack):
        return error(
            "PR101",
            f"`between` needs `and` between its bounds, found {found}",
            span,
            label="expected `and` here",
            help="write `X between LOW and HIGH`, e.g. `age between 18 years and 65 years`",
        )
    if "COLON" in expected and _last_type(stack) == "NAME" and _stack_has(stack, "FACT"):
        return error(
            "PR101",
            f"expected `:` after the fact name, found {found}",
            span,
            help="declare a fact as `fact NAME: TYPE`, e.g. `fact age: quantity 'a'`",
        )
    if "COLON" in expected and expected <= {"COLON", "NOTE"}:
        return error(
            "PR101",
            f"expected `:` after the criterion text, found {found}",
            span,
            label="expected `:` before this",
            help='end the criterion header with `:`, e.g. `inclusion I2 "Age 18-65": …`',
        )
    if token.type == "UNIT" and "UNIT" not in expected:
        return _single_quotes(token, expected, span)
    if token.type == "NAME" and expected >= _ITEM_KEYWORDS and _at_line_start(token, source):
        return _not_an_item(token, span, expected)
    return error(
        "PR101",
        f"expected {_describe_expected(expected)}, found {found}",
        span,
        help=_expected_help(expected),
    )


def _single_quotes(token: Token, expected: set[str], span: Span) -> Diagnostic:
    """`title 'y'`, `cause = 'septic'`: single quotes make a unit; text takes double quotes."""
    body = str(token)[1:-1]
    if "STRING" in expected or expected & _EXPRESSION_START >= {"NAME", "NUMBER"}:
        fix = '"' + body.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return error(
            "PR101",
            f"text is written in double quotes, found `{token}` in single quotes",
            span,
            label="single quotes make a unit",
            help=f"write `{fix}`; a unit follows a number directly: `25000 '/uL'`",
        )
    return error(
        "PR101",
        f"expected {_describe_expected(expected)}, found unit `{token}`",
        span,
        help="a unit follows a number directly: `25000 '/uL'`",
    )


def _at_line_start(token: Token, source: Source) -> bool:
    line_start = source.text.rfind("\n", 0, token.start_pos) + 1
    return not source.text[line_start : token.start_pos].strip()


def _not_an_item(token: Token, span: Span, expected: set[str]) -> Diagnostic:
    """`criterion I1 …`, `inclusoin I1 …`: a line that does not start with an item keyword."""
    word = str(token)
    keywords = ["inclusion", "exclusion", "fact", "define"]
    if word.lower() in _CRITERION_WORDS:
        help_ = (
            'a criterion starts with `inclusion` or `exclusion`: `inclusion I1 "…": …` '
            'or `exclusion E1 "…": …`'
        )
    else:
        match = closest(word, keywords)
        help_ = (
            f"did you mean `{match}`?"
            if match
            else "every item starts with `fact`, `define`, `inclusion` or `exclusion`"
        )
    return error(
        "PR101",
        f"expected {_describe_expected(expected)}, found name `{word}`",
        span,
        label="not an item keyword",
        help=help_,
    )


def _calculation_syntax(
    token: Token, expected: set[str], source: Source, stack: list[object]
) -> Diagnostic | None:
    """`**` for a power (PR130); an `if` without its `then` or `else` (PR131)."""
    if token.type == "STAR" and token.start_pos and source.text[token.start_pos - 1] == "*":
        return error(
            "PR130",
            "`**` is not an operator",
            source.span(token.start_pos - 1, token.end_pos),
            help="write `^` for a power: `height ^ 2`",
        )
    missing = next((word for word in ("THEN", "ELSE") if word in expected), None)
    if (
        missing is None
        or _last_type_of(stack, {"IF", "THEN"}) != {"THEN": "IF", "ELSE": "THEN"}[missing]
    ):
        return None  # LALR lookaheads may list `then` outside an open `if`
    misplaced = token.type in _EXPRESSION_START | _ITEM_KEYWORDS | {"$END", "RPAR", "COMMA"}
    if not misplaced and len(expected - {"THEN", "ELSE"}) > 12:
        return None
    word = missing.lower()
    at_end = token.type == "$END"
    end = len(source.text.rstrip())
    return error(
        "PR131",
        f"`if` needs `{word}`" + ("" if at_end else f", found {_describe_token(token)}"),
        source.span(end, end) if at_end else source.span(token.start_pos, token.end_pos),
        label=f"expected `{word}` here",
        help="write `if C then A else B`; when there is no value otherwise, `else unknown`",
    )


def _last_type_of(stack: list[object], types: set[str]) -> str | None:
    """The type of the last token of `types` on the parser stack (an open `if` or `then`)."""
    for value in reversed(stack):
        if isinstance(value, Token) and value.type in types:
            return value.type
    return None


def _never_as_a_value(token: Token, stack: list[object], span: Span) -> Diagnostic | None:
    """`last_dialysis = never`: `never` is tested with `is never`, not compared with."""
    if token.type != "NEVER":
        return None
    last = stack[-1] if stack else None
    compared = isinstance(last, Tree) and last.data == "compare_op"
    if not compared and _last_type(stack) not in ("LT", "LE", "GT", "GE", "EQ", "NE"):
        return None
    return error(
        "PR120",
        "`never` is not a value to compare with",
        span,
        label="test it with `is never`",
        help="test a fact declared `date or never` with `is never`, e.g. `last_dialysis is never`"
        ", or `not (last_dialysis is never)` for `!= never`",
    )


def _bad_operator(token: Token, source: Source) -> Diagnostic | None:
    """`==`, `=<`, `=>` and `<>` are lexed as two operators; say what to write instead."""
    if token.type not in {"EQ", "LT", "GT"} or token.start_pos == 0:
        return None
    pair = source.text[token.start_pos - 1 : token.end_pos]
    fix = {"==": "=", "=<": "<=", "=>": ">=", "<>": "!="}.get(pair)
    if fix is None:
        return None
    return error(
        "PR105",
        f"`{pair}` is not an operator",
        source.span(token.start_pos - 1, token.end_pos),
        help=f"write `{fix}`",
    )


_COMPARE_TOKENS = {"LT", "LE", "GT", "GE", "EQ", "NE", "BETWEEN", "IN"}
_CLAUSE_START = {"AND", "OR", "NOT", "COLON", "LPAR", "COMMA", "EQ", "LBRACE"}


def _current_clause(stack: list[object]) -> list[object]:
    """The values on the parser stack since the last `and`, `or`, `(`, `:` …"""
    for n in range(len(stack) - 1, -1, -1):
        value = stack[n]
        if isinstance(value, Token) and value.type in _CLAUSE_START:
            return stack[n + 1 :]
    return list(stack)


def _has_tree(values: list[object], name: str) -> bool:
    return any(isinstance(v, Tree) and v.data == name for v in values)


def _previous_token_span(stack: list[object], source: Source) -> Span | None:
    last = stack[-1] if stack else None
    if isinstance(last, Token) and last.start_pos is not None:
        return source.span(last.start_pos, last.end_pos)
    return None


def _open_between(stack: list[object]) -> bool:
    depth = 0
    for value in reversed(stack):
        if isinstance(value, Token):
            if value.type == "AND":
                depth += 1
            elif value.type == "BETWEEN":
                if depth == 0:
                    return True
                depth -= 1
    return False


def _last_type(stack: list[object]) -> str | None:
    last = stack[-1] if stack else None
    return last.type if isinstance(last, Token) else None


def _stack_has(stack: list[object], token_type: str) -> bool:
    return any(isinstance(v, Token) and v.type == token_type for v in stack)


def _describe_token(token: Token) -> str:
    value = str(token)
    if len(value) > 40:
        value = value[:37] + "..."
    kinds = {"NAME": "name", "NUMBER": "number", "STRING": "text", "UNIT": "unit", "DATE": "date"}
    kind = kinds.get(token.type)
    return f"{kind} `{value}`" if kind else f"`{value}`"


def _terminal_words(name: str) -> str:
    if name in _REGEX_TERMINALS:
        return _REGEX_TERMINALS[name]
    for terminal in _lark_parser().terminals:
        if terminal.name == name:
            return f"`{terminal.pattern.value}`"
    return name.lower()  # pragma: no cover - every terminal is named above or a string


def _describe_expected(expected: set[str]) -> str:
    expected = set(expected)
    words: list[str] = []
    if expected & _EXPRESSION_START >= {"NAME", "NUMBER", "LPAR"}:
        words.append("an expression")
        expected -= _EXPRESSION_START | {"MINUS", "ANY", "ALL"}
    if len(expected & _COMPARISONS) >= 3:
        words.append("a comparison such as `<` or `between`")
        expected -= _COMPARISONS
    if len(expected & _ARITHMETIC) >= 3:
        words.append("an operator such as `+` or `*`")
        expected -= _ARITHMETIC
    if {"AND", "OR"} <= expected:
        words.append("`and` or `or`")
        expected -= {"AND", "OR"}
    if len(expected & _ITEM_KEYWORDS) >= 3:
        words.append("a new `fact`, `define` or criterion")
        expected -= _ITEM_KEYWORDS | {"$END"}
    words.extend(sorted(_terminal_words(name) for name in expected))
    if len(words) > 6:
        words = [*words[:6], "…"]
    if len(words) <= 1:
        return words[0] if words else "something else"
    return ", ".join(words[:-1]) + " or " + words[-1]


def _expected_help(expected: set[str] | frozenset[str]) -> str | None:
    if {"NAME", "NUMBER"} <= set(expected):
        return "an expression is a fact name, a number, a quantity like `40 '%'`, or a call"
    return None


def _end_help(expected: set[str]) -> str | None:
    if "RPAR" in expected:
        return "a `(` is not closed: add `)`"
    if "RBRACE" in expected:
        return "a `{` is not closed: add `}`"
    if {"NAME", "NUMBER"} <= expected:
        return "the file ends in the middle of an expression"
    return None
