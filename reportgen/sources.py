"""Data sets by reference: a spec's `[datasets.NAME]` table names an `.npz` file, an ImageFolder tree or a
torchvision data set already on disk. Each loads as uint8 images, int64 labels and class names; its
content digest, input shape and class count go into the run requests, so other data means other runs.

Torch-free at import (spec validation reads the registry); numpy, PIL and torchvision load inside functions.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import Field

from reportgen.cache import write_atomic
from reportgen.errors import DataError, SpecError
from reportgen.registry import Args, Registry

ENV_VAR = "REPORTGEN_DATA_DIR"  # also data.ENV_VAR: the default root of torchvision data sets
LOCATION_ARGS = ("path", "root")  # where the data lie, not what they are: the content digest stands for them
SPLIT_SEED = 0  # the fixed shuffle that holds out an npz file's test split


class NpzArgs(Args):
    kind: Literal["npz"]
    path: str = Field(description="the .npz file, relative to the spec; arrays x_train, y_train, x_test, y_test "
                                  "(or x and y), optional classes (names)")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share of x, y held out as the test split (a fixed "
                                                               "shuffle) when the file has no x_train/x_test")


class ImageFolderArgs(Args):
    kind: Literal["image_folder"]
    path: str = Field(description="folder with train/<class>/<image> and test/<class>/<image>, relative to the spec; "
                                  "class names are the subfolder names")


class TorchvisionArgs(Args):
    kind: Literal["torchvision"]
    name: str = Field(description="a class of torchvision.datasets, e.g. CIFAR10, KMNIST, SVHN")
    root: str = Field("", description=f"its root folder, relative to the spec (default: ${ENV_VAR}); never downloads")


@dataclass(frozen=True)
class SourceKind:
    name: str
    args: type[Args]
    load: Callable[[Any, Path], tuple[Any, Any]]  # (args, absolute location) → (train, test) as _Arrays
    help: str


SOURCES: Registry[SourceKind] = Registry("data-set kind")


@dataclass(frozen=True)
class DataDescription:
    """What a plan needs of a referenced data set, and what the provenance records."""

    name: str  # the spec's name for it, which the report uses
    kind: str
    location: str  # absolute path of the file, folder or root
    sha256: str  # of the decoded content: images, labels and class names of both splits
    shape: tuple[int, int, int]  # (C, H, W)
    classes: tuple[str, ...]
    sizes: tuple[int, int]  # (training, test) samples

    def request_fields(self, args: Args) -> dict[str, Any]:
        kept = {k: v for k, v in args.model_dump().items() if k not in LOCATION_ARGS + ("kind",)}
        return {"data": {"kind": self.kind, "args": kept, "sha256": self.sha256, "shape": list(self.shape),
                         "classes": len(self.classes), "sizes": list(self.sizes)},
                "locations": {"data": self.location}}


def location_of(args: Any, base_dir: Path) -> Path:
    """The absolute file or folder the arguments name (a path relative to the spec's folder)."""
    given = getattr(args, "path", "") or getattr(args, "root", "") or os.environ.get(ENV_VAR, "")
    if not given:
        from reportgen.data import CACHE_ROOT

        return CACHE_ROOT
    return (base_dir / Path(given).expanduser()).resolve()


def describe(name: str, args: Any, base_dir: Path) -> DataDescription:
    """Load the data set once per content stamp and describe it; DataError naming `datasets.NAME` if unusable."""
    location = location_of(args, base_dir)
    return _describe_cached(name, _located(args, location), str(location), _stamp(location))


def _located(args: Any, location: Path) -> Any:
    """The arguments with their path as the absolute location: one memo entry however the path was written."""
    return args.model_copy(update={_location_field(type(args)): str(location)})


def _location_field(model: type[Args]) -> str:
    return "root" if "root" in model.model_fields else "path"


@functools.lru_cache(maxsize=8)
def _describe_cached(name: str, args: Any, location: str, stamp: tuple) -> DataDescription:
    train, test = _load_cached(name, args, location, stamp)
    return _describe(name, args, Path(location), train, test)


def load_arrays(name: str, args: Any, location: Path) -> tuple[Any, Any]:
    return _load_cached(name, args, str(location), _stamp(location))


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, args: Any, location: str, stamp: tuple) -> tuple[Any, Any]:
    try:
        train, test = SOURCES.get(args.kind).load(args, Path(location))
    except (DataError, SpecError) as err:  # the message names the spec's key
        raise type(err)(f"datasets.{name}: {err}") from None
    for split, which in ((train, "training"), (test, "test")):
        split.check(f"datasets.{name}", which, location)
    return train, test


