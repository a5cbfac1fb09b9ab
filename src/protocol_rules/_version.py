"""The package version, importable without importing the package (the cache keys on it)."""

__version__ = "0.1.0"
