"""Quantization recipes: which ops get quantized, in which format and types,
per consuming backend (issue 22). One recipe is not right for every runtime:

- ``onnxruntime`` (ONNX Runtime's own static recipe, its documented CPU
  choice): every op ONNX Runtime can quantize, uint8 activations
  (asymmetric) with int8 weights (U8S8), QDQ or QOperator format. ONNX
  Runtime fuses Q/DQ around its integer kernels (QLinearConv, MatMulInteger,
  QLinearAdd...), so the whole graph stays integer between them.
- ``tensorrt`` (TensorRT's explicit quantization): Q/DQ only at the inputs
  of Conv/MatMul/Gemm, symmetric int8 (zero point 0) for activations and
  weights, biases left float (TensorRT quantizes them itself), QDQ only.
  On ONNX Runtime's CPU kernels this leaves a dequantize -> float ->
  quantize chain around every activation (1.0-3.6x slower than fp32 on
  issue 22's panel); TensorRT fuses it away.

Calibration methods (spec ``calibration.method``, a sweep axis): ``minmax``
(the observed range), ``entropy`` (the threshold minimising the KL
divergence between fp32 and quantized histograms, as TensorRT's
EntropyCalibrator2 rule on a 512-bin histogram: ONNX Runtime's quantize_static
alone searches a single candidate and returns min-max's ranges, see
int8._entropy_ranges), ``percentile`` (the 99.999th percentile of |x|,
ONNX Runtime's default percentile). fp8 always uses ONNX Runtime's
Distribution calibrator (the only one that gives fp8 scales).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from farm.quantized import QUANTIZED_OPS, quantized_node_counts  # noqa: F401 (decided once, farm-side)

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
RECIPES = ("onnxruntime", "tensorrt")
FORMATS = ("qdq", "qoperator")
TENSORRT_OPS = ("Conv", "MatMul", "Gemm")
# TensorRT's explicit quantization takes symmetric Q/DQ only (zero point 0)
# and no int32 bias DequantizeLinear: it quantizes biases itself.
TENSORRT_OPTIONS = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False}
@dataclass(frozen=True)
class Recipe:
    name: str
    quant_format: str = "qdq"
    activation_type: str = "uint8"
    weight_type: str = "int8"
    ops: tuple[str, ...] | None = None  # None: every op the quantizer supports
    options: dict = field(default_factory=dict)

    def describe(self) -> dict:
        """As recorded in build_info["quantization"] (and so in reports)."""
        return {"recipe": self.name, "format": self.quant_format.upper() if self.quant_format == "qdq" else "QOperator",
                "activation_type": self.activation_type, "weight_type": self.weight_type,
                "ops": list(self.ops) if self.ops else "all", "options": dict(self.options)}


def recipe(name: str, quant_format: str | None = None, kind: str = "int8") -> Recipe:
    if kind == "fp8":
        return Recipe("tensorrt", "qdq", "float8e4m3fn", "float8e4m3fn", TENSORRT_OPS, dict(TENSORRT_OPTIONS))
    if name == "tensorrt":
        if quant_format not in (None, "qdq"):
            raise ValueError("the tensorrt recipe is Q/DQ only (TensorRT parses no QOperator ops)")
        return Recipe("tensorrt", "qdq", "int8", "int8", TENSORRT_OPS, dict(TENSORRT_OPTIONS))
    if name == "onnxruntime":
        return Recipe("onnxruntime", quant_format or "qdq", "uint8", "int8", None, {})
    raise ValueError(f"unknown quantization recipe {name!r} (recipes: {', '.join(RECIPES)})")