def _stamp(location: Path) -> tuple:
    """Size and modification time of every file under `location`: a change reloads (and re-digests) the data."""
    if location.is_file():
        stat = location.stat()
        return ((location.name, stat.st_size, stat.st_mtime_ns),)
    return tuple(sorted((str(p.relative_to(location)), p.stat().st_size, p.stat().st_mtime_ns)
                        for p in location.rglob("*") if p.is_file())) if location.is_dir() else ()


def _describe(name: str, args: Any, location: Path, train: "_Arrays", test: "_Arrays") -> DataDescription:
    digest = hashlib.sha256()
    for split in (train, test):
        digest.update(json.dumps([list(split.images.shape), str(split.images.dtype)]).encode())
        digest.update(split.images.tobytes())
        digest.update(split.labels.astype("<i8").tobytes())
    digest.update(json.dumps(list(train.classes)).encode())
    images = train.images
    shape = (1, *images.shape[1:]) if images.ndim == 3 else tuple(images.shape[1:])
    return DataDescription(name, args.kind, str(location), digest.hexdigest(), shape,
                           train.classes, (len(train.labels), len(test.labels)))


# ---------------------------------------------------------------- the loaded arrays

@dataclass(frozen=True, eq=False)
class _Arrays:
    images: Any  # numpy uint8: (N, H, W) for one channel, (N, C, H, W) for several
    labels: Any  # numpy int64 (N,)
    classes: tuple[str, ...]

    def check(self, where: str, which: str, location: str) -> None:
        if len(self.images) != len(self.labels):
            raise DataError(f"{where}: the {which} split of {location} has {len(self.images)} images but "
                            f"{len(self.labels)} labels; give one label per image.")
        if len(self.labels) == 0:
            raise DataError(f"{where}: the {which} split of {location} is empty; give it some images.")
        if self.images.shape[-1] != self.images.shape[-2]:
            raise DataError(f"{where}: the images of {location} are {self.images.shape[-2]} × {self.images.shape[-1]} "
                            "pixels; reportgen trains on square images (resize or crop them).")
        low, high = int(self.labels.min()), int(self.labels.max())
        if low < 0 or high >= len(self.classes):
            raise DataError(f"{where}: the {which} labels of {location} run from {low} to {high}, but the data set has "
                            f"{len(self.classes)} classes ({', '.join(self.classes[:12])}); labels must be 0 to "
                            f"{len(self.classes) - 1}: fix the labels, or name every class.")


def _as_images(x: Any, where: str) -> Any:
    """uint8 (N, H, W) or (N, C, H, W) from uint8 or [0, 1] floats laid out (N, H, W), (N, H, W, C) or (N, C, H, W)."""
    import numpy as np

    x = np.asarray(x)
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.floating) or x.size and (x.min() < 0 or x.max() > 1):
            raise DataError(f"{where}: images must be uint8 (0-255) or floats in [0, 1]; got {x.dtype}")
        x = np.rint(x * 255).astype(np.uint8)
    if x.ndim == 4 and x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # NHWC → NCHW
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim not in (3, 4):
        raise DataError(f"{where}: images must be (N, H, W), (N, H, W, C) or (N, C, H, W); got shape {x.shape}")
    return np.ascontiguousarray(x)


def _as_labels(y: Any, where: str) -> Any:
    import numpy as np

    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: labels must be a 1-D array of integers; got {y.dtype} of shape {y.shape}")
    return y.astype(np.int64)


def _class_names(given: Any, labels: Any) -> tuple[str, ...]:
    if given is not None:
        return tuple(str(c) for c in given)
    return tuple(str(i) for i in range(int(labels.max()) + 1 if len(labels) else 0))


# ---------------------------------------------------------------- the kinds

