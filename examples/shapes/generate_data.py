"""Generate the example's data set: 32 × 32 colour images of four shapes on noisy backgrounds, as an
ImageFolder tree (data/shapes/{train,test}/<class>/NNNN.png). Nothing here is committed; run it once:

    python examples/shapes/generate_data.py

Seeded, so every run writes the same pixels (and reportgen plans the same runs).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "cross")
SIZE = 32  # pixels per side


def draw_shape(rng: np.random.Generator, shape: str) -> np.ndarray:
    """One (SIZE, SIZE, 3) uint8 image: a shape of random colour, size and place on a noisy background."""
    background = rng.integers(0, 90, size=(SIZE, SIZE, 3), dtype=np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    radius = int(rng.integers(6, 12))
    cx, cy = (int(v) for v in rng.integers(radius + 1, SIZE - radius - 1, size=2))
    colour = tuple(int(v) for v in rng.integers(120, 256, size=3))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour)
    else:
        width = max(2, radius // 3)
        draw.rectangle((cx - width, cy - radius, cx + width, cy + radius), fill=colour)
        draw.rectangle((cx - radius, cy - width, cx + radius, cy + width), fill=colour)
    return np.asarray(image)


def write_split(root: Path, split: str, per_class: int, rng: np.random.Generator) -> None:
    for shape in CLASSES:
        folder = root / split / shape
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(draw_shape(rng, shape)).save(folder / f"{i:04d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "shapes")
    parser.add_argument("--train-per-class", type=int, default=150)
    parser.add_argument("--test-per-class", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    write_split(args.out, "train", args.train_per_class, rng)
    write_split(args.out, "test", args.test_per_class, rng)
    print(f"Wrote {len(CLASSES) * (args.train_per_class + args.test_per_class)} images to {args.out}")


if __name__ == "__main__":
    main()
