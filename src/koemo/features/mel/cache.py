"""The `audio_features` caches of a labels table: every kind of a pass from ONE decode and ONE augmentation of
each clip, on the shared clip pass (`koemo.clips.extraction`).

Decoding runs in a thread pool (soundfile and soxr release the GIL) and reads only each clip's crop (the longest
any kind of the pass needs). Batches are cut by an audio budget (`audio.batch_seconds`): the training clips of a
batch get their augmented copies (noise per clip; stretch and pitch as one torch batch, on the GPU when present),
then each kind computes its rows from the originals and copies, cropped to that kind, and writes them to its own
shards. Rows follow labels order: each clip's original, then its copies in `AugmentSpec.plan()` order.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from koemo.clips.extraction import (INDEX_COLUMNS, LABEL_COLUMNS, Batcher, ClipTask, PassStats, budget_slices, load_clip,
                              pass_metrics, pass_runtime, run_pass, write_failures)
from koemo.core.shards import ShardWriter
from koemo.features.mel.augment import N_FFT, AugmentSpec, augment_batch
from koemo.features.mel.spectral import FeatureExtractor, FeatureSpec

class KindWriter:
    """One kind of the pass: its extractor, its shard writer, and row batches cut by the audio budget."""

    def __init__(self, spec: FeatureSpec, out_dir: Path, device, max_samples: int):
        self.spec, self.out_dir, self.max_samples = spec, Path(out_dir), max_samples
        self.extractor = FeatureExtractor(spec, device)
        self.writer = ShardWriter(out_dir, spec.shape, INDEX_COLUMNS, dtype=np.dtype(spec.dtype))

    def add(self, waves: Sequence[np.ndarray], metas: Sequence[dict[str, Any]]) -> None:
        """Rows of `waves` (each cropped to this kind) in order, computed in batches within the budget."""
        cropped = [w[:self.spec.crop_samples] for w in waves]
        for start, stop in budget_slices([len(w) for w in cropped], self.max_samples):
            rows = self.extractor(cropped[start:stop])
            self.writer.add(rows.astype(self.writer.dtype), list(metas[start:stop]))


def augmented_rows(waves: list[np.ndarray], metas: list[dict[str, Any]], augment: AugmentSpec, spec_min: int,
                   sample_rate: int, device, stats: PassStats, paths: Mapping[str, str], made: dict[str, int],
                   max_samples: int):
    """Originals and, for training rows, their augmented copies, in output order; unusable copies are listed and
    the usable ones counted by method in `made`."""
    train = [i for i, m in enumerate(metas) if m["split"] == "train"]
    copies = dict(zip(train, augment_batch([waves[i] for i in train], [metas[i]["wav_id"] for i in train], sample_rate,
                                           augment, device, max_samples))) if augment.plan() else {}
    out_waves, out_metas = [], []
    for i, (wave, meta) in enumerate(zip(waves, metas)):
        out_waves.append(wave)
        out_metas.append(meta)
        for method, copy, wave_copy in copies.get(i, []):
            if len(wave_copy) < spec_min or not np.isfinite(wave_copy).all():
                stats.failures.append((meta["wav_id"], paths[meta["wav_id"]], method, copy, "augment_unusable",
                                       f"{len(wave_copy)} samples, finite={bool(np.isfinite(wave_copy).all())}"))
                continue
            out_waves.append(wave_copy)
            out_metas.append({**meta, "aug": method, "aug_copy": int(copy)})
            made[method] += 1
    return out_waves, out_metas


def extract_pass(labels: pd.DataFrame, specs: Sequence[FeatureSpec], augment: AugmentSpec, out_dirs: Sequence[Path],
                 workers: int, batch_seconds: float, min_rms_dbfs: float | None = None, device=None,
                 progress: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write every kind's shards, `index.parquet`, `failures.csv` and `feature.json` into its `out_dirs` entry;
    return (deterministic metrics, runtime figures). Kinds with `augment: false` get originals only."""
    import torch

    from koemo.core.device import resolve_device
    from koemo.core.io import write_json

    device = device if device is not None else resolve_device("auto")
    sample_rate = specs[0].sample_rate
    max_samples = max(1, int(round(batch_seconds * sample_rate)))
    kinds = [KindWriter(spec, Path(out), device, max_samples) for spec, out in zip(specs, out_dirs)]
    for kind in kinds:
        kind.out_dir.mkdir(parents=True, exist_ok=True)
    wants_copies = bool(augment.plan()) and any(spec.augment for spec in specs)
    # The pass decodes the longest crop any kind reads; copies are made from it (two augmentation windows more, so
    # the STFT edge at the crop never reaches a kept sample) and each kind crops them again.
    crop = max(spec.crop_samples for spec in specs) + (2 * N_FFT if wants_copies else 0)
    min_samples = max(spec.n_fft for spec in specs)
    records = labels[LABEL_COLUMNS].to_dict("records")
    paths = {str(r["wav_id"]): str(r["wav_path"]) for r in records}
    tasks = (ClipTask(str(r["wav_path"]), sample_rate, crop / sample_rate, min_samples, min_rms_dbfs) for r in records)
    stats = PassStats()
    made = {method: 0 for method, _ in augment.plan()} if wants_copies else {}

    def process(waves: list[np.ndarray], metas: list[dict[str, Any]]) -> None:
        rows, row_metas = (augmented_rows(waves, metas, augment, min_samples, sample_rate, device, stats, paths, made,
                                          max_samples) if wants_copies else (waves, metas))
        for kind in kinds:
            if kind.spec.augment or not wants_copies:
                kind.add(rows, row_metas)
            else:
                kind.add(waves, metas)

    def meta_of(r: Mapping[str, Any]) -> dict[str, Any]:
        return {"wav_id": str(r["wav_id"]), "aug": "", "aug_copy": 0, "split": str(r["split"]), "fold": int(r["fold"]),
                "label": str(r["label"]), "label_id": int(r["label_id"])}

    pool = ThreadPoolExecutor(max_workers=int(workers)) if int(workers) > 0 else None
    kind_names = "+".join(spec.kind for spec in specs)
    run_pass(records, tasks, load_clip, Batcher(process, max_samples=max_samples), meta_of, pool,
             window=8 * max(1, int(workers)), desc=f"audio_features ({kind_names})", sample_rate=sample_rate,
             stats=stats, progress=progress)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    failed = write_failures(kinds[0].out_dir, stats)
    per_kind = {}
    for kind in kinds:
        index = kind.writer.close()
        if kind.out_dir != kinds[0].out_dir:
            write_failures(kind.out_dir, stats)
        spec = kind.spec
        write_json(kind.out_dir / "feature.json", {
            "kind": spec.kind, "shape": list(spec.shape), "dtype": spec.dtype, "sample_rate": spec.sample_rate,
            "n_fft": spec.n_fft, "hop_length": spec.hop_length, "n_mels": spec.n_mels, "top_db": spec.top_db,
            "max_frames": spec.max_frames, "n_mfcc": spec.n_mfcc, "max_seconds": spec.max_seconds,
            "crop_samples": spec.crop_samples,
            "augment": (augment.__dict__ | {"methods": list(augment.methods)}) if spec.augment and wants_copies else None})
        seconds = np.asarray(stats.file_seconds, dtype=np.float64)
        lengths = np.asarray(stats.lengths, dtype=np.int64)
        per_kind[spec.kind] = {
            "feature_shape": list(spec.shape),
            "dtype": spec.dtype,
            "bytes_per_row": int(np.prod(spec.shape)) * np.dtype(spec.dtype).itemsize,
            "rows": int(len(index)),
            "augmented_rows": int((index["aug"] != "").sum()),
            "augmented_test_rows": int(((index["aug"] != "") & (index["split"] != "train")).sum()),
            "shards": kind.writer.shards,
            "rows_per_shard": kind.writer.rows_per_shard,
            "crop_seconds": spec.crop_samples / spec.sample_rate,
            "cropped_clips": int((seconds * spec.sample_rate > spec.crop_samples).sum()),
            "empty_mel_bands": kind.extractor.empty_bands,
            **({"max_frames": spec.max_frames,
                "padded_clips": int((1 + lengths // spec.hop_length < spec.max_frames).sum())}
               if spec.max_frames is not None else {}),
        }
    copies = failed[failed["aug"] != ""]
    core = pass_metrics(stats)
    metrics = {
        "kinds": [spec.kind for spec in specs],
        **core,
        "failure_fraction": core["failed"] / stats.clips_in if stats.clips_in else 0.0,
        "decoded_seconds": stats.seconds_read,
        "augmented_by_method": made,
        "augment_failures_by_reason": {str(k): int(v) for k, v in copies["reason"].value_counts().sort_index().items()},
        "sample_rate": sample_rate,
        "source_sample_rates": {str(k): v for k, v in sorted(stats.source_rates.items())},
        "stereo_clips_mixed_down": int(stats.stereo),
        "min_rms_dbfs": min_rms_dbfs,
        **per_kind,
    }
    runtime = {**pass_runtime(stats, device), "workers": int(workers),
               "rows_per_second": sum(k["rows"] for k in per_kind.values()) / stats.wall if stats.wall > 0 else None}
    return metrics, runtime


def open_outputs(stack: ExitStack, outs: Sequence[str | Path]) -> list[Path]:
    """An atomic temp directory per output (each replaces its target only if the whole pass succeeds)."""
    from koemo.core.io import atomic_dir

    return [stack.enter_context(atomic_dir(out)) for out in outs]
