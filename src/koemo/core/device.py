"""The device a stage computes on, its autocast dtype, and how many CPU threads it may use."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, Mapping


CUDA12_INDEX = "https://download.pytorch.org/whl/cu126"  # PyTorch's own index of its CUDA 12.6 builds
_DRIVER_FOR_CUDA = {13: 580, 12: 525, 11: 450}  # the oldest NVIDIA driver each CUDA major version runs on


def resolve_device(name: str = "auto"):
    """`auto`: CUDA when torch can use it, else the CPU (saying so once when nvidia-smi lists a GPU torch cannot
    use); `cuda`: a usable GPU or a UserError naming why there is none."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        warn_unusable_gpu()
        return torch.device("cpu")
    if name == "cuda":
        require_cuda()
    return torch.device(name)


def require_cuda(key: str = "device") -> None:
    """Raise a UserError unless torch can use a GPU (`device: cuda` asks for one and must not run on the CPU)."""
    import torch

    from koemo.core.errors import UserError

    if not torch.cuda.is_available():
        raise UserError(f"{key}: cuda asked for a GPU, but torch cannot use one: {unusable_gpu_reason() or 'no NVIDIA GPU found (nvidia-smi lists none)'}"
                        f"; or set {key}: auto to run on the CPU")


def unusable_gpu_reason(listed: list[str] | None = None, driver: str | None = None) -> str | None:
    """Why GPUs that nvidia-smi lists are unusable by this torch, with the fix; None when torch can use CUDA or no GPU
    is listed. torch==2.14.1 from PyPI is the CUDA 13.0 build: a driver older than 580 or a Pascal/Volta card leaves
    `torch.cuda.is_available()` False while nvidia-smi still lists the GPU."""
    import torch

    if torch.cuda.is_available():
        return None
    if listed is None:
        listed, driver = [name for name, _ in gpus()], driver_version()
    if not listed:
        return None
    version = torch.__version__.split("+")[0]
    build = torch.version.cuda
    if build is None:
        why = f"this torch {torch.__version__} is a CPU-only build"
    else:
        needs = _DRIVER_FOR_CUDA.get(int(build.split(".")[0]))
        why = (f"this torch {torch.__version__} is built for CUDA {build}"
               + (f", which needs NVIDIA driver >= {needs} (this machine's: {driver or 'unknown'})" if needs else "")
               + (" and drops Pascal/Volta GPUs (P40, P100, V100)" if build.startswith("13") else ""))
    return (f"nvidia-smi lists {len(listed)} × {listed[0]} (driver {driver or 'unknown'}) but torch.cuda.is_available()"
            f" is False: {why}. Fix: install the CUDA 12.6 build of the same torch, `pip install torch=={version} "
            f"torchaudio --index-url {CUDA12_INDEX}` (in this venv), or update the NVIDIA driver to >= 580 (CUDA 13)")


def driver_version() -> str | None:
    """The NVIDIA driver version nvidia-smi reports (None without nvidia-smi)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[0].strip() if out else None


def gpus() -> list[tuple[str, int]]:
    """(name, memory bytes) per GPU, from nvidia-smi (torch is not imported: it costs seconds)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in out.strip().splitlines():
        name, _, mib = line.rpartition(",")
        if mib.strip().isdigit():
            found.append((name.strip(), int(mib.strip()) * 2**20))
    return found


_warned: list[bool] = []


def warn_unusable_gpu() -> None:
    """Once per process: `device: auto` falls back to the CPU although nvidia-smi lists a GPU."""
    import sys

    if _warned:
        return
    _warned.append(True)
    reason = unusable_gpu_reason()
    if reason:
        print(f"warning: device auto runs on the CPU (days instead of hours): {reason}", file=sys.stderr, flush=True)


def bf16_native() -> bool:
    """bf16 in hardware (compute capability >= 8, Ampere on). `torch.cuda.is_bf16_supported()` defaults to
    `including_emulation=True` and says yes on a T4 / RTX 20xx (7.5), where bf16 runs emulated, far slower than fp16."""
    import torch

    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # an older torch without the argument
        return torch.cuda.get_device_capability()[0] >= 8


def autocast_dtype(device) -> Any:
    """bf16 where the GPU has it natively, else fp16; None on CPU (fp32 keeps CPU runs reproducible)."""
    import torch

    if device.type != "cuda":
        return None
    return torch.bfloat16 if bf16_native() else torch.float16


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
