"""Torch-TensorRT's program preparation, on the CPU with real torch.export
programs (torch-tensorrt itself needs full TensorRT, which does not install
here): the cast to the job's precision, the input ranges and the binding
names the engine gets, and the one-line refusal of an unconvertible op."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from farm.errors import BackendUnsupported  # noqa: E402
from farm.model_info import InputInfo, ModelInfo  # noqa: E402
from workers.backends.torch_tensorrt import program as programs  # noqa: E402


class TwoHeads(torch.nn.Module):
    """A conv net of two inputs returning two outputs."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Linear(8, 5)

    def forward(self, images, scale):
        features = torch.relu(self.conv(images)).mean(dim=(2, 3))
        return self.head(features) * scale, features.sum(dim=1)


def _saved_program(tmp_path, batch=3):
    torch.manual_seed(0)
    module = TwoHeads().eval()
    dim = torch.export.Dim("batch", min=1, max=16)
    example = (torch.randn(batch, 3, 8, 8), torch.randn(batch, 1))
    with torch.no_grad():
        exported = torch.export.export(module, example, dynamic_shapes=({0: dim}, {0: dim}))
    path = tmp_path / "model.pt2"
    torch.export.save(exported, str(path))
    return module, path


def _model_info(names=("images", "scale"), outputs=("head_out", "sum_out")):
    shapes = {"images": ("batch", 3, 8, 8), "scale": ("batch", 1)}
    return ModelInfo(path=None, sha256="0" * 64, size_bytes=0,
                     inputs=tuple(InputInfo(n, "float32", shapes[n]) for n in names), outputs=tuple(outputs))


def test_fp32_is_the_program_as_saved(tmp_path):
    _, path = _saved_program(tmp_path)
    program = programs.load_program(path)
    assert programs.cast_program(program, "fp32") is program


def test_bf16_program_computes_what_the_module_cast_to_bf16_computes_at_another_batch(tmp_path):
    module, path = _saved_program(tmp_path)
    cast = programs.cast_program(programs.load_program(path), "bf16")
    values = programs.user_input_values(cast)
    assert [v.dtype for v in values] == [torch.bfloat16, torch.bfloat16]
    assert isinstance(values[0].shape[0], torch.SymInt), "the batch dim stays dynamic"
    inputs = (torch.randn(5, 3, 8, 8).bfloat16(), torch.randn(5, 1).bfloat16())  # a batch the export never saw
    with torch.no_grad():
        got = cast.module()(*inputs)
        expected = module.to(torch.bfloat16)(*inputs)
    for g, e in zip(got, expected):
        assert g.dtype == torch.bfloat16
        np.testing.assert_allclose(g.float().numpy(), e.float().numpy(), rtol=0, atol=0)


def test_input_ranges_follow_the_job_profile_and_the_onnx_names(tmp_path):
    _, path = _saved_program(tmp_path)
    program = programs.cast_program(programs.load_program(path), "bf16")
    shapes = {"images": {"min": [1, 3, 8, 8], "opt": [4, 3, 8, 8], "max": [8, 3, 8, 8]},
              "scale": {"min": [1, 1], "opt": [4, 1], "max": [8, 1]}}
    ranges = programs.input_ranges(program, _model_info(), shapes)
    assert [(r.name, r.min, r.opt, r.max, r.dtype) for r in ranges] == [
        ("images", (1, 3, 8, 8), (4, 3, 8, 8), (8, 3, 8, 8), torch.bfloat16),
        ("scale", (1, 1), (4, 1), (8, 1), torch.bfloat16)]
    with pytest.raises(BackendUnsupported, match="the program has 2 inputs and its ONNX conversion 1"):
        programs.input_ranges(program, _model_info(names=("images",)), shapes)


def test_binding_names_are_pytrees_of_the_onnx_names(tmp_path):
    _, path = _saved_program(tmp_path)
    program = programs.load_program(path)
    inputs, outputs = programs.binding_names(program, _model_info())
    assert inputs == ("images", "scale")
    assert outputs == ("head_out", "sum_out")
    with pytest.raises(BackendUnsupported, match="returns 2 tensors and its ONNX conversion 1 outputs"):
        programs.binding_names(program, _model_info(outputs=("only",)))


def test_an_operator_refusal_is_one_line_naming_the_operator():
    class UnsupportedOperatorException(RuntimeError):  # Torch-TensorRT's class name, raised as it raises it
        pass

    graph_dump = "GraphModule(\n  (conv): Conv2d(3, 8)\n)\n" * 50
    try:
        try:
            raise UnsupportedOperatorException("Conversion of function torch._ops.aten.aten::linalg_qr not "
                                               "currently supported!")
        except UnsupportedOperatorException as inner:
            raise UnsupportedOperatorException(f"Conversion of module {graph_dump} not currently fully "
                                               "supported or convertible!") from inner
    except UnsupportedOperatorException as outer:
        reason = programs.unsupported_reason(outer)
    assert reason == ("torch-tensorrt cannot convert the program: Conversion of function "
                      "torch._ops.aten.aten::linalg_qr not currently supported!")
    assert programs.unsupported_reason(ValueError("a bug")) is None
