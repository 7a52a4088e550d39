"""Several processes for one training stage: torchrun starts them, torch.distributed (via accelerate) joins them.

`runtime.processes: N` makes a network training stage's own command (`python stages/train_<m>.py …`, what
`dvc repro` runs) start N worker processes on this machine through torchrun's launcher (`torch.distributed.run`,
in-process) and wait for them: one process group for the whole stage (gloo on CPU, NCCL on GPUs, one GPU per
process). Several machines: torchrun's own `PET_*` variables (`PET_NNODES`, `PET_NODE_RANK`, `PET_MASTER_ADDR`,
`PET_MASTER_PORT`, …) on each, exactly as torchrun reads them.

Under N processes the global batch stays `batch_size` (each process trains on its slice of every batch, gradients
are all-reduced), so the number of steps, the learning-rate schedule and the loss are the 1-process run's; only the
dropout draws and the float summation order differ. Predictions are computed in shares and gathered, each row once.
Rank 0 alone writes outputs, checkpoints and resume state; the others' console output goes to a log file (one
console, one message), and when any process fails torchrun stops the rest and the stage exits with that process'
message and status 1.

`runtime` is declared by no stage: the process count is how this machine is used, not what the model is (same data,
batches, steps and seeds), so changing it makes nothing stale and `koemo predict` accepts weights trained either way.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from koemo.core.errors import UserError


def processes(runtime: Mapping[str, Any] | None) -> int:
    """`runtime.processes` (default 1) as a positive int; anything else names the fix."""
    value = (runtime or {}).get("processes", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"runtime.processes={value!r}: expected a whole number >= 1 (processes per machine for the "
                        f"network training stages; on GPUs at most one per GPU)")
    return value


def launched() -> bool:
    """True inside a worker that torchrun (or `accelerate launch`) started."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def rank() -> int:
    """This process' global rank (0 outside a launched group)."""
    return int(os.environ.get("RANK", "0")) if launched() else 0


def nodes() -> int:
    """Machines in the run, from torchrun's `PET_NNODES` ("2" or "2:2"); 1 when unset."""
    spec = os.environ.get("PET_NNODES", "1").split(":")[-1]
    try:
        return max(1, int(spec))
    except ValueError:
        raise UserError(f"PET_NNODES={os.environ['PET_NNODES']!r}: expected a number of machines, e.g. 2") from None


