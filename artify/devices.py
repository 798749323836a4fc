"""Which device `device: auto` means, decided the same way by the planning stages and the stylization.

Light on purpose: planning (plan_chunks sizes spans for the device) should not pay torch's import, about
2 s of CPU, on a machine that plainly has no GPU.
"""
from __future__ import annotations

import glob
import os
import sys


def has_cuda() -> bool:
    """Whether torch sees a CUDA device. On Linux without an NVIDIA device node (or with CUDA_VISIBLE_DEVICES
    hiding every device) the answer is no without importing torch; otherwise torch is asked."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    if sys.platform.startswith("linux") and not glob.glob("/dev/nvidia[0-9]*"):
        return False
    import torch

    return torch.cuda.is_available()


def auto_device(device: str) -> str:
    """`device` as given, with auto resolved to cuda or cpu."""
    return ("cuda" if has_cuda() else "cpu") if device == "auto" else device


def autocast_dtype(device, precision: str = "auto"):
    """The torch autocast type of `precision` on `device` (None: float32): auto is bfloat16 on CUDA (float16
    where the GPU has no bfloat16) and float32 elsewhere. Shared by the networks that run in reduced
    precision (the arbitrary method, RAFT)."""
    import torch

    device = torch.device(device)
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    types = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if precision not in types:
        raise ValueError(f"unknown precision {precision!r} (auto, float32, bfloat16, float16)")
    return types[precision]
