"""The IR as Z3 formulas (the ``[lint]`` extra): the encoder, patient variables and witnesses.

See `encode` for the two encodings (abstract, for proofs; explicit, for witnesses).
"""

from .encode import DEFAULT_AS_OF, Encoder
from .values import Tri, Val, real
from .witness import SAT, UNKNOWN, UNSAT, find_witness, record_from_model, solve

__all__ = [
    "DEFAULT_AS_OF",
    "SAT",
    "UNKNOWN",
    "UNSAT",
    "Encoder",
    "Tri",
    "Val",
    "find_witness",
    "real",
    "record_from_model",
    "solve",
]
