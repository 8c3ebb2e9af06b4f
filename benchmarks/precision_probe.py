"""Where a panel model loses accuracy in fp16/bf16, on the CPU.

The model goes through the torch backend's static import (the module a GPU
job compiles), then runs twice node by node (torch.fx): in float32, and with
the weights and every node's output rounded to the precision (as a GPU
kernel stores its output; Inductor's fused kernels round less often, so this
is an upper bound). Prints the output's rel L2 error vs float32 and the nodes
where the error grows most. ``--keep REGEX`` leaves the nodes whose
"name type" matches unrounded (kept in float32), to test whether a layer
class causes the error; ``--significand BITS`` rounds to BITS significant
bits with float32's exponent range instead (no overflow/underflow: tells
range problems from rounding).

    python benchmarks/precision_probe.py ppocr-det fp16 [--keep 'FoldedBatchNorm'] [--significand 11]
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))


def rounder(precision: str, bits: int | None):
    import torch

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]

    def rnd(t):
        if not (isinstance(t, torch.Tensor) and t.is_floating_point()):
            return t
        if bits:
            mantissa, exponent = torch.frexp(t)
            return torch.ldexp(torch.round(mantissa * 2.0 ** bits) / 2.0 ** bits, exponent.to(t.dtype))
        return t.to(dtype).float()
    return rnd


def recorded_run(module, inputs, rnd=None, keep: str | None = None) -> tuple[dict, object]:
    """(node name -> output tensor, the module's output) of one run; ``rnd``
    applied to every node's output except those matching ``keep``."""
    import torch
    import torch.fx as fx

    outputs: dict = {}

    class Recorder(fx.Interpreter):
        def run_node(self, node):
            result = super().run_node(node)
            kind = type(self.module.get_submodule(node.target)).__name__ if node.op == "call_module" else node.target
            if rnd and node.op != "output" and not (keep and re.search(keep, f"{node.name} {kind}")):
                result = type(result)(rnd(r) for r in result) if isinstance(result, (tuple, list)) else rnd(result)
            if isinstance(result, torch.Tensor):
                outputs[node.name] = result
            return result

    with torch.no_grad():
        out = Recorder(module).run(*[rnd(i) if rnd else i for i in inputs])
    return outputs, out


def rel_l2(actual, expected) -> float:
    a, e = actual.double(), expected.double()
    return float((a - e).norm() / max(float(e.norm()), 1e-30))


def main() -> int:
    import torch

    from real_models import by_key
    from workers.backends.torch.model_source import load_module

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("precision", choices=["fp16", "bf16"])
    parser.add_argument("--keep", help="regex on 'node_name Type': nodes left in float32")
    parser.add_argument("--significand", type=int, help="round to this many significant bits, float32 range")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = by_key(args.model)
    shapes = model.shapes(1)
    module, _info = load_module(model.locate(), shapes)
    module = module.eval()
    if model.sample_feeds is None:
        print(f"Error: {args.model} has no sample inputs in tests/real_models.py (the PP-OCR models have)")
        return 1
    inputs = [torch.from_numpy(v) for v in model.sample_feeds(1).values()]
    rnd = rounder(args.precision, args.significand)
    low = copy.deepcopy(module)
    for tensor in list(low.buffers()) + list(low.parameters()):
        if tensor.is_floating_point():
            tensor.data = rnd(tensor.data)
    ref, ref_out = recorded_run(module, inputs)
    got, got_out = recorded_run(low, inputs, rnd, args.keep)
    pairs = zip(got_out if isinstance(got_out, (list, tuple)) else [got_out],
                ref_out if isinstance(ref_out, (list, tuple)) else [ref_out])
    print(f"{args.model} {args.precision} keep={args.keep} significand={args.significand}: output rel L2",
          ", ".join(f"{rel_l2(a, e):.3e}" for a, e in pairs))
    growth, seen = [], {}
    for node in module.graph.nodes:
        if node.name not in ref or not ref[node.name].is_floating_point() or node.op == "get_attr":
            continue
        error = rel_l2(got[node.name], ref[node.name])
        inherited = max([seen[n.name] for n in node.all_input_nodes if n.name in seen], default=0.0)
        seen[node.name] = error
        if node.op != "placeholder" and inherited > 0:
            kind = type(module.get_submodule(node.target)).__name__ if node.op == "call_module" else str(node.target)
            growth.append((error / inherited, error, inherited, node.name, kind))
    print("largest growth (error / worst input error):")
    for ratio, error, inherited, name, kind in sorted(growth, reverse=True)[:args.top]:
        print(f"  x{ratio:5.2f} {error:.2e} (inputs {inherited:.2e}) {name} {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
