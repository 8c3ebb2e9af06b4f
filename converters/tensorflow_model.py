"""TensorFlow SavedModel directory / frozen graph (GraphDef ``.pb``) -> ONNX
with tf2onnx, the TensorFlow-to-ONNX converter ONNX maintains. The
SavedModel's serving signature (or the graph's placeholders and unconsumed
outputs) names the inputs and outputs; the opset is tf2onnx's default for
its version, recorded with the versions."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

from converters import CONVERTERS, ConversionFailed, MissingFramework
from converters import parity as parity_check

CONVERTER = CONVERTERS["tf-saved-model"].name
_GRAPH_ONLY = {"Const", "NoOp", "Assert", "Placeholder", "PlaceholderWithDefault", "VarHandleOp", "SaveV2",
               "RestoreV2"}


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # conversion is CPU work; never touch a worker's GPU


def _tf():
    quiet_tensorflow()
    try:
        import tensorflow as tf
        import tf2onnx  # noqa: F401
    except ModuleNotFoundError as exc:
        raise MissingFramework(f"converting a TensorFlow model needs {exc.name}, which is not installed here: "
                               f"pip install 'engine-farm[tensorflow]'") from None
    _numpy2_compat()
    return tf


def _numpy2_compat() -> None:
    """tf2onnx 1.17 still reads ``np.object`` etc. in a few rewriters
    (removed in numpy 2); Keras ships the same patch for its ONNX export."""
    import numpy as np

    if not hasattr(np, "object"):
        np.object = object  # type: ignore[attr-defined]
    with contextlib.suppress(ImportError):
        from keras.src.export.tf2onnx_lib import patch_tf2onnx

        patch_tf2onnx()


class UnsupportedOps(logging.Handler):
    """Collects tf2onnx's "Tensorflow op [node: Op] is not supported" lines:
    tf2onnx logs them and writes a model that keeps the TensorFlow op."""

    PATTERN = re.compile(r"Tensorflow op \[(.+?): (\w+)\] is not supported")

    def __init__(self):
        super().__init__(logging.ERROR)
        self.found: list[tuple[str, str]] = []

    def emit(self, record):
        match = self.PATTERN.search(record.getMessage())
        if match:
            self.found.append((match.group(1), match.group(2)))


@contextlib.contextmanager
def unsupported_ops_raise(converter: str, what: str):
    handler = UnsupportedOps()
    logger = logging.getLogger("tf2onnx")
    logger.addHandler(handler)
    try:
        yield
    except ConversionFailed:
        raise
    except Exception as exc:
        raise ConversionFailed(f"{converter} cannot convert {what}: {_first_line(exc)}") from None
    finally:
        logger.removeHandler(handler)
    if handler.found:
        node, op = handler.found[0]
        more = f" (and {len(handler.found) - 1} more)" if len(handler.found) > 1 else ""
        raise ConversionFailed(f"{converter} cannot convert TensorFlow op {op} (node '{node}'){more}: "
                               f"tf2onnx has no ONNX translation for it")


def _saved_model(source: Path):
    tf = _tf()
    try:
        loaded = tf.saved_model.load(str(source))
    except Exception as exc:
        raise ConversionFailed(f"tf.saved_model.load (TensorFlow {tf.__version__}) cannot load {source.name}: "
                               f"{_first_line(exc)}") from None
    signature = _serving_signature(loaded, source)
    specs = signature.structured_input_signature[1]
    declared = [{"name": name, "dtype": spec.dtype.name, "dims": _dims(spec.shape)} for name, spec in specs.items()]
    return loaded, signature, declared


def saved_model_parity(source: Path, out: Path, data: Path | None, shapes: dict | None) -> dict:
    """The serving signature's outputs and ONNX Runtime's on the same inputs."""
    import tensorflow as tf

    _loaded, signature, declared = _saved_model(source)
    feeds, inputs_from = _feeds(declared, data, shapes)
    result = signature(**{k: tf.constant(v) for k, v in feeds.items()})
    by_name = {k: v.numpy() for k, v in result.items()}
    names = parity_check.output_names(out)
    expected = [by_name[n] for n in names] if set(by_name) >= set(names) else list(by_name.values())
    return parity_check.compare(out, _onnx_feeds(out, feeds), expected, inputs_from)


def convert_saved_model(source: Path, out: Path, data: Path | None, shapes: dict | None) -> dict:
    tf = _tf()
    import tf2onnx
    from tf2onnx import tf_loader

    _loaded, _signature, declared = _saved_model(source)
    with unsupported_ops_raise(f"{CONVERTER} {tf2onnx.__version__}", f"SavedModel {source.name}"):
        graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
            str(source), None, None, return_initialized_tables=True, return_tensors_to_rename=True)
        with tf.device("/cpu:0"):
            tf2onnx.convert._convert_common(graph_def, name=source.name, input_names=inputs, output_names=outputs,
                                            tensors_to_rename=renames, initialized_tables=tables,
                                            output_path=str(out))
    parity_check.check_ops(out, f"{CONVERTER} {tf2onnx.__version__}")
    return {"inputs": declared, "signature": "serving_default",
            "parity": saved_model_parity(source, out, data, shapes)}


def _serving_signature(loaded, source: Path):
    signatures = getattr(loaded, "signatures", {}) or {}
    if not signatures:
        raise ConversionFailed(f"SavedModel {source.name} has no signature to convert; save it with "
                               f"tf.saved_model.save(model, path, signatures=...)")
    return signatures.get("serving_default") or next(iter(signatures.values()))


def _frozen(source: Path):
    """(GraphDef, input names, output names, declared inputs)."""
    tf = _tf()
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(source.read_bytes())
    except Exception:
        raise ConversionFailed(f"{source.name} is not a TensorFlow frozen graph (GraphDef protobuf)") from None
    inputs, outputs = _graph_ends(graph_def)
    if not inputs or not outputs:
        raise ConversionFailed(f"frozen graph {source.name} has no Placeholder inputs or no outputs")
    nodes = {n.name: n for n in graph_def.node}
    declared = []
    for name in inputs:
        node = nodes[name.split(":")[0]]
        shape = tf.TensorShape(node.attr["shape"].shape) if "shape" in node.attr else tf.TensorShape(None)
        declared.append({"name": name, "dtype": tf.dtypes.as_dtype(node.attr["dtype"].type).name,
                         "dims": _dims(shape)})
    return graph_def, inputs, outputs, declared


def frozen_graph_parity(source: Path, out: Path, data: Path | None, shapes: dict | None) -> dict:
    import tensorflow as tf

    graph_def, _inputs, outputs, declared = _frozen(source)
    feeds, inputs_from = _feeds(declared, data, shapes)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        expected = session.run(outputs, feed_dict=feeds)
    return parity_check.compare(out, _onnx_feeds(out, feeds), list(expected), inputs_from)


def convert_frozen_graph(source: Path, out: Path, data: Path | None, shapes: dict | None) -> dict:
    tf = _tf()
    import tf2onnx
    from tf2onnx import tf_loader

    _graph_def, inputs, outputs, declared = _frozen(source)
    with unsupported_ops_raise(f"{CONVERTER} {tf2onnx.__version__}", f"frozen graph {source.name}"):
        frozen, inputs, outputs = tf_loader.from_graphdef(str(source), inputs, outputs)
        with tf.device("/cpu:0"):
            tf2onnx.convert._convert_common(frozen, name=source.name, input_names=inputs, output_names=outputs,
                                            output_path=str(out))
    parity_check.check_ops(out, f"{CONVERTER} {tf2onnx.__version__}")
    return {"inputs": declared, "outputs": outputs, "parity": frozen_graph_parity(source, out, data, shapes)}


def _graph_ends(graph_def) -> tuple[list[str], list[str]]:
    """Placeholders are the inputs; outputs are computed tensors no node reads."""
    consumed = {i.split(":")[0].lstrip("^") for n in graph_def.node for i in n.input}
    inputs = [f"{n.name}:0" for n in graph_def.node if n.op == "Placeholder"]
    outputs = [f"{n.name}:0" for n in graph_def.node if n.name not in consumed and n.op not in _GRAPH_ONLY]
    return inputs, outputs


def _dims(shape) -> list | None:
    if shape.rank is None:
        return None
    return [int(d) if d is not None else None for d in shape.as_list()]


def _feeds(declared: list[dict], data: Path | None, shapes: dict | None):
    names = [d["name"] for d in declared]
    feeds = parity_check.data_feeds(data, names, 2) if data else None
    if feeds is not None:
        return feeds, "data"
    concrete = []
    for item in declared:
        if item["dims"] is None and not (shapes and item["name"] in shapes):
            raise ConversionFailed(f"input '{item['name']}' declares no shape; give the spec's data or a profile "
                                   f"for the parity check")
        concrete.append({**item, "shape": parity_check.concrete_shape(item["dims"] or [], shapes, item["name"])})
    return parity_check.synthetic_feeds(concrete), "synthetic"


def _onnx_feeds(onnx_path: Path, feeds: dict) -> dict:
    """The same arrays under the ONNX model's input names (tf2onnx keeps the
    signature's names, or the graph's ``name:0``), matched in order where a
    name differs."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    names = [i.name for i in graph.input if i.name not in initializers]
    if set(names) == set(feeds):
        return feeds
    by_stem = {k.split(":")[0]: v for k, v in feeds.items()}
    if all(n.split(":")[0] in by_stem for n in names):
        return {n: by_stem[n.split(":")[0]] for n in names}
    return dict(zip(names, feeds.values()))


def _first_line(exc: BaseException) -> str:
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return line if len(line) <= 300 else line[:300] + "..."
