"""The torch backend compiles a torch.export program (.pt2) natively: the
user's own program, exported on the CPU (tensors it creates there follow to
the GPU), built, loaded and run at a batch other than the exported one; its
outputs match eager PyTorch. Needs a GPU (runs in benchmarks/gpu_sweep.sh
tests)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gpu


def _net():
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            y = torch.relu(self.conv(x)).mean((2, 3))
            # a tensor the program creates itself, on the export device
            return self.fc(y) + torch.arange(4, dtype=y.dtype, device=y.device)

    return Net().eval()


def test_pt2_is_compiled_as_the_program(tmp_path):
    import torch

    from farm.model_info import InputInfo, ModelInfo
    from farm.spec import MeasureConfig
    from workers.backends.base import DeviceContext, JobContext
    from workers.backends.torch.backend import TorchBackend
    from workers.backends.torch.config import TorchConfig

    torch.manual_seed(0)
    module = _net()
    batch = torch.export.Dim("batch", min=1, max=16)
    program = torch.export.export(module, (torch.randn(2, 3, 16, 16),), dynamic_shapes=({0: batch},))
    path = tmp_path / "net.pt2"
    torch.export.save(program, str(path))
    info = ModelInfo(path, "0" * 64, path.stat().st_size, (InputInfo("x", "float32", ("batch", 3, 16, 16)),),
                     ("out",))
    shape = [4, 3, 16, 16]
    ctx = JobContext(job_id="native", precision="fp32", batch_size=4, shapes={"x": {"min": shape, "opt": shape,
                     "max": shape}}, model_path=path, model=info, measure=MeasureConfig(iterations=5,
                     duration_ms=50, warmup_ms=5), calibration={},
                     device=DeviceContext(kind="gpu", name="gpu", device_class="gpu", index=0),
                     workdir=Path(tempfile.mkdtemp(dir=tmp_path)), store=None)
    backend = TorchBackend(TorchConfig.from_dict({"mode": "default"}))
    built = backend.build(ctx)
    assert built.info["source_format"] == "torch.export (.pt2)" and built.info["native_program"]
    assert "onnx_nodes" not in built.info  # no ONNX import on this route
    runner = backend.load(built.artifact, ctx)
    try:
        x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
        got = runner.infer({"x": x})["out"]
        with torch.no_grad():
            want = module(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    finally:
        runner.close()
