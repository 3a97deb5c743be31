"""Answer functions for asks about a data set (Q1.1): read from its splits, as training sees them, not hard-coded."""
from __future__ import annotations

from typing import Any

from reportgen.analysis import wording as w
from reportgen.analysis.ask_answers import AskContext
from reportgen.registry import Args


def image_shape(ctx: AskContext, args: Args) -> str | None:
    """The shape one image has as a training tensor, and its value range, read from the data."""
    splits = _splits(ctx, args)
    if splits is None:
        return None
    from reportgen.data import to_float_images  # torch: only when the data set is read anyway

    train = splits[0]
    sample = to_float_images(train.images[:1000], train.images.shape[-1], "cpu")  # as training sees them: (N, C, H, W)
    return (f"One image is a {' × '.join(map(str, sample.shape[1:]))} (C × H × W) float tensor, values "
            f"{float(sample.min()):g} to {float(sample.max()):g}.")


def class_counts(ctx: AskContext, args: Args) -> str | None:
    """Split sizes and the images per class, counted from the data."""
    splits = _splits(ctx, args)
    if splits is None:
        return None
    train, test = splits
    counts = [_per_class(s) for s in (train, test)]
    return (f"{w.fmt_count(len(train.labels))} training and {w.fmt_count(len(test.labels))} test images, "
            f"{_count_text(counts[0], train.classes)} and {_count_text(counts[1], test.classes)} per class.")


def image_classes(ctx: AskContext, args: Args) -> str | None:
    """The class names of the images a figure shows (`classes`), read from the data set."""
    splits = _splits(ctx, args)
    if splits is None:
        return None
    names = splits[0].classes
    chosen = getattr(args, "classes", None) or list(range(len(names)))
    shown = [names[i] for i in chosen if 0 <= i < len(names)]
    return f"Shown with their class names: {w.join_words(shown)}."


def _splits(ctx: AskContext, args: Args) -> tuple[Any, Any] | None:
    if ctx.load_split is None:
        return None
    dataset = getattr(args, "dataset")
    try:
        return ctx.load_split(dataset, True), ctx.load_split(dataset, False)
    except Exception:  # noqa: BLE001 - unreadable data is 'not measured'; the data view says why
        return None


def _per_class(split: Any) -> list[int]:
    return [int(c) for c in split.labels.bincount(minlength=len(split.classes))]


def _count_text(counts: list[int], classes: tuple[str, ...]) -> str:
    """'6,000 each' or 'from 5,421 (Sandal) to 6,742 (Shirt)'."""
    low, high = min(counts), max(counts)
    if low == high:
        return w.fmt_count(low)
    return (f"from {w.fmt_count(low)} ({classes[counts.index(low)]}) "
            f"to {w.fmt_count(high)} ({classes[counts.index(high)]})")
