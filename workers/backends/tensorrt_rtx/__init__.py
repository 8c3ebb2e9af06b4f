"""NVIDIA TensorRT for RTX: ahead-of-time builds on any machine, kernels
compiled for the GPU when the engine loads."""
