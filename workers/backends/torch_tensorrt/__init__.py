"""Torch-TensorRT: a TensorRT engine built from the user's torch.export program."""
