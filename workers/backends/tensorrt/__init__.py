"""NVIDIA TensorRT (full): builds and measures on the GPU it runs on."""
