"""`koemo check`, the machine: the GPU against the models' memory estimates, cores against runtime.jobs, free disk
against the outputs projected from the params (feature shapes as `FeatureSpec` gives them), available RAM. The GPU is
asked through `nvidia-smi` (koemo.core.device), never torch."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Mapping

from koemo.check.encoders import model_size
from koemo.check.report import BLOCKER, OK, WARN, Row
from koemo.core.device import driver_version, gpus

MARGIN = 1.2                # projected disk × this must be free: temp siblings of an output exist while it is renamed
PEAK_RSS = 1.5 * 2**30      # `make scale`: data stages' peak RSS ≤ 1.35 GiB, flat in N (benchmarks/README.md)


def gpu_estimate(params: Mapping[str, Any]) -> list[tuple[str, float, str]]:
    """(job, bytes per GPU, how) of the GPU-heavy jobs. Fine-tuning: 16 B per parameter (fp32 weights + grads + two
    Adam moments; DDP keeps a full copy on every GPU) + activations ≈ 34·rows·tokens·hidden·layers bytes (half
    precision, Korthikanti et al. 2022) for this GPU's rows: `runtime.processes` share every global batch, so each
    GPU holds batch ÷ processes rows; gradient checkpointing keeps about two layers' worth. Frozen extraction (one
    process): fp32 weights (4 B per parameter) + every layer's hidden states for one batch (batch_seconds × 50
    frames/s) + the feature encoder's first conv block (conv output, norm, activation) at fp32 — the figure for the
    CPU's fp32; under the GPU's bf16/fp16 autocast the activations take about half. An estimate:
    `benchmarks/gpu_check.py` measures the real ones."""
    from math import ceil

    from koemo.train.distributed import processes as process_count

    try:
        procs = process_count(params.get("runtime"))
    except Exception:  # a bad value is the params schema's to report
        procs = 1
    per_gpu = f" on each of {procs} GPUs" if procs > 1 else ""
    jobs = []
    text = params.get("text", {}).get("model")
    if text:
        hidden, layers, count = model_size(params, "encoders", text)
        settings = params.get("train_text", {})
        batch = int(settings.get("batch_size", 16))
        rows = ceil(batch / procs)
        tokens = int(params.get("encoders", {}).get(text, {}).get("max_length", 64))
        depth = min(layers, 2) if settings.get("gradient_checkpointing") else layers
        act = 34 * rows * tokens * hidden * depth
        jobs.append((f"train_text ({text}, batch {batch}{f', {rows} rows per GPU' if procs > 1 else ''})",
                     16 * count + act, f"16 B × {count / 1e6:.0f} M params + activations {act / 2**30:.2f} GiB{per_gpu}"))
    ssl = params.get("ssl", {}).get("model")
    if ssl:
        hidden, layers, count = model_size(params, "audio_encoders", ssl)
        seconds = float(params.get("ssl_features", {}).get("batch_seconds", 64))
        frames = seconds * 50
        act = frames * hidden * (layers + 1) * 4 + 3 * seconds * 16000 / 5 * 512 * 4  # hidden states + first conv block
        jobs.append((f"ssl_features ({ssl}, {seconds:.0f} s batches)", 4 * count + act,
                     f"fp32: 4 B × {count / 1e6:.0f} M params + hidden states and first conv block {act / 2**30:.2f} GiB"
                     " (about half the activations under bf16/fp16 autocast)"))
        w2v = params.get("train_wav2vec2", {})
        if w2v.get("mode") == "finetune":
            batch, crop = int(w2v.get("batch_size", 16)), float(w2v.get("max_seconds", 15))
            rows = ceil(batch / procs)
            depth = min(layers, 2) if w2v.get("gradient_checkpointing") else layers
            act = 34 * rows * crop * 50 * hidden * depth
            jobs.append((f"train_wav2vec2 finetune ({ssl}, batch {batch} × {crop:.0f} s"
                         f"{f', {rows} rows per GPU' if procs > 1 else ''})", 16 * count + act,
                         f"16 B × {count / 1e6:.0f} M params + activations {act / 2**30:.1f} GiB{per_gpu}"))
    return jobs


def _memory_fix(job: str) -> str:
    """The params keys that lower a job's GPU memory (the ones `stage_runner` names after a CUDA out of memory)."""
    from koemo.core.runner import memory_advice

    stage = job.split()[0]
    return f"{stage}: {memory_advice(stage)[0].lower()}{memory_advice(stage)[1:]}"


