"""Samples/s of one training epoch through the one Trainer in 1 vs N processes (torchrun, DDP), same global batch.

Each N runs as its own torchrun launch (N = 1: a plain process) on the same synthetic tiny-ELECTRA text inputs as
`train_step.py` (`--base`: a base-size BERT, the real train_text cost; GPU only in practice); every process gets
cores ÷ N threads on CPU and one GPU each on CUDA. The figure is rank 0's global samples/s (every process' rows
counted) over the best of `--repeats` epochs after a warm-up one, so ratios compare like with like. On a 2-core CPU
no gain is expected: two 1-thread processes do the work of one 2-thread process plus the all-reduce; the point is the
method. On a GPU machine: `--processes 1 $(nvidia-smi -L | wc -l)`.

    python benchmarks/distributed.py [--processes 1 2] [--rows N] [--repeats R] [--base]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def worker(rows: int, repeats: int, base: bool) -> None:
    from koemo.core.params import load_params
    from koemo.train.trainer import TrainConfig, Trainer
    from train_step import CLASSES, base_text_case, best_epoch_rate, text_case

    params = load_params(ROOT / "params.yaml")
    _, make_model, examples, spec = base_text_case(rows) if base else text_case(params, rows, None)
    config = TrainConfig.from_params({"seed": 0, "device": "auto", "progress": False},
                                     {**spec, "epochs": 1, "warmup_ratio": 0.0})
    trainer = Trainer(config, CLASSES)
    best = best_epoch_rate(trainer, make_model, examples, repeats)
    if trainer.is_main_process:
        print("RESULT " + json.dumps({"processes": trainer.accelerator.num_processes, "samples_per_second": best,
                                      "device": str(trainer.device.type), "batch": config.batch_size}), flush=True)


def launch(processes: int, rows: int, repeats: int, base: bool) -> dict:
    cores = len(os.sched_getaffinity(0))
    threads = str(max(1, int(os.environ.get("OMP_NUM_THREADS") or cores) // processes))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONPATH": str(ROOT / "src")}
    script = [str(Path(__file__).resolve()), "--worker", "--rows", str(rows), "--repeats", str(repeats),
              *(["--base"] if base else [])]
    command = [sys.executable, *script] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes), *script]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    found = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not found:
        raise SystemExit(f"{processes} processes failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return {**json.loads(found[0][7:]), "threads_each": int(threads)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--base", action="store_true", help="a base-size BERT instead of the tiny ELECTRA")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.rows, args.repeats, args.base)
    results = []
    for n in args.processes:
        start = time.perf_counter()
        results.append(launch(n, args.rows, args.repeats, args.base))
        results[-1]["wall_s"] = time.perf_counter() - start
    first = results[0]["samples_per_second"]
    model = "base-size BERT" if args.base else "tiny-ELECTRA"
    print(f"{model}, {args.rows} rows, global batch {results[0]['batch']}, on {results[0]['device']} "
          f"({len(os.sched_getaffinity(0))} cores visible):")
    for r in results:
        print(f"  {r['processes']} process(es) × {r['threads_each']} thread(s): {r['samples_per_second']:,.0f} samples/s "
              f"= {r['samples_per_second'] / first:.2f}× the {results[0]['processes']}-process figure "
              f"(launch to exit {r['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
