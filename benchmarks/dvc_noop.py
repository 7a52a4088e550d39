"""What a no-op costs at the real job's size: `dvc status` and `dvc repro` when nothing changed, with 8,000 /
19,374 / 44,000 wavs in the AI Hub layout, for one or more versions of this project side by side.

DVC's own file checks are what is measured, so the wavs are tiny (50 ms each: DVC stats every file of a dependency
directory whatever its length) and the stages are not run: every stage's outputs are placeholders recorded with
`dvc commit -f`, so dvc.lock holds each stage's dependencies (the wav directory among them) exactly as after a real
run. Each figure is the median of 3 runs after a warm-up; CPU seconds (user + sys of the dvc process) beside the wall
seconds, since a shared machine makes wall time noisy.

    python benchmarks/dvc_noop.py [--sizes 8000 19374 44000] [--project before=/path/to/old/checkout] [--project after=.]
Target: under 3 s at 44,000 wavs.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}


def write_release(directory: Path, rows: int) -> None:
    """One release CSV (the demo's format) and `rows` tiny 48 kHz wavs, below `directory`."""
    sys.path.insert(0, str(REPO / "src"))
    import numpy as np

    from koemo.demo.plan import plan_corpus
    from koemo.demo.synth import csv_bytes, write_wav

    plan = plan_corpus(rows, 11)
    (directory / "wav").mkdir(parents=True)
    (directory / "scale.csv").write_bytes(csv_bytes(plan))
    tone = np.round(3000 * np.sin(np.arange(2400) / 7.0))
    for i, utterance in enumerate(plan):
        write_wav(directory / "wav" / f"{utterance.wav_id}.wav", np.roll(tone, i), 48000)


def project_copy(source: Path, dest: Path, rows: int) -> Path:
    """A git + DVC copy of `source` (a checkout of this project) reading an AI Hub release of `rows` wavs below
    data/raw/aihub, every stage's outputs committed as placeholders."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=source, check=True,
                           capture_output=True).stdout.decode()
    for name in filter(None, files.split("\0")):
        if (source / name).is_file() and not name.startswith(("metrics/", "plots/", "dvclive/", "dvc.lock")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, dest / name)
    text = (dest / "params.yaml").read_text(encoding="utf-8")  # edited as text: DVC parses it, comments and all
    text = re.sub(r"(?m)^(  source: )demo\b", r"\1aihub", text)
    text = re.sub(r"(?m)^(  dir: )\S+", r"\1data/raw/aihub", text)
    assert yaml.safe_load(text)["data"]["source"] == "aihub", "params.yaml: data.source not found"
    (dest / "params.yaml").write_text(text, encoding="utf-8")
    write_release(dest / "data/raw/aihub", rows)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.email=noop@koemo", "-c", "user.name=noop", "commit", "-qm", "noop"]):
        subprocess.run(["git", *args], cwd=dest, check=True)
    placeholders = ("from dvc.repo import Repo\n"
                    "import os\n"
                    "repo = Repo('.')\n"
                    "for stage in repo.index.stages:\n"
                    "    for out in stage.outs:\n"
                    "        path = out.fs_path\n"
                    "        if os.path.exists(path):\n"
                    "            continue\n"
                    "        if os.path.splitext(path)[1]:\n"
                    "            os.makedirs(os.path.dirname(path), exist_ok=True); open(path, 'w').write('{}')\n"
                    "        else:\n"
                    "            os.makedirs(path, exist_ok=True); open(os.path.join(path, 'part'), 'w').write('x')\n")
    subprocess.run([sys.executable, "-c", placeholders], cwd=dest, env=ENV, check=True)
    subprocess.run([str(BIN / "dvc"), "commit", "-f", "-q"], cwd=dest, env=ENV, check=True)
    return dest


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `command`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {cwd}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    if "Running stage" in done.stdout:
        raise SystemExit(f"{' '.join(command)} ran a stage in {cwd}: not a no-op\n{done.stdout[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median_of(command: list[str], cwd: Path, runs: int = 3) -> tuple[float, float]:
    timed(command, cwd)  # warm-up: DVC's state database and the page cache
    samples = [timed(command, cwd) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8000, 19374, 44000])
    parser.add_argument("--project", action="append", default=[],
                        help="NAME=PATH of a checkout of this project to measure (repeatable; default: this one)")
    args = parser.parse_args()
    projects = [(name, Path(path).resolve()) for name, path in (p.split("=", 1) for p in args.project)] or [("this", REPO)]
    dvc = str(BIN / "dvc")
    rows = []
    with tempfile.TemporaryDirectory(prefix="koemo-noop-") as tmp:
        for size in args.sizes:
            for name, source in projects:
                project = project_copy(source, Path(tmp) / f"{name}-{size}", size)
                owners = sum(1 for stage in yaml.safe_load((project / "dvc.yaml").read_text())["stages"].values()
                             if "${data.dir}" in stage.get("do", stage).get("deps", []))
                status = median_of([dvc, "status", "-q"], project)
                repro = median_of([dvc, "repro"], project)
                rows.append((size, name, owners, status, repro))
                print(f"{size:>6,} wavs  {name:8s} stages watching the wavs: {owners}   no-op dvc status {status[0]:5.2f} s "
                      f"wall / {status[1]:5.2f} s CPU   no-op dvc repro {repro[0]:5.2f} s wall / {repro[1]:5.2f} s CPU",
                      flush=True)
                shutil.rmtree(project)
    if len(projects) > 1:
        base = projects[0][0]
        print(f"\nCPU seconds relative to '{base}' (measured side by side above):")
        for size in args.sizes:
            ref = next(r for r in rows if r[0] == size and r[1] == base)
            for r in rows:
                if r[0] == size and r[1] != base:
                    print(f"{size:>6,} wavs  {r[1]}: status ×{r[3][1] / ref[3][1]:.2f}, repro ×{r[4][1] / ref[4][1]:.2f}")


if __name__ == "__main__":
    main()
