"""eGeMAPS v02 functionals (Eyben et al. 2016, the Geneva Minimalistic Acoustic Parameter Set): 88 per-clip
statistics of pitch, loudness, voice quality (jitter, shimmer, HNR), formants and spectral balance, the standard
hand-made feature set of speech emotion recognition, computed by openSMILE (the `opensmile` package bundles its
binary, so it runs offline).

Clips come from `koemo.clips.decode.decode_clip` (mono float32 at the feature rate, 16 kHz). The Smile object is built
lazily once per process (a module-level cache), so a spawned `ProcessPoolExecutor` worker builds its own on its
first clip (`extract_egemaps` runs such a pool). openSMILE is single-threaded, about 75 ms of
CPU per 4 s clip (~50x real time per core).

A clip openSMILE cannot describe (shorter than `MIN_SECONDS`, or any non-finite value) raises `EgemapsError`, a
ValueError whose `reason` (`too_short` / `non_finite`) is the failure reason the clip pass lists.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd


N_FEATURES = 88
F0_MEAN = "F0semitoneFrom27.5Hz_sma3nz_amean"  # mean F0 of voiced frames, in semitones above 27.5 Hz
MIN_SECONDS = 0.1  # openSMILE's longest window (F0, 60 ms) must fit a few times; shorter clips give it no frame
_PCM_MAX = 32767 / 32768  # openSMILE scales by 32768 and casts to int16, which wraps (not clips) louder samples


class EgemapsError(ValueError):
    """openSMILE gave no usable functionals for a clip; `reason` names why (too_short | non_finite)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@functools.cache
def smile():
    """The process's openSMILE eGeMAPSv02 functionals extractor."""
    import opensmile

    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)


def __getattr__(name: str):
    """`FEATURE_NAMES`: the 88 names in output order, read from openSMILE's config on first use (not at import)."""
    if name == "FEATURE_NAMES":
        return tuple(smile().feature_names)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def egemaps_functionals(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """float32 [88] eGeMAPSv02 functionals of one mono clip; EgemapsError (a ValueError) if too short or non-finite."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"expected one mono clip (1-D), got shape {wave.shape}")
    if len(wave) < MIN_SECONDS * sample_rate:
        raise EgemapsError("too_short", f"eGeMAPS: {len(wave)} samples at {sample_rate} Hz < {MIN_SECONDS} s")
    if not np.isfinite(wave).all():  # openSMILE would cast NaN to some int16 and return finite nonsense
        raise EgemapsError("non_finite", "eGeMAPS: the clip has NaN or inf samples")
    with warnings.catch_warnings():  # openSMILE warns, then fills NaN: reported below as a clear error instead
        warnings.filterwarnings("ignore", message="Segment too short")
        values = np.asarray(smile()(np.clip(wave, -1.0, _PCM_MAX), int(sample_rate)), dtype=np.float32).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        names = smile().feature_names
        raise EgemapsError("non_finite", f"eGeMAPS: {len(bad)} of {N_FEATURES} values not finite (e.g. {names[bad[0]]}) "
                                         f"for a {len(wave) / sample_rate:.2f} s clip")
    return values


def extract_egemaps(labels: pd.DataFrame, out_dir: Path, sample_rate: int, max_seconds: float, workers: int,
                    batch_seconds: float, min_rms_dbfs: float | None = None,
                    progress: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `egemaps` cache: each clip's crop decoded by the shared clip pass (threads), its functionals computed by
    `workers` spawned processes (openSMILE is single-threaded), rows in float32 shards; a clip openSMILE cannot
    describe is listed in failures.csv like a decoding failure. Returns (metrics, runtime)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    from koemo.clips.extraction import (INDEX_COLUMNS, LABEL_COLUMNS, Batcher, ClipTask, PassStats, load_clip, pass_runtime,
                                  run_pass, write_failures)
    from koemo.core.shards import ShardWriter

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(out_dir, (N_FEATURES,), INDEX_COLUMNS)
    records = labels[LABEL_COLUMNS].to_dict("records")
    paths = {str(r["wav_id"]): str(r["wav_path"]) for r in records}
    tasks = (ClipTask(str(r["wav_path"]), sample_rate, max_seconds, int(MIN_SECONDS * sample_rate), min_rms_dbfs)
             for r in records)
    stats = PassStats()
    workers = max(1, int(workers))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as functionals:
        def process(waves: list[np.ndarray], metas: list[dict[str, Any]]) -> None:
            rows, kept = [], []
            for meta, (row, reason, detail) in zip(metas, functionals.map(_row_of, waves, [sample_rate] * len(waves))):
                if row is None:
                    stats.failures.append((meta["wav_id"], paths[meta["wav_id"]], "", 0, reason, detail))
                else:
                    rows.append(row)
                    kept.append(meta)
            if rows:
                writer.add(np.stack(rows), kept)

        def meta_of(r: Mapping[str, Any]) -> dict[str, Any]:
            return {"wav_id": str(r["wav_id"]), "aug": "", "aug_copy": 0, "split": str(r["split"]), "fold": int(r["fold"]),
                    "label": str(r["label"]), "label_id": int(r["label_id"])}

        run_pass(records, tasks, load_clip, Batcher(process, max_samples=int(batch_seconds * sample_rate)), meta_of,
                 ThreadPoolExecutor(max_workers=2), window=16, desc="egemaps_features", sample_rate=sample_rate,
                 stats=stats, progress=progress)
    index = writer.close()
    failed = write_failures(out_dir, stats)
    reasons = failed["reason"].value_counts().sort_index()
    metrics = {"features": N_FEATURES, "feature_set": "eGeMAPSv02 functionals (openSMILE)", "clips_in": stats.clips_in,
               "clips": int(len(index)), "failed": int(stats.clips_in - len(index)),
               "failures_by_reason": {str(k): int(v) for k, v in reasons.items()}, "audio_seconds": stats.seconds,
               "max_seconds": float(max_seconds), "cropped_clips": int((np.asarray(stats.file_seconds) > max_seconds).sum()),
               "sample_rate": int(sample_rate), "shards": writer.shards, "min_rms_dbfs": min_rms_dbfs}
    import torch

    runtime = {**pass_runtime(stats, torch.device("cpu")), "workers": workers,
               "clips_per_second": len(index) / stats.wall if stats.wall > 0 else None}
    return metrics, runtime


def _row_of(wave: np.ndarray, sample_rate: int) -> tuple[np.ndarray | None, str, str]:
    """Pool worker: (functionals, "", "") or (None, reason, detail)."""
    try:
        return egemaps_functionals(wave, sample_rate), "", ""
    except EgemapsError as err:
        return None, err.reason, str(err)
