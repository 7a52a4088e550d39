"""The device a stage computes on, its autocast dtype, and how many CPU threads it may use."""

from __future__ import annotations

import os
from typing import Any, Mapping


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


def thread_budget(runtime: Mapping[str, Any] | None, environ: Mapping[str, str] = os.environ) -> tuple[int, str]:
    """(threads, why): `OMP_NUM_THREADS` when set; else `runtime.threads` from params.yaml, where `auto` is this
    machine's usable cores ÷ `runtime.jobs` (stages running at once). Oversubscribed cores cost far more than
    idle ones: two 2-thread stages on 2 cores ran a training step ~19× slower than two 1-thread stages."""
    if environ.get("OMP_NUM_THREADS", "").strip().isdigit() and int(environ["OMP_NUM_THREADS"]) > 0:
        return int(environ["OMP_NUM_THREADS"]), "OMP_NUM_THREADS"
    runtime = dict(runtime or {})
    threads, jobs = runtime.get("threads", "auto"), max(1, int(runtime.get("jobs", 1)))
    if threads in (None, "auto"):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, cores // jobs), f"auto: {cores} cores ÷ runtime.jobs {jobs}"
    return max(1, int(threads)), "runtime.threads"


def configure_threads(runtime: Mapping[str, Any] | None = None) -> int:
    """Apply the thread budget to torch, the BLAS libraries and every process this stage starts (via the
    environment). The one place threads are decided; `run_stage` calls it before a stage's main."""
    import sys

    threads, _ = thread_budget(runtime)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # threadpoolctl comes with scikit-learn; without it the environment still applies
        pass
    return threads


def threads_in_use() -> int | None:
    """The thread budget this process runs with (what `configure_threads` applied), for the runtime metrics: two
    queued experiments on one machine must each show their share, not every core."""
    import sys

    if "torch" in sys.modules:
        return int(sys.modules["torch"].get_num_threads())
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() else None


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


def steady_heap(threshold: int = 128 * 1024) -> bool:
    """Pin glibc's mmap threshold so the heap does not creep up with the corpus size (ssl_features calls it).

    glibc raises the threshold each time a large block is freed; after that, the encoder's transient activations and
    the clips held for a block come from a heap that fragments: ssl_features' peak RSS grew from 1.4 to 3.5 GiB
    between 500 and 8,000 rows while Python's own live arrays stayed under 0.3 GiB. Pinned, it stays at 1.4 GiB,
    at the price of fresh pages for every large tensor (the tiny CPU encoder's pass took ~1.8× as long; a real
    encoder's compute, or a GPU's own allocator, dwarfs that). audio_features stays flat without it and is left
    alone. A no-op (False) off glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, int(threshold)))
    except (OSError, AttributeError):
        return False
