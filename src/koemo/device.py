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
