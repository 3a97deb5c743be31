"""The data sets a spec may name: the registry with each one's display name, classes and file checksums.

Loading lives in `data.py`; this module stays free of torch so that validating a spec is cheap.
"""
from __future__ import annotations

from dataclasses import dataclass

from reportgen.registry import Args, NoArgs, Registry


@dataclass(frozen=True)
class DatasetInfo:
    name: str  # the spec's name, e.g. "fashion-mnist"
    title: str  # as the report writes it, e.g. "Fashion-MNIST"
    folder: str  # subfolder name, as in shared/datasets and /usr/share/datasets
    torchvision_class: str  # name in torchvision.datasets; also its `<root>/<Name>/raw/` folder
    classes: tuple[str, ...]  # index = label
    sha256: dict[str, str]  # file name (uncompressed) → sha256 of its uncompressed content
    help: str = ""
    args: type[Args] = NoArgs


DATASETS: Registry[DatasetInfo] = Registry("data set")

DATASETS.add(DatasetInfo(
    "fashion-mnist", "Fashion-MNIST", "fashion-mnist", "FashionMNIST", (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"), {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
    help="Zalando's clothing images: 60,000 training and 10,000 test images, 28 × 28 grey, 10 classes."))

DATASETS.add(DatasetInfo(
    "mnist", "MNIST", "mnist", "MNIST", tuple(str(digit) for digit in range(10)), {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
    help="Handwritten digits: 60,000 training and 10,000 test images, 28 × 28 grey, 10 classes."))


def dataset_title(name: str) -> str:
    """'Fashion-MNIST' for 'fashion-mnist'; an unknown name as given."""
    return DATASETS.get(name).title if name in DATASETS else str(name)
