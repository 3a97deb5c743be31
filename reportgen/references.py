"""User code by reference: `package.module:callable`, `path/to/file.py:callable` (relative to the spec), or
the name of an installed plug-in's entry point. Each resolves to the callable and a `source` stamp (the
file's sha256, or the installed distribution's version) that goes into the cache key, so editing the
code retrains what it builds and nothing else.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from reportgen.errors import SpecError

ARCHITECTURE_GROUP = "reportgen.architectures"  # entry-point group of installed architecture plug-ins


@dataclass(frozen=True)
class Resolved:
    """A reference, imported."""

    target: Callable[..., Any]
    source: str  # "sha256:<hex>" of the file that defines it, or "<distribution>==<version>"
    path: str | None  # the absolute file of a file reference (a worker process imports it from there)


def is_reference(text: str) -> bool:
    """`module:callable` or `file.py:callable`, as opposed to a registered name."""
    return ":" in text


def is_file_reference(text: str) -> bool:
    module = text.rpartition(":")[0]
    return module.endswith(".py") or "/" in module


def resolve(text: str, base_dir: Path, where: str) -> Resolved:
    """Import the reference; a SpecError naming `where` and what to do when it cannot be."""
    module_part, _, name = text.rpartition(":")
    if not module_part or not name.isidentifier():
        raise SpecError(f"{where}: {text!r} is not a reference; write 'package.module:callable' or "
                        "'file.py:callable' (a path relative to the spec)")
    if is_file_reference(text):
        path = (base_dir / module_part).resolve()
        module, source = _import_file(path, where), "sha256:" + file_sha256(path)
        location: str | None = str(path)
    else:
        module, source, location = _import_module(module_part, where), "", None
        source = _module_source(module)
    target = getattr(module, name, None)
    if not callable(target):
        defined = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                         and getattr(v, "__module__", None) == module.__name__)
        raise SpecError(f"{where}: {module_part!r} defines no callable {name!r}; it defines: {', '.join(defined) or 'none'}")
    return Resolved(target, source, location)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _import_file(path: Path, where: str) -> Any:
    if not path.is_file():
        raise SpecError(f"{where}: no file {str(path)!r}; the path is relative to the spec's folder")
    return _load_file_module(str(path), file_sha256(path))


@functools.lru_cache(maxsize=None)
def _load_file_module(path: str, digest: str) -> Any:
    """One module per file content: an edited file (a new digest) is imported anew, under its own name."""
    name = f"reportgen_user.{Path(path).stem}_{digest[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - the user's file may raise anything on import
        del sys.modules[name]
        raise SpecError(f"{path}: importing it failed ({type(err).__name__}: {err}); fix the file") from None
    return module


def _import_module(name: str, where: str) -> Any:
    try:
        return importlib.import_module(name)
    except Exception as err:  # noqa: BLE001 - ImportError, or anything the module raises on import
        raise SpecError(f"{where}: cannot import {name!r} ({type(err).__name__}: {err}); install the package "
                        "that provides it, or refer to a file instead ('nets.py:MyNet', relative to the spec)") from None


def _module_source(module: Any) -> str:
    """The installed distribution's name and version, else the sha256 of the module's file."""
    top = module.__name__.partition(".")[0]
    for dist in _distributions().get(top, []):
        return f"{dist}=={importlib.metadata.version(dist)}"
    file = getattr(module, "__file__", None)
    return "sha256:" + file_sha256(Path(file)) if file else f"module {module.__name__}"


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    """Top-level package → installed distributions (a scan of every installed package: once per process)."""
    return importlib.metadata.packages_distributions()


# ---------------------------------------------------------------- plug-ins (entry points)

@dataclass(frozen=True)
class Plugin:
    name: str
    value: str  # 'package.module:callable'
    source: str  # '<distribution>==<version>'
    load: Callable[[], Any]


def plugins(group: str) -> dict[str, Plugin]:
    """The installed entry points of `group`, by name."""
    found = {}
    for ep in importlib.metadata.entry_points(group=group):
        dist = getattr(ep, "dist", None)
        source = f"{dist.name}=={dist.version}" if dist is not None else ep.value
        found[ep.name] = Plugin(ep.name, ep.value, source, ep.load)
    return found
