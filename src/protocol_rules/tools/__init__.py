"""Tools for protocol authors, over the checked IR and the interpreter.

Documented in docs/testing-rules.md, docs/lint.md and docs/diff.md.

- `tests` and `runner`: test cases in ``NAME.tests.toml`` beside a protocol, run through the
  interpreter; `coverage` reads the evaluation record of each case (the value every node took)
  to report which outcomes, operands and boundaries the cases reached;
- `lint`: a solver-backed linter (Z3, the ``[lint]`` extra): criteria that can never be met,
  contradictions between criteria, redundant operands, comparisons decided by a declared range,
  each with a witness patient record that the interpreter confirms;
- `diff`: what an amendment changes, with a witness patient per changed criterion or a proof
  that none exists, and with a population, how many statuses change;
- `smt`: the encoding of the IR into Z3 formulas that `lint` and `diff` share.

Nothing here changes how a protocol is evaluated: every verdict these tools show comes from
`Protocol.evaluate`.
"""
