"""Stage 6 of the pipeline: renderers. Pure functions of a `Result` or of diagnostics."""
