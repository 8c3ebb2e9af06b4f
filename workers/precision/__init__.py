"""Model-level precision transforms (the modern TensorRT way: the network's
types come from the model). Each transform writes a new ONNX file; callers
store it as a content-addressed artifact so it is reused across batch sizes
and devices."""
