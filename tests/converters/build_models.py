"""Source models the conversion tests build from code (random weights,
nothing downloaded), each written with the inputs it is checked on and its
own framework's outputs for them.

Run as ``python -m tests.converters.build_models KIND OUT_DIR``: each
framework in its own process (TensorFlow and torch in one process fight over
threads and protobuf), writing ``OUT_DIR/model.<ext>`` (or a SavedModel
directory), ``inputs.npz`` and ``expected.npz`` (outputs in order, named
``out0``, ``out1``, ...).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

BATCH = 3  # not the batch the program was exported with: the dynamic batch is exercised


def _save(out: Path, inputs: dict, outputs: list) -> None:
    np.savez(out / "inputs.npz", **inputs)
    np.savez(out / "expected.npz", **{f"out{i}": np.asarray(o) for i, o in enumerate(outputs)})


# -- PyTorch, torch.export ------------------------------------------------------

def _torch_modules():
    import torch
    from torch import nn

    class SmallCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1))
            self.head = nn.Linear(32, 10)

        def forward(self, images):
            return self.head(torch.flatten(self.features(images), 1))

    class EncoderBlock(nn.Module):
        def __init__(self, vocab=100, dim=32, heads=4):
            super().__init__()
            self.embed = nn.Embedding(vocab, dim)
            self.block = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=64, batch_first=True, dropout=0.0)
            self.norm = nn.LayerNorm(dim)

        def forward(self, tokens):
            return self.norm(self.block(self.embed(tokens)))

    return SmallCNN, EncoderBlock


def torch_model(kind: str, out: Path) -> None:
    import torch

    torch.manual_seed(0)
    cnn, encoder = _torch_modules()
    batch = torch.export.Dim("batch", min=1, max=32)
    if kind == "torch-cnn":
        module, example = cnn().eval(), (torch.randn(2, 3, 32, 32),)
        dynamic = ({0: batch},)
        feeds = {"images": np.random.default_rng(1).uniform(-1, 1, (BATCH, 3, 32, 32)).astype(np.float32)}
    elif kind == "torch-encoder":
        module, example = encoder().eval(), (torch.randint(0, 100, (2, 16)),)
        dynamic = ({0: batch},)
        feeds = {"tokens": np.random.default_rng(1).integers(0, 100, (BATCH, 16)).astype(np.int64)}
    elif kind == "torch-qr":  # an op torch.onnx has no ONNX translation for
        class WithQR(torch.nn.Module):
            def forward(self, x):
                return torch.linalg.qr(torch.relu(x) + 1.0)[0]

        module, example, dynamic = WithQR(), (torch.randn(2, 4, 4),), None
        feeds = {"x": np.random.default_rng(1).uniform(-1, 1, (2, 4, 4)).astype(np.float32)}
    else:
        raise SystemExit(f"unknown kind {kind}")
    with torch.no_grad():
        program = torch.export.export(module, example, dynamic_shapes=dynamic)
        torch.export.save(program, str(out / "model.pt2"))
        result = module(*(torch.from_numpy(v) for v in feeds.values()))
    _save(out, feeds, [result.numpy()])


# -- Keras 3 --------------------------------------------------------------------

def keras_model(kind: str, out: Path) -> None:
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    if kind == "keras-cnn":
        images = keras.Input((32, 32, 3), name="images")
        x = keras.layers.Conv2D(16, 3, padding="same")(images)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(images, keras.layers.Dense(10)(x))
        feeds = {"images": rng.uniform(-1, 1, (BATCH, 32, 32, 3)).astype(np.float32)}
    elif kind == "keras-encoder":
        tokens = keras.Input((16,), dtype="int32", name="tokens")
        x = keras.layers.Embedding(100, 32)(tokens)
        attended = keras.layers.MultiHeadAttention(num_heads=4, key_dim=8)(x, x)
        x = keras.layers.LayerNormalization()(x + attended)
        ff = keras.layers.Dense(32)(keras.layers.Dense(64, activation="relu")(x))  # gelu: tf2onnx lacks Erfc
        model = keras.Model(tokens, keras.layers.LayerNormalization()(x + ff))
        feeds = {"tokens": rng.integers(0, 100, (BATCH, 16)).astype(np.int32)}
    elif kind == "keras-hashing":  # tf2onnx has no translation for StringToHashBucketFast
        ids = keras.Input((4,), dtype="int64", name="ids")
        model = keras.Model(ids, keras.layers.Hashing(16)(ids))
        feeds = {"ids": rng.integers(0, 100, (2, 4)).astype(np.int64)}
    else:
        raise SystemExit(f"unknown kind {kind}")
    model.save(out / "model.keras")
    result = model(list(feeds.values())[0], training=False)
    _save(out, feeds, [np.asarray(result)])


# -- TensorFlow SavedModel / frozen graph ------------------------------------------

def tensorflow_model(kind: str, out: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.random.set_seed(0)
    rng = np.random.default_rng(1)

    class SmallCNN(tf.Module):
        def __init__(self):
            super().__init__()
            self.conv = tf.Variable(tf.random.normal((3, 3, 3, 16), stddev=0.2))
            self.dense = tf.Variable(tf.random.normal((16, 10), stddev=0.2))
            self.bias = tf.Variable(tf.random.normal((10,), stddev=0.1))

        @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32, name="images")])
        def __call__(self, images):
            x = tf.nn.relu(tf.nn.conv2d(images, self.conv, 1, "SAME"))
            return {"logits": tf.matmul(tf.reduce_mean(x, [1, 2]), self.dense) + self.bias}

    class WithQR(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4, 4], tf.float32, name="x")])
        def __call__(self, x):
            return {"q": tf.linalg.qr(x)[0]}

    module = WithQR() if kind == "tf-qr" else SmallCNN()
    feeds = ({"x": rng.uniform(-1, 1, (2, 4, 4)).astype(np.float32)} if kind == "tf-qr"
             else {"images": rng.uniform(-1, 1, (BATCH, 32, 32, 3)).astype(np.float32)})
    function = module.__call__.get_concrete_function()
    if kind == "tf-frozen":
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        frozen = convert_variables_to_constants_v2(function)
        (out / "model.pb").write_bytes(frozen.graph.as_graph_def().SerializeToString())
        result = frozen(tf.constant(feeds["images"]))
        outputs = [r.numpy() for r in (result if isinstance(result, (list, tuple)) else [result])]
        _save(out, feeds, outputs)
        return
    tf.saved_model.save(module, str(out / "saved_model"), signatures=function)
    result = module(tf.constant(next(iter(feeds.values()))))
    _save(out, feeds, [v.numpy() for v in result.values()])


def main() -> None:
    kind, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    if kind.startswith("torch-"):
        torch_model(kind, out)
    elif kind.startswith("keras-"):
        keras_model(kind, out)
    else:
        tensorflow_model(kind, out)


if __name__ == "__main__":
    main()
