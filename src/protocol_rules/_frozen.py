"""`frozen`: attrs' frozen classes with one shared ``__repr__`` instead of one generated per class.

Beside the pipeline, for `ast` and `check.ir`: a command-line run creates every node class at
import, and generating a repr is about half of what creating an attrs class costs. The shared
repr prints what attrs' own would (``Name(name='age')``).
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
    """`attrs.frozen`, with the shared repr unless the class writes its own."""
    own = "__repr__" in cls.__dict__
    made = attrs.frozen(cls, repr=own)
    if not own:
        made.__repr__ = _repr
    return made
