"""The playground's runtime, copied into the built docs site (an mkdocs hook, and a script).

The playground page (docs/playground.md) runs the real engine in the browser through Pyodide.
After mkdocs has built the site, this hook writes ``assets/playground/runtime/`` into it:

- ``examples.json``: protocols/nct04194671.rules and the example patients (always);
- ``pyodide/``: the Pyodide core from the npm registry's ``pyodide`` package, installed by
  ``npm ci --prefix playground`` (only its runtime files: no source maps, no consoles);
- ``wheels/``: the project's wheel and its pure-Python dependencies (lark, attrs, pint,
  ucumvert, flexcache, flexparser, platformdirs, typing_extensions), packed from the
  installed distributions, so the build needs no network;
- ``manifest.json``: what is there, or why the runtime is missing.

Without ``playground/node_modules/pyodide`` (``npm ci`` has not run) the site still builds:
the manifest says so and the page shows how to build the runtime. Nothing here warns, so
``mkdocs build --strict`` passes either way.

    python playground/hook.py SITE_DIR     # the same, outside mkdocs
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
import zipfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYODIDE = ROOT / "playground" / "node_modules" / "pyodide"
#: The files of the Pyodide package the browser loads.
PYODIDE_FILES = (
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
    "package.json",
)
#: Requirements not needed to check and evaluate in the browser (the command line's).
NOT_IN_BROWSER = {"click"}
CACHE = ROOT / "playground" / ".cache"

log = logging.getLogger("mkdocs.hooks.playground")


def on_post_build(config, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """mkdocs hook: write the runtime into the built site."""
    manifest = build(Path(config["site_dir"]))
    if manifest["ready"]:
        log.info("playground: Pyodide %s and %d wheels copied", manifest["pyodide"],
                 len(manifest["wheels"]))  # fmt: skip
    else:
        log.info("playground: %s", manifest["reason"])


def build(site: Path) -> dict:
    target = site / "assets" / "playground" / "runtime"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    (target / "examples.json").write_text(json.dumps(examples(), ensure_ascii=False))
    manifest: dict = {"ready": False, "pyodide": None, "wheels": []}
    if not (PYODIDE / "pyodide.mjs").is_file():
        manifest["reason"] = (
            "the Pyodide runtime is not in this build: run `npm ci --prefix playground` "
            "before `mkdocs build`"
        )
    else:
        (target / "pyodide").mkdir()
        for name in PYODIDE_FILES:
            shutil.copy2(PYODIDE / name, target / "pyodide" / name)
        version = json.loads((PYODIDE / "package.json").read_text(encoding="utf-8"))["version"]
        (target / "wheels").mkdir()
        wheels = [project_wheel(target / "wheels")]
        wheels += [dependency_wheel(name, target / "wheels") for name in dependencies()]
        manifest.update(ready=True, pyodide=version, wheels=[w.name for w in wheels])
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def examples() -> dict:
    """The protocol and the example patients the page starts with."""
    protocol = ROOT / "protocols" / "nct04194671.rules"
    patients = sorted((ROOT / "examples" / "patients").glob("*.json"))
    return {
        "protocol": {"name": protocol.name, "text": protocol.read_text(encoding="utf-8")},
        "patients": [
            {"name": p.name, "text": p.read_text(encoding="utf-8")}
            for p in patients
            if p.name != "expected.json"
        ],
    }


# --------------------------------------------------------------------------- wheels


def _requirement_name(requirement: str) -> str | None:
    if ";" in requirement:  # an extra or a platform marker: not a core dependency
        return None
    return re.split(r"[\s<>=!~\[(]", requirement.strip(), maxsplit=1)[0]


def dependencies() -> list[str]:
    """The installed distributions the engine needs, transitively, in a stable order."""
    todo = [n for r in metadata.requires("protocol-rules") or [] if (n := _requirement_name(r))]
    found: dict[str, None] = {}
    while todo:
        name = todo.pop(0)
        key = name.lower().replace("-", "_")
        if key in found or key in NOT_IN_BROWSER:
            continue
        found[key] = None
        todo += [n for r in metadata.requires(name) or [] if (n := _requirement_name(r))]
    return sorted(found)


def dependency_wheel(name: str, folder: Path) -> Path:
    """A py3-none-any wheel of an installed pure-Python distribution (its files as installed,
    without compiled caches), cached in playground/.cache by name and version."""
    dist = metadata.distribution(name)
    wheel_name = f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}-py3-none-any.whl"
    cached = CACHE / wheel_name
    if not cached.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in dist.files or ():
                path = str(file)
                if "__pycache__" in path or path.endswith(".pyc") or path.startswith(".."):
                    continue
                archive.write(dist.locate_file(file), path)
        partial.replace(cached)
    shutil.copy2(cached, folder / wheel_name)
    return folder / wheel_name


def project_wheel(folder: Path) -> Path:
    """The wheel of this checkout: the package, its libraries and schemas, and the grammar."""
    version = metadata.version("protocol-rules")
    path = folder / f"protocol_rules-{version}-py3-none-any.whl"
    package = ROOT / "src" / "protocol_rules"
    info = f"protocol_rules-{version}.dist-info"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(package.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                archive.write(file, f"protocol_rules/{file.relative_to(package).as_posix()}")
        for file in sorted((ROOT / "grammars").glob("*.lark")):
            archive.write(file, f"protocol_rules/grammars/{file.name}")
        archive.writestr(
            f"{info}/METADATA",
            f"Metadata-Version: 2.1\nName: protocol-rules\nVersion: {version}\n",
        )
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: playground/hook.py\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n",
        )
        archive.writestr(f"{info}/RECORD", "")
    return path


if __name__ == "__main__":
    print(json.dumps(build(Path(sys.argv[1])), indent=2))
