"""Syntax highlighting: a Pygments lexer for ``.rules`` files, outside the evaluation pipeline.

Registered as the Pygments lexer ``rules`` through the ``pygments.lexers`` entry point, so
that the docs site (and any Pygments user) highlights ```` ```rules ```` blocks once the package
is installed. It imports nothing but Pygments and mirrors ``grammars/protocol_rules.lark``:
keep the word lists below in step with the grammar's reserved words.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, include, words
from pygments.token import (
    Comment,
    Error,
    Keyword,
    Literal,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

__all__ = ["RulesLexer"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_END = r"(?![A-Za-z0-9_])"

#: Words that start an item or a criterion's note.
DECLARATIONS = ("protocol", "fact", "define", "inclusion", "exclusion", "note", "use", "codes")
#: The types of a fact declaration.
TYPES = (
    "boolean",
    "integer",
    "number",
    "quantity",
    "datetime",
    "date",
    "text",
    "series",
    "set",
    "code",
)
#: A code: `LOINC#2160-0`, `ICD10CM#N17*` (docs/language/codes.md); it outranks a `#` comment.
CODE = r"([A-Za-z][A-Za-z0-9_]*)(#)([A-Za-z0-9][A-Za-z0-9.\-]*)(\*?)"
#: Reserved words of expressions and fact options.
KEYWORDS = (
    "between",
    "in",
    "is",
    "known",
    "unknown",
    "contains",
    "any",
    "all",
    "of",
    "over",
    "last",
    "at",
    "least",
    "most",
    "one",
    "range",
    "to",
    "molar_mass",
    "if",
    "then",
    "else",
    # time, second edition
    "before",
    "from",
    "where",
    "never",
    "past",
)
#: Words that stand for a value: the evaluation time, the observation a `where` tests.
PSEUDO_VALUES = ("as_of", "value")
#: Logical operators.
LOGIC = ("and", "or", "not")
#: The built-in functions, highlighted where they are called.
FUNCTIONS = (
    "max",
    "min",
    "mean",
    "sum",
    "latest",
    "earliest",
    "count",
    "exists",
    "time_since",
    # calculation (docs/language/calculation.md)
    "first_known",
    "ln",
    "log10",
    "exp",
    "sqrt",
    "abs",
    "round",
    "first_time",
    "last_time",
    "consecutive",
)
#: The words that make a number a duration (`48 hours`).
TIME_WORDS = r"(?:years?|months?|weeks?|days?|hours?|minutes?)"


class RulesLexer(RegexLexer):
    """Lexer for the protocol-rules language (clinical-trial eligibility criteria)."""

    name = "Rules"
    aliases = ["rules"]  # noqa: RUF012 - Pygments reads class attributes
    filenames = ["*.rules"]  # noqa: RUF012
    mimetypes = ["text/x-protocol-rules"]  # noqa: RUF012

    tokens = {  # noqa: RUF012
        "root": [
            include("space"),
            # `protocol NCT04194671` opens the header: `key "value"` lines follow.
            (
                rf"(protocol)(\s+)({_NAME}|\"(?:[^\"\\\n]|\\.)*\")",
                bygroups(Keyword.Declaration, Whitespace, Name.Namespace),
                "header",
            ),
            (
                rf"(inclusion|exclusion)(\s+)({_NAME})",
                bygroups(Keyword.Declaration, Whitespace, Name.Label),
            ),
            (rf"(fact)(\s+)({_NAME})", bygroups(Keyword.Declaration, Whitespace, Name.Variable)),
            (rf"(define)(\s+)({_NAME})", bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (rf"(codes)(\s+)({_NAME})", bygroups(Keyword.Declaration, Whitespace, Name.Constant)),
            (
                rf"(use)(\s+)({_NAME}|\"(?:[^\"\\\n]|\\.)*\")",
                bygroups(Keyword.Namespace, Whitespace, Name.Namespace),
            ),
            (words(DECLARATIONS, suffix=_END), Keyword.Declaration),
            include("expression"),
        ],
        "header": [
            include("space"),
            (rf"(?=(?:fact|define|inclusion|exclusion|use|codes){_END})", Whitespace, "#pop"),
            (
                rf"({_NAME})(\s+)(\"(?:[^\"\\\n]|\\.)*\")",
                bygroups(Name.Attribute, Whitespace, String.Double),
            ),
            (r"", Whitespace, "#pop"),
        ],
        "space": [
            (r"\s+", Whitespace),
            (r"#.*?$", Comment.Single),
        ],
        "expression": [
            (CODE, bygroups(Name.Namespace, Punctuation, String.Symbol, Operator)),
            (r'"(?:[^"\\\n]|\\.)*"', String.Double),
            (r"'[^'\n]*'", String.Other),  # a UCUM unit
            (
                r"@[0-9]{4}-[0-9]{2}-[0-9]{2}"
                r"(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?",
                Literal.Date,
            ),
            (
                rf"([0-9][0-9_]*(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)(\s+)({TIME_WORDS}){_END}",
                bygroups(Number, Whitespace, Keyword.Pseudo),
            ),
            (r"[0-9][0-9_]*(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)", Number.Float),
            (r"[0-9][0-9_]*", Number.Integer),
            (words(TYPES, suffix=_END), Keyword.Type),
            (words(LOGIC, suffix=_END), Operator.Word),
            (words(("true", "false"), suffix=_END), Keyword.Constant),
            (words(KEYWORDS, suffix=_END), Keyword),
            (words(PSEUDO_VALUES, suffix=_END), Name.Builtin.Pseudo),
            (rf"{TIME_WORDS}{_END}", Keyword.Pseudo),
            (words(FUNCTIONS, suffix=r"(?=\s*\()"), Name.Builtin),
            (rf"{_NAME}(?=\s*\()", Name.Function),  # a call of a function of the rules
            (_NAME, Name),
            (r"<=|>=|!=|[<>=+\-*/^]", Operator),
            (r"[(){},:]", Punctuation),
            (r"'[^'\n]*$", String.Other),  # an unterminated unit: keep going
            (r'"[^"\n]*$', String.Double),  # an unterminated text: keep going
            (r"[^\s]", Error),  # not part of the language (`&`, `|`, `;`, …)
        ],
    }