def run_in_processes(stage: str, runtime: Mapping[str, Any] | None, script: str | Path,
                     argv: Sequence[str] | None = None) -> bool:
    """Run this stage as `runtime.processes` torchrun workers and return True once they all succeeded; False when
    the caller should just go on in this process (one process, or already a worker).

    A failing worker: torchrun stops the others (SIGTERM) and this raises one UserError quoting the first failed
    process' last stderr lines, so the stage exits with status 1 and that message instead of hanging or flooding.
    """
    if launched():
        die_with_launcher()
        if rank() == 0 and os.environ.get(RANK0_STDERR):
            sys.stderr = _Tee(sys.stderr, os.environ[RANK0_STDERR])  # still on the console; kept to report a failure
        return False
    count = processes(runtime)
    if count == 1 and nodes() == 1:
        return False
    import logging

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    args = list(sys.argv[1:] if argv is None else argv)
    threads = int(os.environ.get("OMP_NUM_THREADS") or 0) or (os.cpu_count() or 1)  # run_stage set the stage's budget
    per_process = max(1, threads // count)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(per_process)  # the workers share the stage's cores
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # the failure is reported below, once
    with tempfile.TemporaryDirectory(prefix=f"koemo-{stage}-ranks-") as logs:
        os.environ[RANK0_STDERR] = str(Path(logs) / "rank0.stderr")
        os.environ[LAUNCHER_PID] = str(os.getpid())
        others = ",".join(f"{r}:3" for r in range(1, count))  # local ranks >= 1: stdout + stderr to files only
        launch = ["--nproc-per-node", str(count), "--log-dir", logs, *(["--redirects", others] if others else []),
                  str(script), *args]
        started = time.perf_counter()
        try:
            run(get_args_parser().parse_args(launch))
        except ChildFailedError as failed:
            raise UserError(failure_message(stage, failed, Path(logs), count, time.perf_counter() - started)) from None
        except RuntimeError as err:  # torch.distributed.DistError: the machines never met (rendezvous timed out)
            if nodes() == 1 or "DistError" not in {c.__name__ for c in type(err).__mro__}:
                raise
            raise UserError(join_failure(stage, err, time.perf_counter() - started)) from None
    return True


def join_failure(stage: str, err: BaseException, seconds: float) -> str:
    """One line for a multi-machine run whose machines never all met. torchrun's static rendezvous waits
    `PET_RDZV_CONF=timeout=<s>` (its default 600 s): machine 0 for the others to join, the others to reach it."""
    node, total = os.environ.get("PET_NODE_RANK", "0"), nodes()
    where = f"{os.environ.get('PET_MASTER_ADDR', '127.0.0.1')}:{os.environ.get('PET_MASTER_PORT', '29500')}"
    said = str(err).strip().splitlines()[0][:160]
    rerun = "or wait longer with PET_RDZV_CONF=timeout=<seconds> (torchrun's default 600)"
    if node == "0":
        return (f"machine 0 of {total} waited {seconds:.0f} s at {where} and not every machine joined ({said}): on "
                f"each other machine run this stage's command (`dvc repro --dry -f -s {stage}` prints it) with "
                f"PET_NODE_RANK={'1' if total == 2 else f'1…{total - 1}'} and the same PET_NNODES, PET_MASTER_ADDR and PET_MASTER_PORT, {rerun}")
    return (f"machine {node} of {total} could not reach machine 0 at {where} within {seconds:.0f} s ({said}): start "
            f"machine 0's `dvc repro` (it hosts the rendezvous) and check that PET_MASTER_ADDR/PET_MASTER_PORT name it "
            f"and the port is open, {rerun}")


def failure_message(stage: str, failed, logs: Path, count: int, seconds: float) -> str:
    """Which process failed first and what it said. First = its stderr went quiet first: the others fail after it,
    on the connection it dropped (or are stopped by torchrun). A koemo error is its one line; a bug, its traceback's
    tail."""
    stderr = {int(p.parent.name): p for p in logs.glob("*/attempt_*/*/stderr.log") if p.parent.name != "0"}
    if (logs / "rank0.stderr").is_file():
        stderr[0] = logs / "rank0.stderr"
    crashed = {r: f for r, f in failed.failures.items() if f.exitcode > 0} or failed.failures

    def went_quiet(item) -> tuple[float, int]:
        path = stderr.get(item[1].local_rank)
        return (path.stat().st_mtime if path is not None else float("inf"), item[0])

    global_rank, first = min(crashed.items(), key=went_quiet)
    path = stderr.get(first.local_rank)
    lines = [line for line in (path.read_text(errors="replace").splitlines() if path is not None else [])
             if line.strip() and "\r" not in line]  # tqdm's redrawn bars
    if lines and lines[-1].startswith(f"{stage}: "):
        said = lines[-1][len(stage) + 2:]
    else:
        said = "\n".join(lines[-15:]) or "(nothing on stderr)"
    return (f"process {global_rank} of {count * nodes()} failed (exit status {first.exitcode}) after {seconds:.0f} s "
            f"and torchrun stopped the others; it said:\n{said}")


LAUNCHER_PID = "KOEMO_LAUNCHER_PID"


def die_with_launcher() -> None:
    """SIGKILL this worker when the launcher dies. torchrun starts workers in their own session, so a SIGKILL of the
    stage's process group (DVC interrupted, `kill -9`, a test) would otherwise leave them training on, orphans that
    write outputs and resume state after DVC has given up on the stage. Linux only (prctl PR_SET_PDEATHSIG)."""
    import ctypes
    import signal

    expected = os.environ.get(LAUNCHER_PID)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if expected and os.getppid() != int(expected):  # it died before the line above
        os._exit(1)


RANK0_STDERR = "KOEMO_RANK0_STDERR"  # where local rank 0 copies its stderr (the others' goes to torchrun's files)


class _Tee:
    """stderr that also lands in a file: rank 0 keeps its live console (progress, warnings) and the launcher can
    still tell when it went quiet and what it said last."""

    def __init__(self, console, path: str):
        self.console, self.file = console, open(path, "a", encoding="utf-8", errors="replace", buffering=1)

    def write(self, text: str) -> int:
        self.file.write(text)
        return self.console.write(text)

    def flush(self) -> None:
        self.file.flush()
        self.console.flush()

    def __getattr__(self, name: str):
        return getattr(self.console, name)


# ---- inside the process group ------------------------------------------------------------------------------
def shard_batches(batches: Sequence[np.ndarray], world: int, index: int) -> list[np.ndarray]:
    """This process' slice of every global batch (np.array_split: sizes differ by at most one row). A batch with
    fewer rows than processes is merged into its neighbour first, so every process gets a row at every step (DDP
    needs all of them in each backward) and no row is dropped or repeated."""
    merged: list[np.ndarray] = []
    for batch in batches:
        if len(batch) < world and merged:
            merged[-1] = np.concatenate([merged[-1], batch])
        elif merged and len(merged[-1]) < world:
            merged[-1] = np.concatenate([merged[-1], batch])
        else:
            merged.append(np.asarray(batch))
    if merged and len(merged[-1]) < world:
        raise ValueError(f"{sum(map(len, batches))} rows cannot give each of {world} processes one")
    return [np.array_split(batch, world)[index] for batch in merged]


class ShardedBatchSampler:
    """`EpochBatchSampler`'s global batches, this process' slice of each (see `shard_batches`)."""

    def __init__(self, base, world: int, index: int):
        self.base, self.world, self.index = base, world, index

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def batches(self) -> list[np.ndarray]:
        return shard_batches(self.base.batches(), self.world, self.index)

    def __iter__(self):
        for batch in self.batches():
            yield batch.tolist()

    def __len__(self) -> int:
        return len(self.batches())


def broadcast(obj: Any) -> Any:
    """Rank 0's `obj` on every process (itself outside a process group)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any) -> list[Any]:
    """Every process' `obj`, in rank order ([obj] outside a process group)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_rows(n: int, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Assemble [n, ...] from every process' (row positions, values); each row must come exactly once."""
    parts = gather((np.asarray(rows, dtype=np.int64), values))
    out = np.zeros((n, *values.shape[1:]), dtype=values.dtype)
    seen = np.zeros(n, dtype=np.int64)
    for part_rows, part_values in parts:
        out[part_rows] = part_values
        np.add.at(seen, part_rows, 1)
    if (seen != 1).any():
        raise AssertionError(f"gathered predictions: {int((seen == 0).sum())} rows missing, {int((seen > 1).sum())} repeated")
    return out
