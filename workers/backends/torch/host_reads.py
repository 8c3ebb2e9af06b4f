"""Find the ops of a converted model that read a tensor into Python.

A read (``tolist()``, ``item()``, ``int(t)``, ``bool(t)``, ``numpy()``)
inside the forward is a device-to-host sync on a GPU, a Dynamo graph break
(or a ``fullgraph`` failure), and it cannot be captured in a CUDA graph.
The static import must leave none. ``scan`` runs one eager forward through
an FX interpreter and attributes every read to the FX node, and so to the
ONNX node and op type, that made it: the build's check, and the test's
count.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# Python-level readers that bypass the dispatcher (seen with torch 2.13:
# tolist() and numpy() dispatch nothing; item()/int()/bool() dispatch
# aten._local_scalar_dense, counted by the mode below).
_PY_READERS = ("tolist", "numpy", "__array__")


@dataclass
class HostReads:
    total: int = 0
    by_node: dict[str, int] = field(default_factory=dict)  # FX node target -> reads
    onnx_nodes: dict[str, tuple[str, str]] = field(default_factory=dict)  # FX target -> (ONNX name, op type)

    def describe(self, limit: int = 3) -> str:
        parts = []
        for target, count in list(self.by_node.items())[:limit]:
            name, op = self.onnx_nodes.get(target, (target, "?"))
            parts.append(f"ONNX node {name!r} ({op}): {count} read(s)")
        more = len(self.by_node) - limit
        return "; ".join(parts) + (f"; and {more} more node(s)" if more > 0 else "")


class _Counter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def _counting():
    counter = _Counter()
    originals = {name: getattr(torch.Tensor, name) for name in _PY_READERS if hasattr(torch.Tensor, name)}

    def wrap(original):
        def reader(self, *args, **kwargs):
            counter.count += 1
            return original(self, *args, **kwargs)
        return reader

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(original))
    try:
        with counter:
            yield counter
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


class _Attributing(torch.fx.Interpreter):
    def __init__(self, module, counter, reads: HostReads):
        super().__init__(module)
        self.counter, self.reads = counter, reads

    def run_node(self, node):
        before = self.counter.count
        try:
            result = super().run_node(node)
        except Exception as exc:
            if not hasattr(exc, "fx_target"):
                exc.fx_target = str(node.target)  # which ONNX node failed, for the job's one-line error
            raise
        if self.counter.count > before:
            self.reads.by_node[str(node.target)] = self.counter.count - before
        return result


def scan(module: torch.fx.GraphModule, inputs: list, onnx_nodes: dict[str, tuple[str, str]] | None = None):
    """(outputs, HostReads) of one forward of ``module`` on ``inputs``."""
    reads = HostReads(onnx_nodes=dict(onnx_nodes or {}))
    with torch.no_grad(), _counting() as counter:
        outputs = _Attributing(module, counter, reads).run(*inputs)
    reads.total = counter.count
    return outputs, reads
