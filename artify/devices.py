"""Which device `device: auto` means, decided the same way by the planning stages and the stylization, and
what the CPU computes natively.

Light on purpose: planning (plan_chunks sizes spans for the device) should not pay torch's import, about
2 s of CPU, on a machine that plainly has no GPU.
"""
from __future__ import annotations

import functools
import glob
import os
import sys

# Device nodes through which a Linux machine can have a CUDA device: NVIDIA's driver (/dev/nvidia0...), WSL2's
# GPU paravirtualisation (/dev/dxg, no /dev/nvidia* at all) and Jetson boards' integrated GPU (/dev/nvhost-*,
# /dev/nvmap). Where none exists torch cannot see one either.
GPU_NODES = ("/dev/nvidia[0-9]*", "/dev/dxg", "/dev/nvhost-*", "/dev/nvmap")


class DeviceError(RuntimeError):
    """The device cannot do the work as configured (CUDA asked for where there is none, out of memory); the
    message says what to change. The command line prints it as one line."""


def has_cuda() -> bool:
    """Whether torch sees a CUDA device. Where torch is imported anyway (the stylization, segmentation,
    metrics) torch is asked; otherwise, on Linux with none of the device nodes a GPU needs (GPU_NODES), or
    with CUDA_VISIBLE_DEVICES hiding every device, the answer is no without importing torch."""
    if "torch" not in sys.modules:
        if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
            return False
        if sys.platform.startswith("linux") and not any(glob.glob(pattern) for pattern in GPU_NODES):
            return False
    import torch

    return torch.cuda.is_available()


def auto_device(device: str) -> str:
    """`device` as given, with auto resolved to cuda or cpu (said once per process on stdout, the stage's log)."""
    return _auto() if device == "auto" else device


@functools.cache
def _auto() -> str:
    chosen = "cuda" if has_cuda() else "cpu"
    print(f"device auto: {chosen}" + ("" if chosen == "cuda" else " (no CUDA device found)"), flush=True)
    return chosen


def pick_device(device: str = "auto"):
    """The torch.device of `device` (auto: `auto_device`); cuda where torch sees none fails here, first."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device: cuda was asked for, but torch sees no CUDA device here (device: auto runs on "
                          "the CPU where there is none)")
    return torch.device(auto_device(device))


def set_threads(threads: int | None) -> None:
    """Torch threads follow the job's `threads`, so parallel jobs don't fight over cores."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (x86: AVX512-BF16 or AMX), as torch's own kernels
    decide; elsewhere, or with a torch that cannot say, no (bfloat16 would be emulated: slower, not faster)."""
    import torch

    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def auto_precision(device, network: str = "adain") -> str:
    """What `precision: auto` means for `network` on `device`. On CUDA: bfloat16 where the GPU computes it
    natively, else float16 (torch counts bfloat16 emulated on a V100 or T4 as supported, and it runs slower
    there than float16). On a CPU: bfloat16 for Magenta's network where the CPU computes bfloat16 natively
    (AVX512-BF16, AMX; on the project's EPYC 1.1-1.4x the frames per second, the output within 1 of 255 of
    float32's: config/README.md, `python -m bench.magenta`), float32 otherwise (AdaIN, RAFT: not measured)."""
    import torch

    if torch.device(device).type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported(including_emulation=False) else "float16"
    return "bfloat16" if network == "magenta" and cpu_has_native_bf16() else "float32"


def autocast_dtype(device, precision: str = "auto"):
    """The torch autocast type of `precision` on `device` (None: float32; auto: `auto_precision` of a network
    other than Magenta). Shared by the networks that run in reduced precision (the arbitrary method, RAFT)."""
    import torch

    if precision == "auto":
        precision = auto_precision(device)
    types = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if precision not in types:
        raise ValueError(f"unknown precision {precision!r} (auto, float32, bfloat16, float16)")
    return types[precision]


def autocast(device, precision: str = "auto"):
    """The autocast context of `precision` on `device` (`autocast_dtype`; float32 = autocast off), shared by the
    networks that run in reduced precision (the arbitrary and propagate methods, RAFT)."""
    import torch

    device = torch.device(device)
    dtype = autocast_dtype(device, precision)
    return torch.autocast(device.type, dtype=dtype) if dtype else torch.autocast(device.type, enabled=False)
