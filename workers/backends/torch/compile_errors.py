"""One line for a failed torch.compile: which ONNX node stopped it, and why.

Dynamo's message ends with advice ("Set TORCHDYNAMO_VERBOSE=1 for the
internal stack trace ...") and a job's error column showed only that last
line. The useful parts are the first line of the message (what Dynamo or
Inductor refused) and the user frame it stopped in: for a converted ONNX
model that frame is the GraphModule's generated forward, whose line names
the submodule being called, i.e. the ONNX node (onnx2torch names modules
after nodes).
"""

from __future__ import annotations

import re
import traceback

_CALL = re.compile(r'self\.([A-Za-z_][\w]*)\(|getattr\(self,\s*"([^"]+)"\)\(')
_ADVICE = ("Set TORCHDYNAMO_VERBOSE", "from user code", "For more information", "Explanation:", "Hint:")


def describe(exc: BaseException, onnx_nodes: dict[str, tuple[str, str]]) -> str:
    """``ExceptionType: first line`` prefixed by the ONNX node, when known."""
    text = next((line.strip() for line in str(exc).splitlines()
                 if line.strip() and not line.strip().startswith(_ADVICE)), "")
    message = f"{type(exc).__name__}: {text}".rstrip(": ")
    target = _failing_target(exc, onnx_nodes)
    if target is None:
        return message
    name, op_type = onnx_nodes[target]
    return f"ONNX node {name!r} ({op_type}): {message}"


def _failing_target(exc: BaseException, onnx_nodes: dict[str, tuple[str, str]]) -> str | None:
    """The last submodule call of the generated forward on the stack."""
    frames = list(getattr(exc, "real_stack", None) or [])
    if not frames and exc.__traceback__ is not None:
        frames = traceback.extract_tb(exc.__traceback__)
    found = None
    for frame in frames:
        for match in _CALL.finditer(frame.line or ""):
            name = match.group(1) or match.group(2)
            if name in onnx_nodes:
                found = name
    if found is None:  # Dynamo often names the module in its message instead
        for name in onnx_nodes:
            if re.search(rf"\b{re.escape(name)}\b", str(exc)):
                return name
    return found
