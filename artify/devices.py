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
