"""Already-quantized models (issue 22): detected at submit from their ops.

A model that arrives with Q/DQ pairs or integer kernels (ModelOpt or ONNX
Runtime Q/DQ output, a dynamically quantized model) is run as given under
precision ``model`` ("the model's own types": a strongly typed TensorRT
build, ONNX Runtime as is). Quantizing it again as ``int8`` is refused at
submit with the reason: it would insert nothing (or stack a second
quantization on the first) and rank a copy of the model as a new int8
configuration.
"""

from __future__ import annotations

from pathlib import Path

from farm.errors import SpecError

MODEL_PRECISION = "model"
# Ops whose presence means a model is already quantized (ONNX and com.microsoft domains).
QUANTIZED_OPS = frozenset({
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
    "ConvInteger", "MatMulInteger", "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu",
    "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearConcat", "QLinearSoftmax", "QLinearReduceMean",
    "QGemm", "QAttention", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM", "MatMulIntegerToFloat",
    "MatMulNBits", "QLinearWhere", "QLinearConvTranspose",
})


def quantized_node_counts(path: Path | str) -> dict[str, int]:
    """op type -> count of quantized ops in an ONNX model (subgraphs included)."""
    import onnx

    counts: dict[str, int] = {}

    def walk(graph):
        for node in graph.node:
            if node.op_type in QUANTIZED_OPS:
                counts[node.op_type] = counts.get(node.op_type, 0) + 1
            for attr in node.attribute:
                for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                    walk(sub)

    walk(onnx.load(str(path), load_external_data=False).graph)
    return counts


def describe_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {op}" for op, n in sorted(counts.items(), key=lambda kv: -kv[1])[:4])


def check_quantized_precisions(spec, model) -> None:
    """``int8``/``fp8`` on a model that is already quantized: refused with the reason."""
    from farm.accuracy import CALIBRATED

    asked = [p for p in spec.precisions if p in CALIBRATED]
    if not asked or not str(model.path).endswith(".onnx"):
        return
    counts = quantized_node_counts(model.path)
    if counts:
        index = spec.precisions.index(asked[0])
        raise SpecError(f"spec field 'precisions[{index}]': the model is already quantized ({describe_counts(counts)}); "
                        f"{asked[0]} would quantize it again. Use precision '{MODEL_PRECISION}' to measure it as "
                        f"given (its own types; a strongly typed TensorRT build)")