def _needs_gpu(params: Mapping[str, Any]) -> list[str]:
    """What makes a GPU effectively required: fine-tuning wav2vec2, or pretrained (hub) encoders to run."""
    why = []
    if params.get("train_wav2vec2", {}).get("mode") == "finetune":
        why.append("train_wav2vec2.mode=finetune")
    for kind, registry in (("text", "encoders"), ("ssl", "audio_encoders")):
        chosen = params.get(kind, {})
        for name in dict.fromkeys(list(chosen.get("encoders") or []) + [chosen.get("model")]):
            if name and params.get(registry, {}).get(name, {}).get("hub_id"):
                why.append(f"{registry}.{name}")
    return why


def projected_bytes(params: Mapping[str, Any], clips: int) -> dict[str, float]:
    """Bytes the outputs will take for `clips` labelled clips, per feature kind, from the params alone: stored rows ×
    row bytes. Training rows (1 − split.test_size) get augmented copies (noise × copies, stretch, pitch) for kinds with
    `augment: true`. DVC links outputs to its cache, so each byte counts once (`make scale` measures the same:
    342 KiB per labelled clip with the defaults, mel dominating)."""
    import math

    import numpy as np

    from koemo.features.egemaps import N_FEATURES
    from koemo.features.mel.spectral import FeatureSpec

    audio = params.get("audio", {})
    aug = audio.get("augment", {})
    methods = aug.get("methods", [])
    copies = (int(aug.get("copies", 1)) if "noise" in methods else 0) + sum(m in methods for m in ("stretch", "pitch"))
    train_share = 1 - float(params.get("split", {}).get("test_size", 0.2))
    out: dict[str, float] = {}
    for kind in [k for k in ["mel", "melmean"] + list(audio.get("extra_features", [])) if k in audio]:
        spec = FeatureSpec.from_params(kind, audio)  # the shape and dtype the audio_features cache stores
        rows = 1 + (copies * train_share if spec.augment else 0)
        out[f"features/{kind}"] = clips * rows * math.prod(spec.shape) * np.dtype(spec.dtype).itemsize
    out["features/egemaps"] = clips * N_FEATURES * 4
    for name in params.get("ssl", {}).get("encoders", []):
        hidden, layers, _ = model_size(params, "audio_encoders", name)
        out[f"ssl/{name}"] = clips * (layers + 1) * hidden * 2
    for name in params.get("text", {}).get("encoders", []):
        hidden, _, _ = model_size(params, "encoders", name)
        out[f"embeddings/{name}"] = clips * hidden * 4
    text = params.get("text", {}).get("model")
    if text:  # one fine-tuned encoder per training fold, float32
        out[f"models/text ({text} × {params.get('train', {}).get('folds', 2)} folds)"] = (
            model_size(params, "encoders", text)[2] * 4 * int(params.get("train", {}).get("folds", 2)))
    out["manifest, labels, other models"] = clips * 2048 + 50 * 2**20
    return out


