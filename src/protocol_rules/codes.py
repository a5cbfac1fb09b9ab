"""Terminology: code systems, the syntax of their codes, and value-set matching.

Beside the pipeline, used by the checker (code literals and value sets), by patient input
(codes in records), by the engines (matching) and by the data sources (OMOP vocabularies, FHIR
coding systems). Imports nothing heavy.

A code is written ``SYSTEM#code`` (``LOINC#2160-0``, ``ICD10CM#N17.9``); that text is also its
one canonical value everywhere: in a normalised patient, in a polars column, in a trace. A
*member* of a value set is a code, or a code followed by ``*``: the code and every code below it.
Below means, per system (`System.hierarchy`):

- ``prefix`` (ICD-10-CM, ICD-10, ICD-9-CM, ICD-10-PCS, ATC): the code structure is the
  hierarchy, so ``ICD10CM#N17*`` matches every code that starts with ``N17``;
- ``terminology`` (SNOMED CT, RxNorm, OMOP concepts): a hierarchy of concepts that only a
  terminology knows (an OMOP vocabulary's CONCEPT_ANCESTOR, for one); without one, the member
  matches its own code (and the checker says so, PR344);
- ``none`` (LOINC, CPT, NDC): codes have no descendants; ``*`` adds nothing (PR343).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from attrs import frozen

from .suggestions import closest

__all__ = [
    "SYSTEMS",
    "CodeMatcher",
    "Member",
    "StaticTerminology",
    "System",
    "Terminology",
    "ValueSet",
    "canonical",
    "code_problem",
    "parse_member",
    "split",
    "system_named",
]


@frozen
class System:
    """A code system: its name in rules files, its FHIR URI, and the syntax of its codes."""

    name: str
    title: str
    uri: str | None
    pattern: str  # a regular expression a code must match entirely
    example: str
    hierarchy: str  # "prefix", "terminology" or "none" (module docstring)
    aliases: tuple[str, ...] = ()  # other spellings: OMOP vocabulary ids, other URIs
    normalise: Callable[[str], str] | None = None  # for codes in patient data (ICD: dots)
    check: Callable[[str], str | None] | None = None  # a check digit, beyond the pattern


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _loinc_check(code: str) -> str | None:
    """LOINC's last digit is a mod-10 (Luhn) check digit of the digits before the hyphen."""
    body, _, digit = code.partition("-")
    if not _luhn_ok(body + digit):
        return "its check digit is wrong"
    return None


_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def _snomed_check(code: str) -> str | None:
    """A SNOMED CT identifier ends with a Verhoeff check digit after a partition identifier."""
    c = 0
    for i, char in enumerate(reversed(code)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[i % 8][int(char)]]
    if c != 0:
        return "its check digit is wrong"
    if code[-3:-1] not in ("00", "10"):
        return "it is not a concept identifier (partition `00` or `10`)"
    return None


def _dotted(after: int) -> Callable[[str], str]:
    """ICD codes in data often come without their dot (`N179`): put it back, upper case."""

    def normalise(code: str) -> str:
        code = code.strip().upper()
        if "." not in code and len(code) > after:
            code = code[:after] + "." + code[after:]
        return code

    return normalise


def _icd9(code: str) -> str:
    code = code.strip().upper()
    return _dotted(4 if code.startswith("E") else 3)(code)


def _upper(code: str) -> str:
    return code.strip().upper()


def _stripped(code: str) -> str:
    return code.strip()


