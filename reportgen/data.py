"""Data sets: find the four IDX files of a data set, verify them, and load each split once per process.

Search order: --data-dir / REPORTGEN_DATA_DIR, Debian's /usr/share/datasets, then a torchvision download.
"""
from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import io
import math
import os
import socket
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reportgen.datasets import DATASETS, DatasetInfo
from reportgen.errors import DataError

ENV_VAR = "REPORTGEN_DATA_DIR"
SYSTEM_FOLDERS = (Path("/usr/share/datasets"),)  # where Debian's dataset-* packages install
CACHE_ROOT = Path.home() / ".cache" / "reportgen" / "datasets"  # download root when no folder is given
DOWNLOAD_TIMEOUT_S = 30  # torchvision's urlopen has no timeout; a black-holed network would hang forever
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # IDX: 0x0000 0803 (uint8, 3 dims) / 0x0000 0801 (uint8, 1 dim)
FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),  # train → (images, labels)
         False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_ALL_FILES = FILES[True] + FILES[False]
_REMEDY = ("Replace it with a good copy (re-copy the data set), or delete the folder's IDX files "
           "so that reportgen downloads them again.")


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors field by field is ambiguous
class Split:
    images: torch.Tensor  # uint8, (N, 28, 28); shared by every caller of the memoised loader: do not modify
    labels: torch.Tensor  # int64, (N,)
    classes: tuple[str, ...]  # class names, index = label
    source: str  # the folder the files were read from (for the report's provenance)


def load_split(name: str, train: bool, data_dir: Path | None = None) -> Split:
    """The verified train or test split of data set `name`, read once per process and folder."""
    folder = find_data_folder(name, data_dir)
    return _load_split_cached(name, folder.resolve(), train)


def find_data_folder(name: str, data_dir: Path | None = None) -> Path:
    """The folder holding the four IDX files of `name`, downloading them as a last resort."""
    info = _info(name)
    given = _given_folder(data_dir)
    download_root = given or CACHE_ROOT
    repairable = download_root / info.torchvision_class / "raw"  # a new download completes a partial copy
    folders = _layouts(given, info) if given else []
    folders += [system / info.folder for system in SYSTEM_FOLDERS]
    folders += [] if given else [repairable]
    for folder in folders:
        if _is_complete(folder, name, strict=folder != repairable):
            return folder
    return _download_or_fail(name, info, download_root, tried=folders)


def _info(name: str) -> DatasetInfo:
    return DATASETS.get(name)


def _given_folder(data_dir: Path | None) -> Path | None:
    given = data_dir if data_dir is not None else os.environ.get(ENV_VAR)
    return Path(given).expanduser() if given else None  # an empty variable counts as unset


def _layouts(root: Path, info: DatasetInfo) -> list[Path]:
    # Named subfolders first: the four file names are the same for every data set, so the files
    # directly in `root` may belong to another one.
    return [root / info.folder, root / info.torchvision_class / "raw", root]


def _file_path(folder: Path, file_name: str) -> Path | None:
    for candidate in (folder / file_name, folder / f"{file_name}.gz"):  # plain first: no decompression
        if candidate.is_file():
            return candidate
    return None


def _is_complete(folder: Path, name: str, strict: bool) -> bool:
    missing = [file_name for file_name in _ALL_FILES if _file_path(folder, file_name) is None]
    if strict and 0 < len(missing) < len(_ALL_FILES):
        raise DataError(
            f"{folder} holds only part of the {name} data set: {', '.join(missing)} (plain or .gz) "
            f"is missing. Copy the missing file there from a complete copy, or point --data-dir or "
            f"{ENV_VAR} at a folder that holds all four files.")
    return not missing


def _download_or_fail(name: str, info: DatasetInfo, root: Path, tried: list[Path]) -> Path:
    try:
        _download(info, root)
    except Exception as err:  # no network, read-only folder, bad mirror...: all end in the one message
        raise DataError(_not_found_message(name, tried, root, err)) from err
    folder = root / info.torchvision_class / "raw"
    if not _is_complete(folder, name, strict=True):
        raise DataError(f"torchvision's download of {name} into {folder} left no IDX files there. {_REMEDY}")
    return folder


def _download(info: DatasetInfo, root: Path) -> None:
    import torchvision.datasets  # slow to import; only this last resort needs it

    dataset_class = getattr(torchvision.datasets, info.torchvision_class)
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:  # torchvision prints progress; library code stays quiet
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            dataset_class(str(root), train=True, download=True)  # fetches all four files
    finally:
        socket.setdefaulttimeout(previous_timeout)


