"""Two small models for the GPU sweep, built with torch and exported twice:
as ONNX (what the farm's model reader takes today) and as a torch.export
program (``.pt2``, what the torch backend reads natively).

A ResNet-style CNN (convolutions, batch norm, residual adds, pooling) and a
transformer encoder (attention written out as matmul/softmax so every ONNX
exporter and converter handles it) cover the two kinds of work a GPU farm
sees most. Weights are random (seeded): speed and numerical agreement do not
depend on training.
"""

from __future__ import annotations

from pathlib import Path


def _modules():
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.skip(x))

    class ResNetish(nn.Module):
        def __init__(self, width: int = 64, classes: int = 1000):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, 1))
            self.stages = nn.Sequential(Block(width, width, 1), Block(width, 2 * width, 2),
                                        Block(2 * width, 4 * width, 2))
            self.head = nn.Linear(4 * width, classes)

        def forward(self, x):
            y = self.stages(self.stem(x))
            return self.head(torch.flatten(torch.mean(y, dim=(2, 3), keepdim=True), 1))

    class EncoderLayer(nn.Module):
        def __init__(self, dim: int, heads: int):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)
            self.norm1 = nn.LayerNorm(dim)
            self.norm2 = nn.LayerNorm(dim)
            self.ff1 = nn.Linear(dim, 4 * dim)
            self.ff2 = nn.Linear(4 * dim, dim)

        def forward(self, x):
            b, t, d = x.shape
            h = self.heads
            q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4).unbind(0)
            attn = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * (d // h) ** -0.5, dim=-1)
            x = x + self.proj(torch.matmul(attn, v).transpose(1, 2).reshape(b, t, d))
            return x + self.ff2(torch.nn.functional.gelu(self.ff1(self.norm2(x))))

    class Encoder(nn.Module):
        def __init__(self, dim: int = 384, heads: int = 6, depth: int = 4):
            super().__init__()
            self.layers = nn.Sequential(*[EncoderLayer(dim, heads) for _ in range(depth)])
            self.norm = nn.LayerNorm(dim)

        def forward(self, x):
            return self.norm(self.layers(x))

    return ResNetish, Encoder


# name -> (constructor index, example input shape with batch 1, input name)
MODELS = {
    "resnetish": (0, (1, 3, 224, 224), "x"),
    "encoder": (1, (1, 128, 384), "x"),
}


def export_model(name: str, out_dir: Path, seed: int = 0) -> dict[str, Path]:
    """Write ``<name>.onnx`` (dynamic batch) and ``<name>.pt2``; return both paths."""
    import torch

    index, shape, input_name = MODELS[name]
    torch.manual_seed(seed)
    model = _modules()[index]().eval()
    example = torch.randn(*shape)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path, pt2_path = out_dir / f"{name}.onnx", out_dir / f"{name}.pt2"
    with torch.no_grad():
        # The TorchScript exporter gives plain opset-17 graphs that onnx2torch converts.
        torch.onnx.export(model, (example,), str(onnx_path), input_names=[input_name], output_names=["y"],
                          dynamic_axes={input_name: {0: "batch"}, "y": {0: "batch"}}, opset_version=17,
                          dynamo=False)
        batch = torch.export.Dim("batch", min=1, max=1024)
        program = torch.export.export(model, (torch.randn(2, *shape[1:]),), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(pt2_path))
    return {"onnx": onnx_path, "pt2": pt2_path}


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "models")
    for model_name in MODELS:
        print(export_model(model_name, target))