#: The code systems a rules file may name, by name.
SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        System(
            "LOINC",
            "LOINC",
            "http://loinc.org",
            r"[0-9]{1,7}-[0-9]",
            "2160-0",
            "none",
            ("LNC",),
            _stripped,
            _loinc_check,
        ),
        System(
            "SNOMED",
            "SNOMED CT",
            "http://snomed.info/sct",
            r"[1-9][0-9]{5,17}",
            "14669001",
            "terminology",
            ("SNOMEDCT", "SNOMED CT", "SCT", "SNOMEDCT_US"),
            _stripped,
            _snomed_check,
        ),
        System(
            "ICD10CM",
            "ICD-10-CM",
            "http://hl7.org/fhir/sid/icd-10-cm",
            r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?",
            "N17.9",
            "prefix",
            ("ICD-10-CM",),
            _dotted(3),
        ),
        System(
            "ICD10",
            "ICD-10 (WHO)",
            "http://hl7.org/fhir/sid/icd-10",
            r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,2})?",
            "N17.9",
            "prefix",
            ("ICD-10",),
            _dotted(3),
        ),
        System(
            "ICD9CM",
            "ICD-9-CM",
            "http://hl7.org/fhir/sid/icd-9-cm",
            r"([0-9]{3}|V[0-9]{2}|E[0-9]{3})(\.[0-9]{1,2})?",
            "584.9",
            "prefix",
            ("ICD-9-CM",),
            _icd9,
        ),
        System(
            "ICD10PCS",
            "ICD-10-PCS",
            "http://www.cms.gov/Medicare/Coding/ICD10",
            r"[0-9A-HJ-NP-Z]{1,7}",
            "5A1955Z",
            "prefix",
            ("ICD-10-PCS",),
            _upper,
        ),
        System(
            "RXNORM",
            "RxNorm",
            "http://www.nlm.nih.gov/research/umls/rxnorm",
            r"[1-9][0-9]{0,8}",
            "241834",
            "terminology",
            ("RxNorm", "RXNORM EXTENSION"),
            _stripped,
        ),
        System(
            "ATC",
            "Anatomical Therapeutic Chemical classification",
            "http://www.whocc.no/atc",
            r"[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?",
            "L04AD01",
            "prefix",
            (),
            _upper,
        ),
        System(
            "CPT",
            "CPT",
            "http://www.ama-assn.org/go/cpt",
            r"[0-9]{4}[0-9A-Z]",
            "94002",
            "none",
            ("CPT4",),
            _upper,
        ),
        System(
            "NDC",
            "National Drug Code",
            "http://hl7.org/fhir/sid/ndc",
            r"[0-9]{4,5}-[0-9]{3,4}-[0-9]{1,2}|[0-9]{10,11}",
            "0093-7180-56",
            "none",
            (),
            _stripped,
        ),
        System(
            "OMOP",
            "OMOP standardized vocabularies (concept_id)",
            None,
            r"[1-9][0-9]{0,10}",
            "3016723",
            "terminology",
            ("CONCEPT_ID",),
            _stripped,
        ),
    )
}

_BY_ALIAS: dict[str, System] = {}
for _system in SYSTEMS.values():
    for _alias in (_system.name, *_system.aliases, _system.uri or ""):
        if _alias:
            _BY_ALIAS[_alias.upper()] = _system
_PATTERNS = {name: re.compile(s.pattern) for name, s in SYSTEMS.items()}


def system_named(name: str) -> System | None:
    """The system a rules file, a patient record or a data source names: its name (`LOINC`), an
    alias (OMOP's vocabulary id `RxNorm`, `CPT4`) or its FHIR URI; None if unknown."""
    return _BY_ALIAS.get(name.strip().upper()) if isinstance(name, str) else None


def suggest_system(name: str) -> str | None:
    """The system name nearest to a misspelt one (`SNOMEDCT_XX` -> `SNOMED`)."""
    return closest(name.upper(), [*SYSTEMS, *(a for s in SYSTEMS.values() for a in s.aliases)])


def code_problem(system: System, code: str) -> str | None:
    """Why `code` is not a code of `system` (None when it is one), in words."""
    if not _PATTERNS[system.name].fullmatch(code):
        return f"it does not have the syntax of {system.title} codes (e.g. `{system.example}`)"
    return system.check(code) if system.check else None


def canonical(system: System, code: str) -> str:
    """The canonical text of a code: ``SYSTEM#code``."""
    return f"{system.name}#{code}"


def split(code: str) -> tuple[str, str]:
    """(system name, code) of a canonical code."""
    system, _, value = code.partition("#")
    return system, value


