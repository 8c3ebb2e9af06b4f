"""PyTorch backend: torch.compile (Inductor; fast default compile, max-autotune for finalists) on NVIDIA GPUs."""
