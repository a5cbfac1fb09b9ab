"""`frozen`: attrs' frozen classes, made cheaper to create for the node classes.

Beside the pipeline, for `ast` and `check`: a command-line run creates every node class at
import (about a hundred), and that is a good part of its start-up time. Two things attrs does
per class are dropped: generating a repr (one shared ``__repr__`` prints what attrs' own would,
``Name(name='age')``) and rebuilding the class with ``__slots__`` (nodes are few and made once
per protocol load, so their memory does not matter). Equality, hashing and immutability are
attrs' own.
"""

from __future__ import annotations

from typing import Any, TypeVar, dataclass_transform

import attrs

T = TypeVar("T", bound=type)


def _repr(self: Any) -> str:
    fields = ", ".join(
        f"{a.name}={getattr(self, a.name)!r}" for a in type(self).__attrs_attrs__ if a.repr
    )
    return f"{type(self).__name__}({fields})"


@dataclass_transform(frozen_default=True, field_specifiers=(attrs.field,))
def frozen(cls: T) -> T:
    """`attrs.frozen` without slots, with the shared repr unless the class writes its own."""
    own = "__repr__" in cls.__dict__
    made = attrs.frozen(cls, repr=own, slots=False)
    if not own:
        made.__repr__ = _repr
    return made