@frozen
class Member:
    """A member of a value set: a canonical code, with `descendants` when written with `*`.

    `display` is the name written beside it in a `codes` declaration, if any; `via` names the
    value set it was written in when it came through another one (`codes b = {a, …}`).
    """

    code: str
    descendants: bool = False
    display: str | None = None
    via: str | None = None

    @property
    def system(self) -> str:
        return split(self.code)[0]

    def text(self) -> str:
        """As written: ``ICD10CM#N17*``."""
        return self.code + ("*" if self.descendants else "")


def parse_member(text: str) -> tuple[str, str, bool]:
    """(system as written, code, descendants) of ``SYSTEM#code`` or ``SYSTEM#code*``."""
    system, _, code = text.partition("#")
    star = code.endswith("*")
    return system, code[:-1] if star else code, star


class Terminology(Protocol):
    """Knows a hierarchy of codes: what `*` means for SNOMED, RxNorm, OMOP concepts."""

    def descendants(self, code: str) -> Iterable[str] | None:
        """The canonical codes strictly below `code`, or None when this terminology does not
        know `code`'s system (the member then matches its own code only)."""

    def display(self, code: str) -> str | None:
        """The display name of a canonical code, if known."""


@frozen
class CodeMatcher:
    """Which member of a value set a code matches (None if none): exact codes first, then the
    longest matching prefix of a ``prefix``-system member written with `*`.

    `exact` maps each code matched exactly — members without `*`, the roots of the others, and
    the descendants a terminology listed — to the member that brings it in.
    """

    exact: Mapping[str, Member]
    prefixes: tuple[tuple[str, Member], ...]  # (canonical prefix, member), longest first

    @classmethod
    def of(
        cls, members: Iterable[Member], expanded: Mapping[str, Iterable[str]] | None = None
    ) -> CodeMatcher:
        """The matcher of members; `expanded` gives the descendants of terminology members."""
        exact: dict[str, Member] = {}
        prefixes: list[tuple[str, Member]] = []
        for member in members:
            exact.setdefault(member.code, member)
            if not member.descendants:
                continue
            system = SYSTEMS.get(member.system)
            if system is not None and system.hierarchy == "prefix":
                prefixes.append((member.code, member))
            for code in (expanded or {}).get(member.code, ()):
                exact.setdefault(code, member)
        prefixes.sort(key=lambda p: -len(p[0]))
        return cls(exact, tuple(prefixes))

    def match(self, code: str) -> Member | None:
        """The member `code` matches, or None."""
        found = self.exact.get(code)
        if found is not None:
            return found
        for prefix, member in self.prefixes:
            if code.startswith(prefix):
                return member
        return None

    def codes(self) -> frozenset[str]:
        return frozenset(self.exact)


def normalise_code(system: System, code: str) -> str:
    """A code as patient data may send it, in the system's canonical spelling."""
    return system.normalise(code) if system.normalise else code


