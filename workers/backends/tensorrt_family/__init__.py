"""The code TensorRT and TensorRT-RTX share: ONNX parsing into a strongly
typed network, one optimization profile per job, engine metadata, and the
runtime. What differs between the two libraries is data (``Flavor`` in
``capabilities``), not code paths: ``workers.backends.tensorrt`` and
``workers.backends.tensorrt_rtx`` only pick a flavor and their knobs."""
