"""Tests for reportgen.data: real copies load; damaged, partial and missing copies raise a DataError naming the problem."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from reportgen import data
from reportgen.errors import DataError, SpecError


def _real_data_dir() -> Path | None:
    # In CI the repo clone sits beside shared/; a developer may point REPORTGEN_DATA_DIR elsewhere.
    for candidate in (os.environ.get(data.ENV_VAR), Path(__file__).parents[2] / "shared" / "datasets"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


REAL = _real_data_dir()  # read before the autouse fixture clears the environment variable
requires_real = pytest.mark.skipif(
    REAL is None, reason=f"no real data: {data.ENV_VAR} is unset and no shared/datasets beside the repo")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No test reaches the network, Debian's folder, the user's cache or the caller's environment."""
    def no_network(info, root):
        raise OSError("network unreachable (test)")

    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "SYSTEM_FOLDERS", (tmp_path / "system",))
    monkeypatch.setattr(data, "CACHE_ROOT", tmp_path / "cache")
    monkeypatch.setattr(data, "_download", no_network)


# --- helpers -------------------------------------------------------------------------------------

def _idx(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_tiny(folder: Path, n_labels: int = 5, images_magic: int = data.IMAGES_MAGIC) -> np.ndarray:
    """A tiny mnist-named copy, gzipped: 5 train and 3 test images. Returns the train images."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    train_images = rng.integers(0, 256, (5, 28, 28))
    contents = {
        "train-images-idx3-ubyte": _idx(train_images, images_magic),
        "train-labels-idx1-ubyte": _idx(np.arange(n_labels) % 10, data.LABELS_MAGIC),
        "t10k-images-idx3-ubyte": _idx(rng.integers(0, 256, (3, 28, 28)), data.IMAGES_MAGIC),
        "t10k-labels-idx1-ubyte": _idx(np.array([7, 2, 1]), data.LABELS_MAGIC)}
    for file_name, content in contents.items():
        (folder / f"{file_name}.gz").write_bytes(gzip.compress(content, compresslevel=1))
    return train_images


def _trust(monkeypatch, folder: Path) -> None:
    """Make DATASETS['mnist'] expect the files now in `folder`, so only structural checks can fail."""
    sums = {path.name.removesuffix(".gz"): hashlib.sha256(_uncompressed(path)).hexdigest()
            for path in folder.iterdir()}
    monkeypatch.setitem(data.DATASETS, "mnist", dataclasses.replace(data.DATASETS["mnist"], sha256=sums))


def _uncompressed(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def _link_real(target: Path, name: str) -> Path:
    """`target` filled with links to the real files of `name` (cheap: no 50 MB copies)."""
    source = data.find_data_folder(name, REAL)
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.name.removesuffix(".gz") in data.FILES[True] + data.FILES[False]:
            (target / path.name).symlink_to(path)
    return target


def _replace(folder: Path, file_name: str, content: bytes, suffix: str = "") -> Path:
    """Swap the (linked) file `file_name` in `folder` for `content`, written as file_name + suffix."""
    for old in (folder / file_name, folder / f"{file_name}.gz"):
        old.unlink(missing_ok=True)
    path = folder / f"{file_name}{suffix}"
    path.write_bytes(content)
    return path


# --- real data -----------------------------------------------------------------------------------

@requires_real
@pytest.mark.parametrize("name", ["fashion-mnist", "mnist"])
@pytest.mark.parametrize("train, count", [(True, 60_000), (False, 10_000)])
def test_real_splits_load_with_expected_shapes(name, train, count):
    split = data.load_split(name, train, REAL)
    assert split.images.shape == (count, 28, 28)
    assert split.images.dtype == torch.uint8
    assert split.labels.dtype == torch.int64 and split.labels.shape == (count,)
    assert 0 <= int(split.labels.min()) and int(split.labels.max()) == 9
    assert len(split.classes) == 10
    assert Path(split.source).is_dir()


@requires_real
def test_fashion_class_zero_is_t_shirt():
    assert data.load_split("fashion-mnist", False, REAL).classes[0] == "T-shirt/top"


@requires_real
def test_torchvision_layout_found_through_environment_variable(tmp_path, monkeypatch):
    folder = _link_real(tmp_path / "FashionMNIST" / "raw", "fashion-mnist")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    assert data.find_data_folder("fashion-mnist") == folder
    assert data.load_split("fashion-mnist", False).source == str(folder.resolve())


@requires_real
def test_flipped_byte_in_image_file_is_named(tmp_path):
    folder = _link_real(tmp_path / "fashion-mnist", "fashion-mnist")
    content = bytearray(_uncompressed(next(folder.glob("t10k-images-idx3-ubyte*"))))
    content[16 + 5000] ^= 0xFF  # a pixel, not the header: only the checksum can notice
    path = _replace(folder, "t10k-images-idx3-ubyte", bytes(content))
    with pytest.raises(DataError, match="sha256") as caught:
        data.load_split("fashion-mnist", False, tmp_path)
    assert str(path) in str(caught.value) and "good copy" in str(caught.value)


@requires_real
def test_truncated_gzip_is_named(tmp_path):
    folder = _link_real(tmp_path / "fashion-mnist", "fashion-mnist")
    packed = gzip.compress(_uncompressed(next(folder.glob("t10k-labels-idx1-ubyte*"))))
    path = _replace(folder, "t10k-labels-idx1-ubyte", packed[: len(packed) // 2], ".gz")
    with pytest.raises(DataError, match="truncated") as caught:
        data.load_split("fashion-mnist", False, tmp_path)
    assert str(path) in str(caught.value)


@requires_real
def test_folder_of_another_data_set_is_recognised(tmp_path):
    _link_real(tmp_path / "wrong", "mnist")
    with pytest.raises(DataError, match="another data set") as caught:
        data.load_split("fashion-mnist", False, tmp_path / "wrong")
    assert "mnist's t10k-images-idx3-ubyte" in str(caught.value)


# --- synthetic data: parsing, layouts, memoisation -----------------------------------------------

@pytest.mark.parametrize("layout", ["", "mnist", "MNIST/raw"])
def test_tiny_copy_loads_from_each_layout(tmp_path, monkeypatch, layout):
    images = _write_tiny(tmp_path / "data" / layout)
    _trust(monkeypatch, tmp_path / "data" / layout)
    split = data.load_split("mnist", True, tmp_path / "data")
    assert np.array_equal(split.images.numpy(), images)
    assert split.labels.tolist() == [0, 1, 2, 3, 4] and split.labels.dtype == torch.int64
    assert split.source == str((tmp_path / "data" / layout).resolve())


def test_plain_files_are_read_as_well_as_gzipped(tmp_path, monkeypatch):
    _write_tiny(tmp_path)
    for packed in tmp_path.glob("*.gz"):
        packed.with_suffix("").write_bytes(gzip.decompress(packed.read_bytes()))
        packed.unlink()
    _trust(monkeypatch, tmp_path)
    assert data.load_split("mnist", False, tmp_path).labels.tolist() == [7, 2, 1]


def test_split_is_loaded_once_per_process(tmp_path, monkeypatch):
    _write_tiny(tmp_path)
    _trust(monkeypatch, tmp_path)
    assert data.load_split("mnist", True, tmp_path) is data.load_split("mnist", True, tmp_path)


def test_wrong_magic_number_is_reported(tmp_path, monkeypatch):
    _write_tiny(tmp_path, images_magic=data.LABELS_MAGIC)
    _trust(monkeypatch, tmp_path)
    with pytest.raises(DataError, match="magic number 2049") as caught:
        data.load_split("mnist", True, tmp_path)
    assert str(tmp_path / "train-images-idx3-ubyte.gz") in str(caught.value)


def test_image_and_label_counts_must_match(tmp_path, monkeypatch):
    _write_tiny(tmp_path, n_labels=4)
    _trust(monkeypatch, tmp_path)
    with pytest.raises(DataError, match="5 images but .* 4 labels"):
        data.load_split("mnist", True, tmp_path)


def test_file_shorter_than_its_header_says_is_reported(tmp_path, monkeypatch):
    _write_tiny(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-28]))  # one row of pixels short
    _trust(monkeypatch, tmp_path)
    with pytest.raises(DataError, match="truncated") as caught:
        data.load_split("mnist", False, tmp_path)
    assert str(path) in str(caught.value)


def test_checksum_mismatch_is_reported_after_structure_checks(tmp_path):
    _write_tiny(tmp_path)  # well formed, but not the real mnist
    with pytest.raises(DataError, match="sha256") as caught:
        data.load_split("mnist", True, tmp_path)
    assert str(tmp_path / "train-images-idx3-ubyte.gz") in str(caught.value)


# --- missing data --------------------------------------------------------------------------------

def test_missing_single_file_is_named(tmp_path, monkeypatch):
    _write_tiny(tmp_path / "mnist")
    _trust(monkeypatch, tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte") as caught:
        data.load_split("mnist", True, tmp_path)
    assert str(tmp_path / "mnist") in str(caught.value)


def test_missing_folder_lists_every_place_tried(tmp_path):
    given = tmp_path / "nowhere"
    with pytest.raises(DataError) as caught:
        data.load_split("fashion-mnist", True, given)
    message = str(caught.value)
    for place in (given / "fashion-mnist", given / "FashionMNIST" / "raw", tmp_path / "system" / "fashion-mnist"):
        assert str(place) in message
    assert "network unreachable (test)" in message and f"into {given}" in message
    assert "--data-dir PATH" in message and data.ENV_VAR in message
    assert "Traceback" not in message and "\n" not in message


def test_without_a_folder_the_cache_is_searched_and_named(tmp_path):
    with pytest.raises(DataError) as caught:
        data.find_data_folder("mnist")
    assert str(tmp_path / "cache" / "MNIST" / "raw") in str(caught.value)


def test_download_fallback_is_read_like_any_copy(tmp_path, monkeypatch):
    (tmp_path / "cache" / "MNIST" / "raw").mkdir(parents=True)
    (tmp_path / "cache" / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"partial")

    def fake_download(info, root):  # what torchvision leaves behind: <root>/<Name>/raw/
        _write_tiny(root / info.torchvision_class / "raw")
        _trust(monkeypatch, root / info.torchvision_class / "raw")

    monkeypatch.setattr(data, "_download", fake_download)
    split = data.load_split("mnist", False)  # a partial download is not an error: it is fetched again
    assert split.source == str((tmp_path / "cache" / "MNIST" / "raw").resolve())


def test_unknown_data_set_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="'cifar'"):
        data.load_split("cifar", True, tmp_path)
