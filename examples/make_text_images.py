"""Make examples/data/text_pages.npz: rendered text pages for the PP-OCR
text detector — lines of real words in a TrueType font (Pillow's bundled
one), dark ink on light paper at a few sizes, normalised the way PP-OCR
expects ((pixel/255 - 0.5) / 0.5), NCHW float32.

The quickstart calibrates int8 on the first half of the pages and judges
it on the other half (farm/input_data.py split_rows): random noise makes
the detector output ~0 everywhere, which says nothing about accuracy.

    python examples/make_text_images.py [--count 32] [--size 320]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

WORDS = ("invoice total amount due date engine farm batch latency shape model receipt order number "
         "customer address street city phone email price quantity item description tax subtotal "
         "payment card cash change thank you welcome station platform ticket gate seat coach "
         "2026 12 07 15.40 399 1024 A4 H200 No. Ref: Qty").split()


def page(rng: np.random.Generator, size: int) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    paper = int(rng.integers(225, 250))
    image = Image.new("L", (size, size), paper)
    draw = ImageDraw.Draw(image)
    y = int(rng.integers(4, 16))
    while y < size - 14:
        height = int(rng.choice([12, 14, 16, 20, 24]))
        font = ImageFont.load_default(size=height)
        x = int(rng.integers(4, 30))
        text = " ".join(rng.choice(WORDS, int(rng.integers(2, 7))))
        draw.text((x, y), text, fill=int(rng.integers(0, 70)), font=font)
        y += height + int(rng.integers(6, 22))
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    return np.repeat(((pixels - 0.5) / 0.5)[None], 3, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=32)
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
