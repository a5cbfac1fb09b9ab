"""Did-you-mean suggestions for misspelt names, units and choices."""

from __future__ import annotations

from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to `word`, if any is near enough to be a likely typo."""
    pool = list(dict.fromkeys(candidates))
    lowered = {c.lower(): c for c in pool}
    if word.lower() in lowered:
        return lowered[word.lower()]
    import difflib  # only when a suggestion is needed: a clean run never loads it

    matches = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """``did you mean `x`?`` or None."""
    match = closest(word, candidates)
    return f"did you mean `{match}`?" if match else None
