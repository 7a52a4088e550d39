"""One `audio_features@<kind>` cache for a labels table: decode in a pool, augment training clips, batch the
features through torch, stream rows into shards.

Rows follow labels order (each clip's original, then its augmented copies in `AugmentSpec.plan()` order) and
batches are cut in that order, so the same params give the same bytes. Workers are threads (decoding releases
the GIL) unless librosa's stretch/pitch are asked for, which hold it: then processes. Bad clips are counted and
listed in `failures.csv`, never dropped silently; `check_failures` turns too many of them into an error.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from koemo.audio.augment import AugmentSpec, apply, rng_for
from koemo.audio.decode import Decoded, decode_clip, ordered_map
from koemo.audio.features import FeatureExtractor, FeatureSpec
from koemo.audio.shards import ShardWriter
from koemo.errors import UserError

FAILURE_COLUMNS = ["wav_id", "wav_path", "aug", "aug_copy", "reason", "detail"]


class TooManyFailures(UserError):
    """More clips failed than `audio.max_failure_fraction` allows."""


@dataclass(frozen=True)
class ClipTask:
    wav_id: str
    path: str
    sample_rate: int
    min_samples: int
    plan: tuple[tuple[str, int], ...]   # (method, copy) pairs: empty for non-training rows
    augment: AugmentSpec


@dataclass
class ClipResult:
    decoded: Decoded
    augmented: list[tuple[str, int, np.ndarray]] = field(default_factory=list)
    aug_failures: list[tuple[str, int, str, str]] = field(default_factory=list)  # method, copy, reason, detail


def load_clip(task: ClipTask) -> ClipResult:
    """Worker body: decode one clip, reject it if shorter than one window, then make its augmented copies."""
    decoded = decode_clip(task.path, task.sample_rate)
    if decoded.wave is not None and len(decoded.wave) < task.min_samples:
        decoded = Decoded(None, "too_short", f"{len(decoded.wave)} samples at {task.sample_rate} Hz < one window "
                                             f"({task.min_samples})", decoded.source_rate, decoded.channels)
    result = ClipResult(decoded)
    if decoded.wave is None:
        return result
    for method, copy in task.plan:
        try:
            wave = apply(decoded.wave, task.sample_rate, method, task.augment, rng_for(task.augment.seed, task.wav_id, method, copy))
        except Exception as err:  # a librosa failure on one clip is listed, not fatal
            result.aug_failures.append((method, copy, "augment_error", f"{type(err).__name__}: {err}"[:300]))
            continue
        if len(wave) < task.min_samples or not np.isfinite(wave).all():
            result.aug_failures.append((method, copy, "augment_unusable", f"{len(wave)} samples, finite={np.isfinite(wave).all()}"))
            continue
        result.augmented.append((method, copy, wave))
    return result


def make_pool(workers: int, augment: AugmentSpec) -> tuple[Executor | None, str]:
    """Threads for decoding (+ noise); spawned processes when librosa stretch/pitch must run in parallel."""
    if workers <= 0:
        return None, "inline"
    if augment.needs_processes:
        return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")), "processes"
    return ThreadPoolExecutor(max_workers=workers), "threads"


def extract_kind(labels: pd.DataFrame, spec: FeatureSpec, augment: AugmentSpec, out_dir: str | Path, workers: int,
                 batch_size: int, device=None, progress: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write shards, `index.parquet`, `failures.csv` and `feature.json` into `out_dir`; return (deterministic
    metrics, runtime figures). `labels` needs wav_id, wav_path, split, fold, label, label_id."""
    import torch
    from tqdm import tqdm

    from koemo.device import describe, resolve_device
    from koemo.io import write_csv, write_json

    device = device if device is not None else resolve_device("auto")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    batch_size = max(1, int(batch_size))
    extractor = FeatureExtractor(spec, device)
    writer = ShardWriter(out, spec.shape)
    plan = tuple(augment.plan())
    records = labels[["wav_id", "wav_path", "split", "fold", "label", "label_id"]].to_dict("records")
    tasks = (ClipTask(str(r["wav_id"]), str(r["wav_path"]), spec.sample_rate, spec.min_samples,
                      plan if r["split"] == "train" else (), augment) for r in records)

    failures: list[tuple] = []
    pending_waves: list[np.ndarray] = []
    pending_meta: list[dict[str, Any]] = []
    stats = {"clips": 0, "seconds": 0.0, "aug_seconds": 0.0, "cropped": 0, "padded": 0, "batches": 0,
             "by_method": {m: 0 for m, _ in plan}, "source_rates": {}, "stereo": 0}

    def flush(count: int) -> None:
        waves, meta = pending_waves[:count], pending_meta[:count]
        del pending_waves[:count], pending_meta[:count]
        writer.add(extractor(waves), meta)
        stats["batches"] += 1

    pool, pool_kind = make_pool(int(workers), augment)
    start = time.perf_counter()
    bar = tqdm(total=len(records), desc=f"audio_features ({spec.kind})", unit="clip", disable=not progress)
    try:
        for r, result in zip(records, ordered_map(load_clip, tasks, pool, window=max(2 * batch_size, 4 * max(1, workers)))):
            clip = result.decoded
            base = {"wav_id": str(r["wav_id"]), "split": str(r["split"]), "fold": int(r["fold"]),
                    "label": str(r["label"]), "label_id": int(r["label_id"])}
            if clip.wave is None:
                failures.append((base["wav_id"], r["wav_path"], "", 0, clip.reason, clip.detail))
            else:
                stats["clips"] += 1
                stats["seconds"] += len(clip.wave) / spec.sample_rate
                stats["source_rates"][clip.source_rate] = stats["source_rates"].get(clip.source_rate, 0) + 1
                stats["stereo"] += clip.channels > 1
                if spec.max_frames is not None:
                    full = 1 + len(clip.wave) // spec.hop_length
                    stats["cropped"] += full > spec.max_frames
                    stats["padded"] += full < spec.max_frames
                pending_waves.append(clip.wave)
                pending_meta.append({**base, "aug": "", "aug_copy": 0})
                for method, copy, wave in result.augmented:
                    pending_waves.append(wave)
                    pending_meta.append({**base, "aug": method, "aug_copy": int(copy)})
                    stats["by_method"][method] += 1
                    stats["aug_seconds"] += len(wave) / spec.sample_rate
                for method, copy, reason, detail in result.aug_failures:
                    failures.append((base["wav_id"], r["wav_path"], method, copy, reason, detail))
            while len(pending_waves) >= batch_size:
                flush(batch_size)
            bar.update(1)
            bar.set_postfix_str(f"{stats['seconds'] / max(time.perf_counter() - start, 1e-9):.0f}× real time", refresh=False)
        if pending_waves:
            flush(len(pending_waves))
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    index = writer.close()
    wall = time.perf_counter() - start

    failed = pd.DataFrame(failures, columns=FAILURE_COLUMNS)
    write_csv(out / "failures.csv", failed)
    write_json(out / "feature.json", {"kind": spec.kind, "shape": list(spec.shape), "dtype": "float32",
                                      "sample_rate": spec.sample_rate, "n_fft": spec.n_fft, "hop_length": spec.hop_length,
                                      "n_mels": spec.n_mels, "top_db": spec.top_db, "max_frames": spec.max_frames,
                                      "n_mfcc": spec.n_mfcc, "augment": augment.__dict__ | {"methods": list(augment.methods)}})
    originals = failed[failed["aug"] == ""]
    reasons = originals["reason"].value_counts().sort_index()
    aug_reasons = failed[failed["aug"] != ""]["reason"].value_counts().sort_index()
    n = len(records)
    metrics = {
        "kind": spec.kind,
        "feature_shape": list(spec.shape),
        "clips_in": n,
        "clips": stats["clips"],
        "failed": int(len(originals)),
        "failure_fraction": len(originals) / n if n else 0.0,
        "failures_by_reason": {str(k): int(v) for k, v in reasons.items()},
        "augmented_rows": int(sum(stats["by_method"].values())),
        "augmented_by_method": stats["by_method"],
        "augment_failures_by_reason": {str(k): int(v) for k, v in aug_reasons.items()},
        "augmented_test_rows": int(((index["aug"] != "") & (index["split"] != "train")).sum()),
        "rows": int(len(index)),
        "shards": writer.shards,
        "rows_per_shard": writer.rows_per_shard,
        "audio_seconds": stats["seconds"],
        "augmented_seconds": stats["aug_seconds"],
        "sample_rate": spec.sample_rate,
        "source_sample_rates": {str(k): v for k, v in sorted(stats["source_rates"].items())},
        "stereo_clips_mixed_down": int(stats["stereo"]),
        "empty_mel_bands": extractor.empty_bands,
    }
    if spec.max_frames is not None:
        metrics.update({"max_frames": spec.max_frames, "cropped_clips": stats["cropped"], "padded_clips": stats["padded"]})
    runtime = {
        "seconds": wall,
        "x_real_time": stats["seconds"] / wall if wall > 0 else None,
        "clips_per_second": stats["clips"] / wall if wall > 0 else None,
        "rows_per_second": len(index) / wall if wall > 0 else None,
        "batches": stats["batches"],
        "device": describe(device),
        "workers": int(workers),
        "pool": pool_kind,
    }
    return metrics, runtime


def check_failures(metrics: dict[str, Any], out_dir: str | Path, limit: float, stage: str | None = None) -> None:
    """Raise `TooManyFailures` (count, fraction, reasons, the first files, the param) above `limit`.

    Shared by every stage that decodes clips (audio_features, ssl_features): `out_dir/failures.csv` lists them.
    """
    failed, total = int(metrics["failed"]), int(metrics["clips_in"])
    if failed == 0 or failed <= limit * total:
        return
    listed = pd.read_csv(Path(out_dir) / "failures.csv", keep_default_na=False)
    if "aug" in listed:
        listed = listed[listed["aug"] == ""]
    examples = "\n".join(f"  {r.wav_path}: {r.reason} ({r.detail})" for r in listed.head(5).itertuples())
    stage = stage or f"audio_features@{metrics['kind']}"
    raise TooManyFailures(
        f"{stage}: {failed} of {total} clips failed ({failed / total:.1%}; "
        f"{metrics['failures_by_reason']}), more than audio.max_failure_fraction={limit} allows. First files:\n"
        f"{examples}\nFix or remove those files, or raise audio.max_failure_fraction in params.yaml.")
