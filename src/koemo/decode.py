"""Decoding: any wav → mono float32 at the feature rate, once per clip, in a worker pool.

soundfile reads the PCM as int16/int32 (cheaper than libsndfile's float conversion), channels are averaged,
and soxr (librosa's own default resampler, "HQ") converts the rate: all three release the GIL, so a thread
pool decodes in parallel without pickling waveforms between processes. A clip that cannot be used comes back
as a `Decoded` with a reason instead of an exception, so the caller can count and list it.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")

#: failure reasons a decoder can report (`too_short` is added by the feature step: it depends on the kind's n_fft)
DECODE_REASONS = ("missing", "undecodable", "empty", "non_finite")


@dataclass
class Decoded:
    """One clip: a mono float32 waveform at `sample_rate`, or why there is none (`reason`, `detail`)."""

    wave: np.ndarray | None
    reason: str = ""
    detail: str = ""
    source_rate: int = 0
    channels: int = 0


_INT_SCALE = {"int16": 1.0 / 32768.0, "int32": 1.0 / 2147483648.0}


def _read(path: str) -> tuple[np.ndarray, int]:
    """[frames, channels] float32 and the file's rate; integer PCM is read as integers and scaled here."""
    import soundfile as sf

    info = sf.info(path)
    subtype = info.subtype or ""
    if subtype in ("PCM_16", "PCM_U8", "PCM_S8"):
        raw, rate = sf.read(path, dtype="int16", always_2d=True)
        return raw.astype(np.float32) * np.float32(_INT_SCALE["int16"]), rate
    if subtype in ("PCM_24", "PCM_32"):
        raw, rate = sf.read(path, dtype="int32", always_2d=True)
        return raw.astype(np.float32) * np.float32(_INT_SCALE["int32"]), rate
    return sf.read(path, dtype="float32", always_2d=True)


def to_mono(frames: np.ndarray) -> np.ndarray:
    """Average of the channels (a [frames, channels] array), float32 and contiguous."""
    if frames.shape[1] == 1:
        return np.ascontiguousarray(frames[:, 0], dtype=np.float32)
    return frames.mean(axis=1, dtype=np.float32)


def resample(wave: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """soxr "HQ" (band-limited, deterministic); a no-op at the target rate."""
    if source_rate == target_rate:
        return wave
    import soxr

    return np.ascontiguousarray(soxr.resample(wave, source_rate, target_rate, quality="HQ"), dtype=np.float32)


def decode_clip(path: str, sample_rate: int) -> Decoded:
    """Read, mix down and resample one file; never raises for bad input (the reason says what was wrong)."""
    if not os.path.isfile(path):
        return Decoded(None, "missing", f"no such file: {path}")
    try:
        frames, rate = _read(path)
    except Exception as err:  # libsndfile's errors are RuntimeError/LibsndfileError/ValueError, all "cannot decode"
        return Decoded(None, "undecodable", f"{type(err).__name__}: {err}".strip()[:300])
    channels = int(frames.shape[1]) if frames.ndim == 2 else 0
    if frames.shape[0] == 0:
        return Decoded(None, "empty", "0 samples", rate, channels)
    wave = to_mono(frames)
    if not np.isfinite(wave).all():
        return Decoded(None, "non_finite", "NaN or inf samples", rate, channels)
    wave = resample(wave, int(rate), int(sample_rate))
    if len(wave) == 0:
        return Decoded(None, "empty", f"{frames.shape[0]} samples at {rate} Hz → 0 at {sample_rate} Hz", rate, channels)
    return Decoded(wave, source_rate=int(rate), channels=channels)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], executor: Executor | None, window: int) -> Iterator[R]:
    """fn over items, results in input order, at most `window` in flight (memory stays flat on 44k clips);
    inline when `executor` is None."""
    if executor is None:
        yield from map(fn, items)
        return
    items = iter(items)
    pending = deque(executor.submit(fn, item) for item in islice(items, max(1, window)))
    while pending:
        future = pending.popleft()
        for item in islice(items, 1):
            pending.append(executor.submit(fn, item))
        yield future.result()


def decode_clips(paths: Sequence[str], sample_rate: int, workers: int = 2) -> list[Decoded]:
    """Every path decoded (order kept) by `workers` threads (0: in this thread)."""
    if workers <= 0:
        return [decode_clip(p, sample_rate) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(ordered_map(lambda p: decode_clip(p, sample_rate), paths, pool, window=4 * workers))
