"""The inference device and its autocast dtype, shared by the text and audio embedding stages."""

from __future__ import annotations

from typing import Any


def resolve_device(name: str = "auto"):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(device) -> Any:
    """bf16 where the GPU supports it, else fp16; None on CPU (fp32 keeps CPU runs reproducible)."""
    import torch

    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def describe(device) -> str:
    import torch

    return f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)