def _load_npz(args: NpzArgs, path: Path) -> tuple[_Arrays, _Arrays]:
    import numpy as np

    if not path.is_file():
        raise DataError(f"no file {path}; the path is relative to the spec's folder (generate or copy the data there)")
    with np.load(path, allow_pickle=False) as arrays:
        files = set(arrays.files)
        if {"x_train", "y_train", "x_test", "y_test"} <= files:
            parts = [arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")]
        elif {"x", "y"} <= files:
            parts = _held_out(arrays["x"], arrays["y"], args.test_fraction)
        else:
            raise DataError(f"{path} holds arrays {', '.join(sorted(files))}; it needs x_train, y_train, x_test, y_test "
                            "(or x and y, split by test_fraction)")
        given = arrays["classes"] if "classes" in files else None
    x_train, y_train, x_test, y_test = parts
    y_train, y_test = _as_labels(y_train, f"{path}: y_train"), _as_labels(y_test, f"{path}: y_test")
    classes = _class_names(given, np.concatenate([y_train, y_test]))
    return (_Arrays(_as_images(x_train, f"{path}: x"), y_train, classes),
            _Arrays(_as_images(x_test, f"{path}: x"), y_test, classes))


def _held_out(x: Any, y: Any, fraction: float) -> list[Any]:
    import numpy as np

    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))  # PCG64: the same split on every machine
    cut = len(y) - max(1, round(len(y) * fraction))
    return [x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]]


def _load_image_folder(args: ImageFolderArgs, path: Path) -> tuple[_Arrays, _Arrays]:
    for split in ("train", "test"):
        if not (path / split).is_dir():
            raise DataError(f"{path} has no {split}/ folder; an ImageFolder data set holds train/<class>/<image> "
                            "and test/<class>/<image>")
    classes = tuple(sorted(p.name for p in (path / "train").iterdir() if p.is_dir() and not p.name.startswith(".")))
    unknown = sorted({p.name for p in (path / "test").iterdir() if p.is_dir()} - set(classes))
    if unknown:
        raise DataError(f"{path / 'test'} has classes {', '.join(unknown)} that train/ lacks; both splits need the same class folders")
    return _read_folder(path / "train", classes), _read_folder(path / "test", classes)


def _read_folder(folder: Path, classes: tuple[str, ...]) -> _Arrays:
    import numpy as np
    from PIL import Image

    images, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted(p for p in (folder / name).glob("*") if p.is_file() and not p.name.startswith(".")):
            try:
                with Image.open(file) as image:
                    images.append(np.asarray(image.convert("L" if image.mode in ("1", "L", "I", "I;16") else "RGB")))
            except OSError as err:
                raise DataError(f"{file} is not an image PIL can read ({err}); remove it") from None
            labels.append(label)
    if {a.shape for a in images} and len({a.shape[:2] for a in images}) > 1:
        sizes = sorted({a.shape[:2] for a in images})
        raise DataError(f"{folder}: the images differ in size ({', '.join(f'{h}×{w}' for h, w in sizes[:4])}); resize them to one size")
    if any(a.ndim == 3 for a in images):  # some colour: every image as RGB
        images = [a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2) for a in images]
    stacked = np.stack(images) if images else np.zeros((0, 1, 1), np.uint8)
    return _Arrays(_as_images(stacked, str(folder)), np.asarray(labels, np.int64), classes)


def _load_torchvision(args: TorchvisionArgs, root: Path) -> tuple[_Arrays, _Arrays]:
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, args.name, None)
    if not isinstance(dataset_class, type):
        raise SpecError(f"kind torchvision: torchvision.datasets has no data set {args.name!r} (e.g. CIFAR10, KMNIST, SVHN)")
    return _torchvision_split(dataset_class, root, True), _torchvision_split(dataset_class, root, False)


def _torchvision_split(dataset_class: type, root: Path, train: bool) -> _Arrays:
    params = inspect.signature(dataset_class).parameters
    which = {"train": train} if "train" in params else {"split": "train" if train else "test"}
    try:
        dataset = dataset_class(str(root), download=False, **which)
    except Exception as err:  # noqa: BLE001 - torchvision raises RuntimeError, OSError... for missing files
        raise DataError(f"torchvision's {dataset_class.__name__} found no usable copy under {root} ({' '.join(str(err).split())}); "
                        f"put the data set there (torchvision's layout, e.g. a download made once with download=True), "
                        f"or set `root`") from None
    images = getattr(dataset, "data", None)
    labels = getattr(dataset, "targets", None)
    labels = getattr(dataset, "labels", None) if labels is None else labels
    if images is None or labels is None:  # no arrays to take: decode every item (slower, any data set)
        import numpy as np

        pairs = [(np.asarray(image), label) for image, label in dataset]
        images, labels = np.stack([p[0] for p in pairs]), [p[1] for p in pairs]
    images = images.numpy() if hasattr(images, "numpy") else images
    labels = labels.numpy() if hasattr(labels, "numpy") else labels
    where = f"{dataset_class.__name__} under {root}"
    arrays_labels = _as_labels(labels, where)
    return _Arrays(_as_images(images, where), arrays_labels, _class_names(getattr(dataset, "classes", None), arrays_labels))


