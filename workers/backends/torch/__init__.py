"""PyTorch backend: torch.compile (Inductor, max-autotune) on NVIDIA GPUs."""
