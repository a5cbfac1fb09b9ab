"""Beside the pipeline: what is worth keeping between two runs, as JSON in the user's cache folder.

Building the UCUM registry (pint + ucumvert) and the Lark parser is most of the time a short
command spends; their results — a few unit facts and conversion factors, the parser's tables —
are small. They are kept here, keyed by the package version and by what they were computed
from, so a later process reads a file instead of building them again.

The folder is ``$PROTOCOL_RULES_CACHE_DIR`` when that is set (an empty value turns the cache
off), else ``protocol-rules`` in the platform's cache folder (``$XDG_CACHE_HOME`` or
``~/.cache`` on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows), with one
sub-folder per version. Files are JSON, never pickle: a corrupt, truncated or foreign file is
ignored and rebuilt. Writes go to a temporary file beside the target and are renamed over it,
so a reader never sees half a file and concurrent writers cannot corrupt it (the last one wins).
Every failure to read or write is silent: the cache only ever saves time.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from ._version import __version__

#: Bumped when the layout of cache files changes.
FORMAT = 1
ENV_VAR = "PROTOCOL_RULES_CACHE_DIR"


def cache_dir() -> str | None:
    """The folder of this version's cache files, or None when the cache is turned off."""
    override = os.environ.get(ENV_VAR)
    if override is not None:
        if not override.strip():
            return None
        return os.path.join(os.path.expanduser(override), __version__)
    home = os.path.expanduser("~")
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        base = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        root = os.path.join(base, "protocol-rules", "Cache")
    elif sys.platform == "darwin":  # pragma: no cover - exercised on macOS only
        root = os.path.join(home, "Library", "Caches", "protocol-rules")
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = xdg if os.path.isabs(xdg) else os.path.join(home, ".cache")
        root = os.path.join(base, "protocol-rules")
    return os.path.join(root, __version__)


def _file(name: str, key: str) -> str | None:
    folder = cache_dir()
    return os.path.join(folder, f"{name}-{key}.json") if folder is not None else None


def read(
    name: str, key: str, object_hook: Callable[[dict[str, Any]], Any] | None = None
) -> Any | None:
    """The data stored under (`name`, `key`), or None if absent, unreadable or not ours.

    `object_hook` is handed to `json.load` (it sees the payload's own object last).
    """
    path = _file(name, key)
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle, object_hook=object_hook)
    except (OSError, ValueError):
        return None
    if (
        not isinstance(payload, dict)
        or payload.get("format") != FORMAT
        or payload.get("key") != key
        or "data" not in payload
    ):
        return None
    return payload["data"]


def write(name: str, key: str, data: Any) -> bool:
    """Store `data` (JSON-ready) under (`name`, `key`) atomically; False if it could not be."""
    path = _file(name, key)
    if path is None:
        return False
    text = json.dumps({"format": FORMAT, "key": key, "data": data}, separators=(",", ":"))
    folder, filename = os.path.split(path)
    temporary = os.path.join(folder, f".{filename}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return False
    _prune(folder, name, filename)
    return True


def _prune(folder: str, name: str, keep: str) -> None:
    """Remove files of `name` stored under older keys (a new grammar, new unit code)."""
    with contextlib.suppress(OSError):
        for old in os.listdir(folder):
            if old.startswith(f"{name}-") and old.endswith(".json") and old != keep:
                os.unlink(os.path.join(folder, old))


class Table:
    """A bounded string -> JSON-value map, loaded on first use and saved at exit if it grew.

    `limit` bounds both the entries kept in memory and those written to disk: a stream of
    unique keys (unit spellings from untrusted records) cannot grow either without end; the
    entries used most recently are the ones kept.
    """

    def __init__(self, name: str, key: Callable[[], str], limit: int) -> None:
        self.name = name
        self._key = key
        self.limit = limit
        self._entries: dict[str, Any] | None = None
        self._dirty = False
        self._lock = threading.Lock()
        self._registered = False

    def _load(self) -> dict[str, Any]:
        if self._entries is None:
            data = read(self.name, self._key())
            entries = data if isinstance(data, dict) else {}
            self._entries = dict(list(entries.items())[-self.limit :])
        return self._entries

    def get(self, key: str) -> Any | None:
        with self._lock:
            entries = self._load()
            value = entries.pop(key, None)
            if value is not None:
                entries[key] = value  # most recently used last
            return value

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            entries = self._load()
            entries.pop(key, None)
            entries[key] = value
            while len(entries) > self.limit:
                del entries[next(iter(entries))]
            self._dirty = True
            if not self._registered:
                import atexit

                atexit.register(self.save)
                self._registered = True

    def save(self) -> None:
        """Write the table if it changed, merged with what other processes wrote meanwhile."""
        with self._lock:
            if not self._dirty or self._entries is None:
                return
            key = self._key()
            on_disk = read(self.name, key)
            merged = dict(on_disk) if isinstance(on_disk, dict) else {}
            for k, v in self._entries.items():
                merged.pop(k, None)
                merged[k] = v
            kept = dict(list(merged.items())[-self.limit :])
            if write(self.name, key, kept):
                self._dirty = False

    def clear(self) -> None:
        """Forget the entries in memory (the file stays); for tests."""
        with self._lock:
            self._entries = None
            self._dirty = False