def check_machine(params: Mapping[str, Any], root: Path, clips: int, free_disk: int | None = None,
                  gpu_list: list[tuple[str, int]] | None = None) -> list[Row]:
    """GPU vs the models, cores vs runtime.jobs, free disk vs the projected outputs, available RAM."""
    rows = []
    found = gpus() if gpu_list is None else gpu_list
    estimate = gpu_estimate(params)
    need_gpu = _needs_gpu(params)
    unusable = None
    if found and gpu_list is None:  # a real nvidia-smi answered: can this torch use what it lists?
        from koemo.core.device import unusable_gpu_reason

        unusable = unusable_gpu_reason([n for n, _ in found], driver_version())
    if unusable:  # a blocker where the job needs the GPU; the tiny demo runs on the CPU anyway
        rows.append(Row("GPU", BLOCKER if need_gpu else WARN, unusable.split(" Fix: ")[0].rstrip(".")
                        + ("; `device: auto` would train on the CPU (" + ", ".join(need_gpu) + ")" if need_gpu
                           else "; nothing here needs a GPU (local-tiny encoders)"),
                        unusable.split(" Fix: ")[-1]))
    elif found:
        name, memory = found[0]
        biggest = max(estimate, key=lambda e: e[1]) if estimate else None
        over = [job for job in estimate if job[1] > memory]
        try:
            from koemo.train.distributed import processes as process_count

            procs = process_count(params.get("runtime"))
        except Exception:
            procs = 1
        if over:
            rows.append(Row("GPU memory", BLOCKER, "; ".join(f"{name} {memory / 2**30:.0f} GiB < {job} ≈ "
                                                             f"{size / 2**30:.1f} GiB ({how})" for job, size, how in over),
                            "; ".join(_memory_fix(job) for job, _, _ in over)))
        elif procs > len(found):
            rows.append(Row("GPU", BLOCKER, f"runtime.processes {procs} > {len(found)} GPU(s) on this machine",
                            f"runtime.processes: {len(found)} (one process per GPU)"))
        else:
            rows.append(Row("GPU", OK, f"{len(found)} × {name} {memory / 2**30:.0f} GiB; largest job "
                            + (f"{biggest[0]} ≈ {biggest[1] / 2**30:.1f} GiB ({biggest[2]})" if biggest else "none")))
    elif "train_wav2vec2.mode=finetune" in need_gpu:
        rows.append(Row("GPU", BLOCKER, "none (nvidia-smi not found); train_wav2vec2.mode=finetune needs one",
                        "run on a GPU machine, or `koemo profile aihub-cpu` (mode frozen, no-download models)"))
    elif need_gpu:
        biggest = max(estimate, key=lambda e: e[1])
        rows.append(Row("GPU", WARN, f"none; pretrained encoders on the CPU ({', '.join(need_gpu)}): a few sentences/"
                        "clips per second, days to weeks for the full corpus; a GPU needs ≈ "
                        f"{biggest[1] / 2**30:.1f} GiB for {biggest[0]} ({biggest[2]})",
                        "a GPU machine, or `koemo profile aihub-cpu`"))
    else:
        rows.append(Row("GPU", OK, "none needed: local-tiny encoders, tfidf and egemaps run on the CPU"))
    from koemo.core.device import thread_budget

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    runtime = params.get("runtime", {})
    jobs = int(runtime.get("jobs", 1))
    threads, why = thread_budget(runtime)
    over = jobs * threads > cores
    rows.append(Row("CPU cores", WARN if over or jobs > cores else OK,
                    f"{cores} usable; runtime.jobs {jobs} × {threads} threads ({why})",
                    "lower runtime.jobs / runtime.threads to fit the cores (oversubscription: ~19× slower steps)"
                    if over or jobs > cores else ""))
    need = projected_bytes(params, clips)
    total = sum(need.values())
    free = shutil.disk_usage(_existing(root / "data")).free if free_disk is None else free_disk
    top = sorted(need.items(), key=lambda kv: -kv[1])[:3]
    per_clip = f"{total / clips / 1024:.0f} KiB/clip: " if clips else ""
    detail = (f"{free / 2**30:.1f} GiB free; outputs ≈ {total / 2**30:.1f} GiB for {clips:,} clips "
              f"({per_clip}" + ", ".join(f"{k} {v / 2**30:.1f} GiB" for k, v in top) + ")")
    if free < total * MARGIN:
        rows.append(Row("disk", BLOCKER, detail, f"free {(total * MARGIN - free) / 2**30:.1f} GiB more (need ×{MARGIN} "
                        "the outputs), or move the repo / DVC cache (`dvc cache dir`) to a larger disk"))
    else:
        rows.append(Row("disk", OK, detail))
    available = _mem_available()
    if available is not None:
        text = params.get("text", {}).get("model")
        train = 16 * model_size(params, "encoders", text)[2] if text and not found else 0
        ram = max(PEAK_RSS, train + 2**30)
        rows.append(Row("RAM", OK if available >= ram else WARN,
                        f"{available / 2**30:.1f} GiB available; stages peak ≈ {ram / 2**30:.1f} GiB"
                        + (" (text fine-tuning on the CPU: 16 B/param)" if train + 2**30 > PEAK_RSS
                           else " (make scale: flat in N)"),
                        "" if available >= ram else "close other programs, or runtime.jobs 1"))
    return rows


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
