"""The torch backend's native .pt2 route, the parts that run on a CPU: the
user's program comes back as a module the backend can handle like any
other (eval, requires_grad_, a dtype cast), at a batch other than the one
it was exported with, computing what the program computes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def test_program_module_takes_eval_and_a_dtype(tmp_path):
    from workers.backends.torch.model_source import load_module, model_format

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.norm = torch.nn.BatchNorm2d(4)

        def forward(self, x):
            return torch.relu(self.norm(self.conv(x))).mean((2, 3))

    torch.manual_seed(0)
    net = Net().eval()
    batch = torch.export.Dim("batch", min=1, max=8)
    program = torch.export.export(net, (torch.randn(2, 3, 8, 8),), dynamic_shapes=({0: batch},))
    path = tmp_path / "net.pt2"
    torch.export.save(program, str(path))
    assert model_format(path) == "pt2"
    module, info = load_module(path, {"x": (5, 3, 8, 8)}, device="cpu")
    assert info["native_program"] and info["source_format"] == "torch.export (.pt2)"
    module = module.eval().requires_grad_(False)  # what the backend does to every model
    x = torch.randn(5, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(module(x), net(x))
        half = module.to(dtype=torch.bfloat16)(x.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16 and half.shape == (5, 4)