SOURCES.add(SourceKind("npz", NpzArgs, _load_npz, "numpy arrays in one .npz file (uint8 or [0, 1] float images)."))
SOURCES.add(SourceKind("image_folder", ImageFolderArgs, _load_image_folder,
                       "a folder tree of images, one subfolder per class (torchvision's ImageFolder layout), split into train/ and test/."))
SOURCES.add(SourceKind("torchvision", TorchvisionArgs, _load_torchvision,
                       "a torchvision image-classification data set already on disk, read by its own loader with download=False."))


# ---------------------------------------------------------------- in a worker: the data of one request

def request_splits(request: dict[str, Any]) -> tuple[Any, Any]:
    """(train, test) data.Split of a request naming a referenced data set, refused if the data changed
    since the request's key was made."""
    import torch

    from reportgen.data import Split

    data, location = request["data"], Path(request["locations"]["data"])
    model = SOURCES.get(data["kind"]).args
    args = model(kind=data["kind"], **data["args"], **{_location_field(model): str(location)})
    train, test = load_arrays(request["dataset"], args, location)
    described = _describe(request["dataset"], args, location, train, test)
    if described.sha256 != data["sha256"]:
        raise DataError(f"datasets.{request['dataset']}: {location} changed since this run was planned (content sha256 "
                        f"{described.sha256[:12]}…, planned with {data['sha256'][:12]}…); run the command again to plan it anew.")
    return tuple(Split(torch.from_numpy(s.images), torch.from_numpy(s.labels), s.classes, str(location)) for s in (train, test))


def splits_for(request: dict[str, Any], data_dir: Path | None) -> tuple[Any, Any]:
    """(train, test) data.Split of any request: a referenced data set's, else a registered one's."""
    if "data" in request:
        return request_splits(request)
    from reportgen.data import load_split

    return load_split(request["dataset"], True, data_dir), load_split(request["dataset"], False, data_dir)


def split_loader(datasets: dict[str, Any], base_dir: Path, data_dir: Path | None) -> Callable[[str, bool], Any]:
    """(name, train) → data.Split for the report's data views: the spec's own data sets, else registered ones."""
    def load(name: str, train: bool) -> Any:
        if name not in datasets:
            from reportgen.data import load_split

            return load_split(name, train, data_dir)
        described = describe(name, datasets[name], base_dir)
        request = {"dataset": name, **described.request_fields(datasets[name])}
        return request_splits(request)[0 if train else 1]
    return load


# ---------------------------------------------------------------- the cache's record of the data it has seen

DATA_RECORD = "datasets.json"  # in the cache root: per data set, the content digest its runs were first trained on


def used_data(requests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The referenced data sets these requests use: name → location, digest, shape, classes, sizes."""
    return {r["dataset"]: {"location": r["locations"]["data"], "kind": r["data"]["kind"], "sha256": r["data"]["sha256"],
                           "shape": r["data"]["shape"], "classes": r["data"]["classes"], "sizes": r["data"]["sizes"]}
            for r in requests if "data" in r}


def data_changes(cache_root: Path, used: dict[str, dict[str, Any]]) -> list[str]:
    """One sentence per data set whose content differs from what the cache recorded on its first use."""
    recorded = _read_record(cache_root)
    notes = []
    for name, now in used.items():
        before = recorded.get(name)
        if before and before["sha256"] != now["sha256"]:
            notes.append(f"Data set {name!r} ({now['location']}) changed since the cache recorded it (content sha256 "
                         f"{before['sha256'][:12]}… then, {now['sha256'][:12]}… now): its runs train anew; the runs of "
                         "the old data stay cached (`reportgen clean --unused` removes them).")
    return notes


def record_data(cache_root: Path, used: dict[str, dict[str, Any]]) -> None:
    """Record each data set's digest as the one its cached runs use (on first use, and after a change)."""
    record = _read_record(cache_root)
    if not cache_root.is_dir() or all(record.get(name, {}).get("sha256") == now["sha256"] for name, now in used.items()):
        return  # no cache yet (nothing trained), or nothing new to record
    write_atomic(cache_root / DATA_RECORD, json.dumps(record | used, indent=1, sort_keys=True).encode())


def _read_record(cache_root: Path) -> dict[str, Any]:
    try:
        return json.loads((cache_root / DATA_RECORD).read_text())
    except (OSError, ValueError):  # none yet, or damaged: nothing recorded
        return {}
