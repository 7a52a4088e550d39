"""What a second machine reproduces: the small demo pipeline run from scratch here, then as if on other CPUs.

Variants (each a fresh git + DVC copy of this project, `dvc repro` of the e2e tests' small demo):
- `here`: this machine as it is (torch picks its widest kernels, e.g. AVX-512; threads = cores ÷ runtime.jobs);
- `avx2`: the same with torch, oneDNN and MKL held to AVX2 (`ATEN_CPU_CAPABILITY`, `ONEDNN_MAX_CPU_ISA`,
  `MKL_ENABLE_INSTRUCTIONS`), as on an older or other vendor's CPU;
- `1thread`: `runtime.threads: 1` (another core count splits float sums differently).

For each variant against `here`: which outputs in dvc.lock are byte-identical, and the largest difference of
every model's test UA / WA / macro-F1 in its metrics file.

    python benchmarks/across_machines.py [--variants here avx2 1thread] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from pipeline_repo import SMALL, PipelineRepo  # noqa: E402  (the e2e tests' throwaway copy of this repo)

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
VARIANTS = {"here": ({}, {}), "avx2": (AVX2, {}), "1thread": ({}, {"runtime": {"threads": 1, "jobs": 1}})}
HEADLINE = ("ua", "accuracy", "macro_f1")


def run_variant(name: str, workdir: Path) -> PipelineRepo:
    env, params = VARIANTS[name]
    repo = PipelineRepo.copy_of_this_repo(workdir / name)
    repo.env.update(env)
    repo.set_params(**SMALL, **params)
    repo.commit("variant")
    started = time.perf_counter()
    repo.dvc("repro")
    print(f"{name}: dvc repro {time.perf_counter() - started:.0f} s", flush=True)
    return repo


def locked_outputs(repo: PipelineRepo) -> dict[str, str]:
    lock = yaml.safe_load((repo.root / "dvc.lock").read_text(encoding="utf-8"))
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])
            if not out["path"].startswith(("reports/runtime/",))}


def test_figures(repo: PipelineRepo) -> dict[str, dict[str, float]]:
    figures = {}
    for path in sorted((repo.root / "reports").glob("train_*.json")) + [repo.root / "reports/stack.json"]:
        data = json.loads(path.read_text(encoding="utf-8"))
        test = data.get("test") or data.get("comparison_test", {}).get("stack", {})
        figures[path.stem] = {key: float(test[key]) for key in HEADLINE if key in test}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--keep", type=Path, help="keep the project copies here (default: a temp dir, removed)")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="koemo-machines-"))
    workdir.mkdir(parents=True, exist_ok=True)
    names = ["here", *[v for v in args.variants if v != "here"]]
    repos = {name: run_variant(name, workdir) for name in names}
    base_outs, base_figs = locked_outputs(repos["here"]), test_figures(repos["here"])
    for name in names[1:]:
        outs, figs = locked_outputs(repos[name]), test_figures(repos[name])
        same = sorted(p for p in base_outs if outs.get(p) == base_outs[p])
        differ = sorted(p for p in base_outs if outs.get(p) != base_outs[p])
        print(f"\n{name} vs here: {len(same)} of {len(base_outs)} outputs byte-identical")
        print(f"  identical: {', '.join(same) or '-'}")
        print(f"  differ:    {', '.join(differ) or '-'}")
        worst = 0.0
        for model, values in base_figs.items():
            deltas = {k: figs.get(model, {}).get(k, float('nan')) - v for k, v in values.items()}
            worst = max([worst, *map(abs, deltas.values())])
            print(f"  {model:18s} " + "  ".join(f"{k} {base_figs[model][k]:.3f} → {figs[model][k]:.3f} ({d:+.3f})"
                                                 for k, d in deltas.items()))
        print(f"  largest |Δ| of a test figure: {worst:.3f}")
    if args.keep is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
