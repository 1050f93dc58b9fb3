"""Mixed precision: which one a run uses, and the autocast context for it.

`auto` is bf16 autocast where bf16 is faster — a CUDA device that supports it, or a CPU with AMX — and
fp32 elsewhere: on a CPU with AVX-512 BF16 but no AMX, bf16 trained 25 % slower than fp32
(benchmarks/precision/results.md). `fp16` is for CUDA only (with a gradient
scaler in the training loop); weights always stay fp32, autocast only lowers the matmuls.
"""

from __future__ import annotations

import contextlib
import functools

import torch

from modfit.errors import ModfitError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 faster than fp32: AMX's tile units do; AVX-512 BF16 alone did not."""
    try:
        flags = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return False
    return "amx_bf16" in flags.split()


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """The concrete precision (`fp32`, `bf16` or `fp16`) of a run on `device`."""
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ModfitError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ModfitError("precision fp16 needs a CUDA device; on the CPU use bf16 or fp32")
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to the run's precision (`fp32`: no autocast)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])
