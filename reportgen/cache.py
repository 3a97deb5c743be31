"""Stage 3b: the run store. One folder per cache key holding the request, the metrics so far
and the latest epoch checkpoint; every write is atomic, every entry is locked while used.

Layout (as DVC's run cache): `<root>/runs/<key[:2]>/<key>/{request.json, state.json, ckpt-NNNN.pt}`.
`state.json` names the checkpoint and its sha256, and is written after it: an entry is only
trusted when both agree, so a crash at any point leaves either the previous epoch or nothing.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from reportgen.errors import CacheError
from reportgen.results import EpochMetrics

STATE_FILE = "state.json"
REQUEST_FILE = "request.json"
PROJECT_CACHE = Path(".reportgen") / "cache"  # beside the spec: every --out of the project shares it


def default_cache_dir(spec_path: Path) -> Path:
    """The project's run cache: `.reportgen/cache` in the spec's folder, whatever the output folder is,
    so `reportgen run q1.3 --out elsewhere` reuses what `reportgen build` trained."""
    return Path(spec_path).resolve().parent / PROJECT_CACHE


@dataclass
class Entry:
    """What the cache knows about one trajectory."""

    key: str
    request: dict[str, Any]
    params: int
    epochs: list[EpochMetrics] = field(default_factory=list)
    probes: dict[str, list[float]] = field(default_factory=dict)
    checkpoint: str | None = None  # file name inside the entry folder
    checkpoint_sha256: str | None = None
    checkpoint_size: int | None = None
    machine: dict[str, Any] | None = None  # what trained the latest epochs (train.machine_info); None: unknown


# Where a request's referenced files lie (a network's file, a data set's folder), for the process that trains
# it: kept out of the key, since their content digests are in it. A moved folder reuses its runs.
LOCATIONS = "locations"


def cache_key(request: dict[str, Any]) -> str:
    """A run's key: sha256 of the canonical JSON of its request (everything that determines the trajectory)."""
    hashed = {k: v for k, v in request.items() if k != LOCATIONS}
    canonical = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class CorruptEntry(Exception):
    """An entry that must not be trusted; the runner reports it and trains again."""


class RunCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def folder(self, key: str) -> Path:
        return self.root / "runs" / key[:2] / key

    def lock(self, key: str, timeout: float = -1) -> FileLock:
        """A per-entry lock shared by every process (and Ray worker) using this cache folder."""
        path = self.root / "runs" / key[:2] / f"{key}.lock"
        _guard_os(lambda: path.parent.mkdir(parents=True, exist_ok=True), path.parent)
        return FileLock(str(path), timeout=timeout)

    def keys(self) -> list[str]:
        runs = self.root / "runs"
        return sorted(p.name for p in runs.glob("??/*") if p.is_dir()) if runs.is_dir() else []

    def load(self, key: str) -> Entry | None:
        """The entry, None when absent; CorruptEntry when present but not trustworthy."""
        state_path = self.folder(key) / STATE_FILE
        if not state_path.exists():
            return None
        try:
            data = json.loads(state_path.read_text())
            entry = Entry(key=data["key"], request=data["request"], params=int(data["params"]),
                          epochs=[EpochMetrics.from_dict(e) for e in data["epochs"]], probes=data["probes"],
                          checkpoint=data["checkpoint"], checkpoint_sha256=data["checkpoint_sha256"],
                          checkpoint_size=data["checkpoint_size"], machine=data.get("machine"))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise CorruptEntry(f"{state_path}: unreadable metrics ({type(err).__name__}: {err})") from None
        if entry.key != key or cache_key(entry.request) != key:
            raise CorruptEntry(f"{state_path}: its request does not hash to its key (another engine version, or edited)")
        self._check_checkpoint_size(entry)
        return entry

    def _check_checkpoint_size(self, entry: Entry) -> None:
        # A cheap check on every load (a full checksum is verified before resuming from it).
        path = self.folder(entry.key) / (entry.checkpoint or "missing")
        size = path.stat().st_size if path.is_file() else None
        if size != entry.checkpoint_size:
            raise CorruptEntry(f"{path}: checkpoint missing or truncated ({size} bytes, expected {entry.checkpoint_size})")

    def load_checkpoint(self, entry: Entry) -> dict[str, Any]:
        """The checkpoint's contents, verified against the sha256 recorded in state.json."""
        import torch

        path = self.folder(entry.key) / (entry.checkpoint or "")
        try:
            blob = path.read_bytes()
        except OSError as err:
            raise CorruptEntry(f"{path}: checkpoint unreadable ({err.strerror or err})") from None
        if hashlib.sha256(blob).hexdigest() != entry.checkpoint_sha256:
            raise CorruptEntry(f"{path}: checkpoint does not match its recorded checksum (truncated or altered)")
        try:
            return torch.load(io.BytesIO(blob), map_location=entry.request["device"], weights_only=True)
        except Exception as err:  # torch raises many types for a damaged pickle/zip
            raise CorruptEntry(f"{path}: checkpoint cannot be loaded ({type(err).__name__})") from None

    def save_epoch(self, entry: Entry, checkpoint: dict[str, Any]) -> None:
        """Write the checkpoint, then the state naming it, then drop the previous checkpoint."""
        import torch

        folder = self.folder(entry.key)
        _guard_os(lambda: folder.mkdir(parents=True, exist_ok=True), folder)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        blob = buffer.getvalue()
        previous = entry.checkpoint
        name = f"ckpt-{len(entry.epochs):04d}.pt"
        write_atomic(folder / name, blob)
        entry.checkpoint, entry.checkpoint_sha256 = name, hashlib.sha256(blob).hexdigest()
        entry.checkpoint_size = len(blob)
        write_atomic(folder / REQUEST_FILE, _json(entry.request))
        write_atomic(folder / STATE_FILE, _json(asdict(entry)))
        if previous and previous != name:
            (folder / previous).unlink(missing_ok=True)

    def remove_partial_writes(self, key: str) -> None:
        """Temp files left by a killed writer; call with the entry's lock held."""
        for leftover in self.folder(key).glob(".*.tmp"):
            leftover.unlink(missing_ok=True)

    def discard(self, key: str) -> None:
        shutil.rmtree(self.folder(key), ignore_errors=True)


def _json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, allow_nan=True).encode()


def write_atomic(path: Path, blob: bytes) -> None:
    """Temp file in the same folder + fsync + rename: readers see the old file or the new one."""
    def write() -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    _guard_os(write, path)


def _guard_os(action, path: Path) -> None:
    """Turn the OS errors a user can fix (read-only, full disk, permissions) into CacheError."""
    try:
        action()
    except OSError as err:
        hints = {errno.ENOSPC: "the disk is full; free space or point --cache-dir elsewhere",
                 errno.EROFS: "the file system is read-only; point --cache-dir at a writable folder",
                 errno.EACCES: "permission denied; point --cache-dir at a writable folder",
                 errno.EDQUOT: "the disk quota is exhausted; free space or point --cache-dir elsewhere"}
        hint = hints.get(err.errno, "check the folder and try again")
        raise CacheError(f"cannot write the run cache at {path}: {err.strerror or err} ({hint}).") from None