@frozen
class ValueSet:
    """A value set as the checker resolved it: what `in` and `contains` test codes against.

    `name` is its declared name (None for a set written in place, `{ICD10CM#N17*, …}`);
    `members` are its members as written, nested value sets inlined, each code once, in order;
    `expanded` lists ``(code, i)`` for every descendant a terminology gave for member ``i``
    (a member with `*` of a ``terminology`` system), sorted.

    A code *matches* member ``m`` when it equals ``m.code``, or when ``m`` has `*` and the code
    starts with ``m.code`` (``prefix`` systems) or is listed for ``m`` in `expanded`.
    """

    name: str | None
    members: tuple[Member, ...]
    expanded: tuple[tuple[str, int], ...] = ()

    def matcher(self) -> CodeMatcher:
        """The matcher of the whole set (built once per value set)."""
        found = _MATCHERS.get(self)
        if found is None:
            found = _MATCHERS[self] = CodeMatcher.of(self.members, self._expansions())
        return found

    def member_matchers(self) -> tuple[CodeMatcher, ...]:
        """One matcher per member, for `contains all of`."""
        expansions = self._expansions()
        return tuple(
            CodeMatcher.of([m], {m.code: expansions.get(m.code, ())}) for m in self.members
        )

    def _expansions(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for code, index in self.expanded:
            out.setdefault(self.members[index].code, []).append(code)
        return out

    def text(self) -> str:
        """`aki`, or the members in braces for a set written in place."""
        if self.name:
            return self.name
        return "{" + ", ".join(m.text() for m in self.members) + "}"


_MATCHERS: dict[ValueSet, CodeMatcher] = {}


# --------------------------------------------------------------------------- codes in data


class CodeValueError(ValueError):
    """A code in patient data that cannot be read: `code` is the diagnostic code (PR43x)."""

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


_CODING_KEYS = frozenset(("system", "code", "display", "version", "userSelected"))


def read_code(value: object) -> str:
    """The canonical text of a code as patient data sends it: ``"LOINC#2160-0"``, or a FHIR
    Coding ``{"system": "http://loinc.org", "code": "2160-0", "display": "…"}`` whose system is
    a URI, a name or an alias. ICD codes are accepted without their dot (``N179``)."""
    if isinstance(value, str):
        system_text, sep, code = value.partition("#")
        if not sep:
            raise CodeValueError(
                "PR431",
                f'"{_short(value)}" has no code system',
                'write the system before `#`: "ICD10CM#N17.9", or send '
                '{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "N17.9"}',
            )
    elif isinstance(value, Mapping):
        if "code" not in value or not set(value) <= _CODING_KEYS:
            raise CodeValueError(
                "PR430",
                "a code object has the keys `system` and `code` (and maybe `display`)",
                'write {"system": "http://loinc.org", "code": "2160-0"}',
            )
        system_text, code = value.get("system"), value.get("code")
        if system_text is None:
            raise CodeValueError(
                "PR431",
                f"code `{_short(str(code))}` has no `system`",
                'add its system, e.g. "system": "http://snomed.info/sct"',
            )
        if not isinstance(system_text, str) or not isinstance(code, str):
            raise CodeValueError("PR430", "a code's `system` and `code` are strings")
    else:
        kind = "a number" if isinstance(value, int | float) else type(value).__name__
        raise CodeValueError(
            "PR430",
            f"expected a code, got {kind}",
            'write "SNOMED#14669001" or {"system": "http://snomed.info/sct", "code": "14669001"}',
        )
    system = system_named(system_text)
    if system is None:
        guess = suggest_system(system_text)
        raise CodeValueError(
            "PR432",
            f"unknown code system `{_short(system_text)}`",
            f"did you mean `{guess}`?"
            if guess
            else "the systems are " + ", ".join(f"`{s}`" for s in SYSTEMS) + " or their URIs",
        )
    normal = normalise_code(system, code)
    problem = code_problem(system, normal)
    if problem:
        raise CodeValueError(
            "PR433",
            f"`{_short(code)}` is not a {system.name} code: {problem}",
            "check the code and its system",
        )
    return canonical(system, normal)


def display_of(value: object) -> tuple[str, str] | None:
    """(canonical code, display) of a FHIR Coding with a `display`, else None."""
    if isinstance(value, Mapping) and isinstance(value.get("display"), str):
        try:
            return read_code(value), value["display"]
        except CodeValueError:
            return None
    return None


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


class StaticTerminology:
    """A `Terminology` from plain data: the descendants and display names of some codes.

    ``StaticTerminology({"SNOMED#77386006": ["SNOMED#72892002"]}, {"SNOMED#72892002": "Normal
    pregnancy"})``; codes of systems it lists nothing for have unknown descendants.
    """

    def __init__(
        self,
        descendants: Mapping[str, Iterable[str]],
        displays: Mapping[str, str] | None = None,
        systems: Iterable[str] | None = None,
    ) -> None:
        self._descendants = {code: tuple(found) for code, found in descendants.items()}
        self._displays = dict(displays or {})
        self._systems = (
            set(systems) if systems is not None else {split(code)[0] for code in self._descendants}
        )

    def descendants(self, code: str) -> Iterable[str] | None:
        if split(code)[0] not in self._systems:
            return None
        return self._descendants.get(code, ())

    def display(self, code: str) -> str | None:
        return self._displays.get(code)