def _not_found_message(name: str, tried: list[Path], root: Path, err: Exception) -> str:
    reason = " ".join(str(err).split())[:300] or type(err).__name__  # torchvision's errors span lines
    files = ", ".join(f"{file_name}[.gz]" for file_name in _ALL_FILES)
    return (
        f"No copy of the {name} data set was found. Places tried: {', '.join(map(str, tried))}; "
        f"then downloading it with torchvision into {root} failed: {reason}. Provide the four IDX "
        f"files ({files}) with --data-dir PATH or the {ENV_VAR} environment variable (a folder "
        f"holding them directly, a {DATASETS.get(name).folder}/ subfolder, or torchvision's "
        f"{DATASETS.get(name).torchvision_class}/raw/), or run once with internet access to download them.")


@functools.lru_cache(maxsize=None)
def _load_split_cached(name: str, folder: Path, train: bool) -> Split:
    images_name, labels_name = FILES[train]
    images_path, labels_path = _file_path(folder, images_name), _file_path(folder, labels_name)
    images_data, images_dims = _read_idx(images_path, IMAGES_MAGIC)
    labels_data, labels_dims = _read_idx(labels_path, LABELS_MAGIC)
    if images_dims[0] != labels_dims[0]:
        raise DataError(
            f"{images_path} holds {images_dims[0]} images but {labels_path} holds {labels_dims[0]} "
            f"labels; the two files of a split must match. {_REMEDY}")
    _verify_sha256(images_path, images_data, name, images_name)
    _verify_sha256(labels_path, labels_data, name, labels_name)
    images = np.frombuffer(images_data, np.uint8, offset=16).reshape(images_dims).copy()  # copy: writable
    labels = np.frombuffer(labels_data, np.uint8, offset=8).astype(np.int64)
    return Split(torch.from_numpy(images), torch.from_numpy(labels), DATASETS.get(name).classes, str(folder))


def _read_idx(path: Path, magic: int) -> tuple[bytes, tuple[int, ...]]:
    """The uncompressed bytes of an IDX file and its dimensions, after checking its structure."""
    data = _read_bytes(path)
    kind, ndim = ("images", 3) if magic == IMAGES_MAGIC else ("labels", 1)
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path} is only {len(data)} bytes long, too short for an IDX header. {_REMEDY}")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(
            f"{path} starts with magic number {found} where an IDX {kind} file has {magic}: it is not "
            f"a {kind} file, or its header is damaged. {_REMEDY}")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header_size + math.prod(dims)
    if len(data) != expected:
        raise DataError(
            f"{path} is {len(data)} bytes long uncompressed, but its header (dimensions {dims}) "
            f"implies {expected}: the file is truncated or damaged. {_REMEDY}")
    return data, dims


def _read_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        return gzip.decompress(path.read_bytes())
    except EOFError:
        raise DataError(f"{path} is truncated: its gzip stream ends early. {_REMEDY}") from None
    except (gzip.BadGzipFile, zlib.error) as err:
        raise DataError(f"{path} is not a valid gzip file ({err}). {_REMEDY}") from None


def _verify_sha256(path: Path, data: bytes, name: str, file_name: str) -> None:
    digest, expected = hashlib.sha256(data).hexdigest(), DATASETS.get(name).sha256[file_name]
    if digest == expected:
        return
    others = [other for other, info in ((i.name, i) for i in DATASETS.entries()) if info.sha256.get(file_name) == digest]
    advice = (f"Its content is {others[0]}'s {file_name}: this folder holds another data set; point "
              f"--data-dir or {ENV_VAR} at a copy of {name}." if others else _REMEDY)
    raise DataError(
        f"{path} does not hold {name}'s {file_name}: the sha256 of its uncompressed content is "
        f"{digest!r}, expected {expected!r}. {advice}")


def to_float_images(images: torch.Tensor, size: int, device: torch.device | str) -> torch.Tensor:
    """Images as training sees them: float (N, C, size, size) in [0, 1] (ToTensor's scaling), resized if asked."""
    x = images.to(device)
    x = (x.unsqueeze(1) if x.dim() == 3 else x).float().div_(255.0)  # (N, C, H, W); one channel comes as (N, H, W)
    if size != x.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.contiguous()
