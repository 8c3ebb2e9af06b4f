"""A panel of real pretrained ONNX models that PyPI wheels ship.

Each entry: the wheel (test extra), the file inside it, and the job shapes
at a batch size. The wheels are located, never imported. ``models_dir``
(benchmarks on a device machine, where the wheels are not installed) reads
the same files from one folder instead.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class PanelModel:
    key: str
    architecture: str
    package: str  # import name of the wheel that ships it
    member: str  # path inside the package
    shapes: Callable[[int], dict[str, tuple[int, ...]]]  # batch -> input shapes
    # batch -> inputs of the kind the model was trained on, where random ones say nothing: PP-OCR's
    # detector gives a text probability of at most 8e-4 on uniform noise (below fp16's precision
    # there), and the accuracy gate would judge rounding of an all-zero map.
    sample_feeds: Callable[[int], dict[str, np.ndarray]] | None = None

    @property
    def filename(self) -> str:
        return Path(self.member).name

    def locate(self, models_dir: Path | None = None) -> Path | None:
        if models_dir is not None:
            path = Path(models_dir) / self.filename
            return path if path.exists() else None
        spec = importlib.util.find_spec(self.package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            path = Path(location) / self.member
            if path.exists():
                return path
        return None


def text_images(batch: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Lines of dark text on light paper, PP-OCR's normalisation ((x/255 - 0.5) / 0.5), NCHW."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    words = ["invoice", "total", "2026", "engine", "farm", "H200", "batch", "latency", "shape", "model"]
    images = []
    for _ in range(batch):
        image = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(200, 256, 3)))
        draw = ImageDraw.Draw(image)
        for top in range(2, max(height - 10, 3), 16):
            text = " ".join(rng.choice(words, 6))
            draw.text((int(rng.integers(0, 12)), top), text, fill=tuple(int(v) for v in rng.integers(0, 60, 3)))
        pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
        images.append((pixels - 0.5) / 0.5)
    return np.stack(images).astype(np.float32)


PANEL = (
    PanelModel("yolov8n-320", "CNN detector, YOLOv8n (Resize/Concat/Split heads, anchor Range/Expand)",
               "nudenet", "320n.onnx", lambda b: {"images": (b, 3, 320, 320)}),
    PanelModel("ppocr-det", "CNN text detector, PP-OCRv4 DBNet (Resize FPN)", "rapidocr_onnxruntime",
               "models/ch_PP-OCRv4_det_infer.onnx", lambda b: {"x": (b, 3, 320, 320)},
               lambda b: {"x": text_images(b, 320, 320)}),
    PanelModel("ppocr-rec", "CNN+SVTR text recogniser, PP-OCRv4 (dynamic width; attention blocks)",
               "rapidocr_onnxruntime", "models/ch_PP-OCRv4_rec_infer.onnx", lambda b: {"x": (b, 3, 48, 320)},
               lambda b: {"x": text_images(b, 48, 320)}),
    PanelModel("ppocr-cls", "CNN classifier, PP-OCR mobile v2 text-direction", "rapidocr_onnxruntime",
               "models/ch_ppocr_mobile_v2.0_cls_infer.onnx", lambda b: {"x": (b, 3, 48, 192)},
               lambda b: {"x": text_images(b, 48, 192)}),
    PanelModel("silero-vad", "recurrent VAD, silero v5 16 kHz (LSTM; input, state, sr)", "silero_vad",
               "data/silero_vad_16k_op15.onnx", lambda b: {"input": (b, 512), "state": (2, b, 128), "sr": ()}),
    PanelModel("magika", "byte-sequence CNN classifier, Magika standard_v3_3 (int32 input)", "magika",
               "models/standard_v3_3/model.onnx", lambda b: {"bytes": (b, 2048)}),
)


def by_key(key: str) -> PanelModel:
    return next(m for m in PANEL if m.key == key)


def profile_shapes(shapes: dict[str, tuple[int, ...]]) -> dict[str, dict]:
    """A job's ``shapes`` (input -> min/opt/max) for static ``shapes``."""
    return {name: {"min": list(s), "opt": list(s), "max": list(s)} for name, s in shapes.items()}
