"""Real pretrained models for the TensorRT-family tests: PP-OCRv4's text
detector (CNN, dynamic N x 3 x H x W) and recogniser (CNN + SVTR
transformer, N x 3 x 48 x W), shipped in the rapidocr_onnxruntime wheel
(test extra; ``pip install --no-deps rapidocr_onnxruntime`` is enough:
the package is located, never imported)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def _rapidocr_models() -> Path | None:
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    for location in (spec.submodule_search_locations or []) if spec else []:
        models = Path(location) / "models"
        if (models / "ch_PP-OCRv4_rec_infer.onnx").exists():
            return models
    return None


@pytest.fixture(scope="session")
def ppocr_models() -> Path:
    models = _rapidocr_models()
    if models is None:
        pytest.skip("needs the rapidocr_onnxruntime wheel (pip install --no-deps rapidocr_onnxruntime)")
    return models


@pytest.fixture(scope="session")
def det_model(ppocr_models) -> Path:
    return ppocr_models / "ch_PP-OCRv4_det_infer.onnx"


@pytest.fixture(scope="session")
def rec_model(ppocr_models) -> Path:
    return ppocr_models / "ch_PP-OCRv4_rec_infer.onnx"


@pytest.fixture(scope="session")
def rtx():
    return pytest.importorskip("tensorrt_rtx_bindings") if importlib.util.find_spec("tensorrt_rtx") is None \
        else pytest.importorskip("tensorrt_rtx")
