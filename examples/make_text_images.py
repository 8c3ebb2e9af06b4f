"""Make examples/data/text_pages.npz: synthetic "document" images for the
PP-OCR text detector — dark word-like bars on a light page, normalised the
way PP-OCR expects ((pixel/255 - 0.5) / 0.5). Random noise makes the
detector output ~0 everywhere, which says nothing about accuracy; pages
with text-like strokes give real activations and detections.

    python examples/make_text_images.py [--count 8] [--size 320]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def page(rng: np.random.Generator, size: int) -> np.ndarray:
    image = np.full((size, size, 3), 235, dtype=np.float32)
    y = 12
    while y < size - 20:
        height = int(rng.integers(10, 18))
        x = int(rng.integers(8, 30))
        while x < size - 30:
            width = int(rng.integers(14, 60))
            for stroke in range(x, min(x + width, size - 8), 4):
                image[y:y + height, stroke:stroke + 2] = rng.uniform(10, 60)
            image[y + height // 2 - 1:y + height // 2 + 1, x:x + width] = rng.uniform(10, 60)
            x += width + int(rng.integers(8, 20))
        y += height + int(rng.integers(10, 26))
    image = np.clip(image, 0, 255) / 255.0
    return ((image - 0.5) / 0.5).transpose(2, 0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "text_pages.npz")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    pages = np.stack([page(rng, args.size) for _ in range(args.count)]).astype(np.float32)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, x=pages)
    print(f"wrote {args.out}: x {pages.shape}")


if __name__ == "__main__":
    main()
