"""A minimal LSP client over stdio, as an editor is: JSON-RPC messages with Content-Length
headers to a `protocol-rules lsp` child process. Used by tests/test_lsp.py and
benchmarks/lsp.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-c", "from protocol_rules.cli import main; main()", "lsp"]


class Client:
    """Starts the server, sends requests and notifications, and collects what it sends back."""

    def __init__(self, command: list[str] | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.process = subprocess.Popen(
            command or COMMAND,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.next_id = 0
        self.responses: dict[int, Any] = {}
        self.notifications: list[tuple[float, dict[str, Any]]] = []
        self.condition = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    # -- wire

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            if length is None:
                continue
            message = json.loads(stream.read(length))
            with self.condition:
                if "method" in message and "id" in message:  # a request from the server
                    self._send({"id": message["id"], "result": None})
                elif "method" in message:
                    self.notifications.append((time.perf_counter(), message))
                else:
                    self.responses[message["id"]] = message
                self.condition.notify_all()

    # -- API

    def request(self, method: str, params: Any, timeout: float = 60) -> Any:
        self.next_id += 1
        ident = self.next_id
        self._send({"id": ident, "method": method, "params": params})
        with self.condition:
            if not self.condition.wait_for(lambda: ident in self.responses, timeout):
                raise TimeoutError(f"no answer to {method} in {timeout} s")
            message = self.responses.pop(ident)
        if "error" in message:
            raise RuntimeError(message["error"])
        return message.get("result")

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def wait_for(self, method: str, match: Any = None, timeout: float = 60) -> dict[str, Any]:
        """The first notification of `method` (for which `match(params)` holds) not yet taken."""

        def find() -> dict[str, Any] | None:
            for index, (_, message) in enumerate(self.notifications):
                if message["method"] == method and (match is None or match(message["params"])):
                    del self.notifications[index]
                    return message["params"]
            return None

        found: list[dict[str, Any]] = []

        def ready() -> bool:
            params = find()
            if params is not None:
                found.append(params)
            return bool(found)

        with self.condition:
            if not self.condition.wait_for(ready, timeout):
                raise TimeoutError(f"no {method} in {timeout} s")
            return found[0]

    def initialize(self, root: Path = ROOT) -> dict[str, Any]:
        result = self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": root.as_uri(),
                "capabilities": {
                    "textDocument": {
                        "hover": {"contentFormat": ["markdown", "plaintext"]},
                        "publishDiagnostics": {"relatedInformation": True},
                    }
                },
            },
        )
        self.notify("initialized", {})
        return result

    def diagnostics(self, uri: str, version: int | None = None, timeout: float = 60) -> list:
        """The next published diagnostics of `uri` (of `version`, when given)."""
        params = self.wait_for(
            "textDocument/publishDiagnostics",
            lambda p: p["uri"] == uri and (version is None or p.get("version") == version),
            timeout,
        )
        return params["diagnostics"]

    def open(self, uri: str, text: str, version: int = 1) -> None:
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "rules", "version": version, "text": text}},
        )

    def change(self, uri: str, version: int, text: str) -> None:
        self.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]},
        )

    def edit(self, uri: str, version: int, start: tuple[int, int], end: tuple[int, int],
             text: str) -> None:  # fmt: skip
        """An incremental change, as an editor sends for a keystroke."""
        change = {
            "range": {
                "start": {"line": start[0], "character": start[1]},
                "end": {"line": end[0], "character": end[1]},
            },
            "text": text,
        }
        self.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]},
        )

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
            self.process.wait(timeout=10)
        except Exception:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def position(text: str, needle: str, nth: int = 0, delta: int = 0) -> dict[str, int]:
    """The LSP position of the `nth` occurrence of `needle` in `text` (plus `delta` characters)."""
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(needle, offset + 1)
    offset += delta
    line = text.count("\n", 0, offset)
    column = offset - (text.rfind("\n", 0, offset) + 1)
    return {"line": line, "character": column}
