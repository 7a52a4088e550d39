"""What a process pays before it does any work, for one or more versions of this project side by side: the suite
starts ~150 stage and `koemo` processes, so seconds of imports in each add up to minutes.

Measured, each the median of `--runs` fresh interpreters (this venv; a project's `src/` first on PYTHONPATH):
- `import koemo.core.runner`: what every stage imports before its main (the runner, params, the metrics writer);
- `make_scheduler`: the learning-rate schedule of a training stage, after torch and an optimizer are already loaded;
- `koemo predict` with no input and `koemo predict --csv DIR`: a refused argument (exit 2).

    python benchmarks/startup.py [--project before=/path/to/old/checkout] [--project after=.] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCHEDULE = """
import time, torch
from koemo.train.trainer import TrainConfig, make_scheduler
optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
optimizer.step()
started = time.perf_counter()
make_scheduler(optimizer, TrainConfig(epochs=1, batch_size=1, lr=0.1, schedule="cosine", warmup_ratio=0.1), 10)
print(time.perf_counter() - started)
"""


def seconds(argv: list[str], src: Path, cwd: Path, inner: bool = False) -> float:
    """Wall seconds of one process (or, `inner`, the seconds it prints itself)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    return float(done.stdout.split()[-1]) if inner else wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", action="append", default=[], metavar="NAME=PATH",
                        help="a checkout whose src/ to measure (repeatable; default: this one)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    projects = [p.split("=", 1) for p in args.project] or [["this", str(REPO)]]
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "clips").mkdir()
        cases = {
            "import koemo.core.runner": ([python, "-c", "import koemo.core.runner"], False),
            "make_scheduler (torch loaded)": ([python, "-c", SCHEDULE], True),
            "koemo predict (no input)": ([python, "-m", "koemo", "predict"], False),
            "koemo predict --csv clips/": ([python, "-m", "koemo", "predict", "--csv", "clips"], False),
            "python -c pass (the floor)": ([python, "-c", "pass"], False),
        }
        figures: dict[str, dict[str, list[float]]] = {case: {name: [] for name, _ in projects} for case in cases}
        for _ in range(args.runs):  # interleaved, so a busy moment hits every project alike
            for case, (argv, inner) in cases.items():
                for name, path in projects:
                    figures[case][name].append(seconds(argv, Path(path).resolve() / "src", cwd, inner))
    names = [name for name, _ in projects]
    print(f"median of {args.runs} runs, seconds" + (f"; ratio {names[0]} / {names[-1]}" if len(names) > 1 else ""))
    print(f"{'':32}" + "".join(f"{name:>10}" for name in names) + ("     ratio" if len(names) > 1 else ""))
    for case, by_project in figures.items():
        medians = [statistics.median(by_project[name]) for name in names]
        floor = medians[-1] < 1e-3  # under a millisecond: the ratio is a lower bound
        ratio = f"  {'>' if floor else ' '}{medians[0] / max(medians[-1], 1e-3):.1f}x" if len(names) > 1 else ""
        print(f"{case:32}" + "".join(f"{m:10.3f}" for m in medians) + ratio)


if __name__ == "__main__":
    main()
