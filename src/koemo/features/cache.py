"""One `audio_features@<kind>` cache for a labels table, on the shared clip pass (`koemo.extraction`): the pool
decodes each clip and makes its augmented training copies, torch computes the kind batch by batch, shards keep
the rows.

Rows follow labels order (each clip's original, then its augmented copies in `AugmentSpec.plan()` order). Workers
are threads (decoding releases the GIL) unless librosa's stretch/pitch are asked for, which hold it: then
processes.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from koemo.decode import Decoded, decode_clip
from koemo.extraction import Batcher, Loaded, pass_metrics, pass_runtime, run_pass, write_failures
from koemo.features.augment import AugmentSpec, apply, rng_for
from koemo.features.spectral import FeatureExtractor, FeatureSpec
from koemo.shards import ShardWriter

INDEX_COLUMNS = {"wav_id": str, "aug": str, "aug_copy": "int64", "split": str, "fold": "int64", "label": str,
                 "label_id": "int64"}


@dataclass(frozen=True)
class ClipTask:
    wav_id: str
    path: str
    sample_rate: int
    min_samples: int
    plan: tuple[tuple[str, int], ...]   # (method, copy) pairs: empty for non-training rows
    augment: AugmentSpec


def load_clip(task: ClipTask) -> Loaded:
    """Pool worker: decode one clip, reject it if shorter than one window, then make its augmented copies."""
    decoded = decode_clip(task.path, task.sample_rate)
    if decoded.wave is not None and len(decoded.wave) < task.min_samples:
        decoded = Decoded(None, "too_short", f"{len(decoded.wave)} samples at {task.sample_rate} Hz < one window "
                                             f"({task.min_samples})", decoded.source_rate, decoded.channels)
    result = Loaded(decoded)
    if decoded.wave is None:
        return result
    for method, copy in task.plan:
        try:
            wave = apply(decoded.wave, task.sample_rate, method, task.augment, rng_for(task.augment.seed, task.wav_id, method, copy))
        except Exception as err:  # a librosa failure on one clip is listed, not fatal
            result.extra_failures.append((method, copy, "augment_error", f"{type(err).__name__}: {err}"[:300]))
            continue
        if len(wave) < task.min_samples or not np.isfinite(wave).all():
            result.extra_failures.append((method, copy, "augment_unusable", f"{len(wave)} samples, finite={np.isfinite(wave).all()}"))
            continue
        result.extra.append(({"aug": method, "aug_copy": int(copy)}, wave))
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

    from koemo.device import resolve_device
    from koemo.io import write_json

    device = device if device is not None else resolve_device("auto")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    batch_size = max(1, int(batch_size))
    extractor = FeatureExtractor(spec, device)
    writer = ShardWriter(out, spec.shape, INDEX_COLUMNS)
    plan = tuple(augment.plan())
    records = labels[["wav_id", "wav_path", "split", "fold", "label", "label_id"]].to_dict("records")
    tasks = (ClipTask(str(r["wav_id"]), str(r["wav_path"]), spec.sample_rate, spec.min_samples,
                      plan if r["split"] == "train" else (), augment) for r in records)

    def meta_of(r: dict) -> dict[str, Any]:
        return {"wav_id": str(r["wav_id"]), "aug": "", "aug_copy": 0, "split": str(r["split"]), "fold": int(r["fold"]),
                "label": str(r["label"]), "label_id": int(r["label_id"])}

    pool, pool_kind = make_pool(int(workers), augment)
    stats = run_pass(records, tasks, load_clip, Batcher(extractor, writer.add, batch_size), meta_of, pool,
                     window=max(2 * batch_size, 4 * max(1, workers)), desc=f"audio_features ({spec.kind})",
                     sample_rate=spec.sample_rate, progress=progress)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    index = writer.close()
    failed = write_failures(out, stats)
    write_json(out / "feature.json", {"kind": spec.kind, "shape": list(spec.shape), "dtype": "float32",
                                      "sample_rate": spec.sample_rate, "n_fft": spec.n_fft, "hop_length": spec.hop_length,
                                      "n_mels": spec.n_mels, "top_db": spec.top_db, "max_frames": spec.max_frames,
                                      "n_mfcc": spec.n_mfcc, "augment": augment.__dict__ | {"methods": list(augment.methods)}})
    by_method = {m: int((index["aug"] == m).sum()) for m, _ in plan}
    aug_reasons = failed[failed["aug"] != ""]["reason"].value_counts().sort_index()
    core = pass_metrics(stats)
    metrics = {
        "kind": spec.kind,
        "feature_shape": list(spec.shape),
        **core,
        "failure_fraction": core["failed"] / stats.clips_in if stats.clips_in else 0.0,
        "augmented_rows": int(sum(by_method.values())),
        "augmented_by_method": by_method,
        "augment_failures_by_reason": {str(k): int(v) for k, v in aug_reasons.items()},
        "augmented_test_rows": int(((index["aug"] != "") & (index["split"] != "train")).sum()),
        "rows": int(len(index)),
        "shards": writer.shards,
        "rows_per_shard": writer.rows_per_shard,
        "augmented_seconds": stats.extra_seconds,
        "sample_rate": spec.sample_rate,
        "source_sample_rates": {str(k): v for k, v in sorted(stats.source_rates.items())},
        "stereo_clips_mixed_down": int(stats.stereo),
        "empty_mel_bands": extractor.empty_bands,
    }
    if spec.max_frames is not None:
        full = 1 + np.asarray(stats.lengths, dtype=np.int64) // spec.hop_length
        metrics.update({"max_frames": spec.max_frames, "cropped_clips": int((full > spec.max_frames).sum()),
                        "padded_clips": int((full < spec.max_frames).sum())})
    runtime = {**pass_runtime(stats, device),
               "rows_per_second": len(index) / stats.wall if stats.wall > 0 else None,
               "workers": int(workers), "pool": pool_kind}
    return metrics, runtime
