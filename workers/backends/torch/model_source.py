"""Turn a job's model file into a ``torch.nn.Module``.

Two forms are read: a torch.export program (``.pt2``, a zip archive written
by ``torch.export.save``) natively, and ONNX through the static import
(workers/backends/torch/onnx_import.py). The farm stores models under their
hash, so the form is told from the file's content, not its name.
"""

from __future__ import annotations

import zipfile
from pathlib import Path


def model_format(path: Path) -> str:
    """"pt2" for a torch.export archive, else "onnx"."""
    return "pt2" if zipfile.is_zipfile(path) else "onnx"


def load_module(path: Path, shapes: dict[str, tuple[int, ...]], device: str = "cuda"):
    """Return (module, info saying how it was obtained) for the job's shapes.
    An ONNX module carries ``onnx_nodes`` (module name -> ONNX node name and
    op type) for failures and the host-read check."""
    if model_format(path) == "pt2":
        return _program_module(path, device)
    from workers.backends.torch.onnx_import import onnx_to_module

    return onnx_to_module(path, shapes)


def _program_module(path: Path, device: str):
    """The user's own program, compiled natively (no ONNX round trip). A
    program exported on the CPU keeps tensors it creates (masks, aranges)
    on the CPU; torch.export's move_to_device_pass rewrites them for the
    worker's device, which ``module.to()`` alone does not."""
    import torch

    program = torch.export.load(str(path))
    moved = False
    try:
        from torch.export.passes import move_to_device_pass

        program, moved = move_to_device_pass(program, device), True
    except ImportError:  # torch < 2.6
        pass
    return _as_module(program.module()), {"source_format": "torch.export (.pt2)", "native_program": True,
                                        "moved_to_device": moved}


def _as_module(program_module):
    import torch

    class Program(torch.nn.Module):
        """The program's module, as the backend handles every model
        (``.eval()``, ``.to()``, ``requires_grad_``). torch.export's module
        refuses ``train()``/``eval()``: its graph was captured in the mode it
        was exported in (inference programs are exported in eval mode), so
        switching the mode here changes nothing and is a no-op."""

        def __init__(self, program):
            super().__init__()
            self.program = program

        def forward(self, *args, **kwargs):
            return self.program(*args, **kwargs)

        def train(self, mode: bool = True):
            self.training = mode
            return self

    return Program(program_module)


def inline_identity_initializers(proto):
    """Replace ``Identity(initializer)`` nodes by a copy of the initializer.

    torch's ONNX exporter deduplicates equal weights (e.g. the zero biases of
    folded batch norms) into one initializer plus Identity nodes; onnx2torch
    expects weights to be initializers and fails on the Identity outputs.
    """
    graph = proto.graph
    weights = {init.name: init for init in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type == "Identity" and node.input and node.input[0] in weights:
            copy = graph.initializer.add()
            copy.CopyFrom(weights[node.input[0]])
            copy.name = node.output[0]
            weights[copy.name] = copy
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    return proto
