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

#: failure reasons a decoder can report (`too_short` is added by the feature step: it depends on the kind's n_fft;
#: `silent` by `reject_silent`)
DECODE_REASONS = ("missing", "undecodable", "truncated", "empty", "non_finite", "silent")


@dataclass
class Decoded:
    """One clip: a mono float32 waveform at `sample_rate`, or why there is none (`reason`, `detail`)."""

    wave: np.ndarray | None
    reason: str = ""
    detail: str = ""
    source_rate: int = 0
    channels: int = 0
    file_seconds: float = 0.0  # the whole file's duration, however much of it was read


_INT_SCALE = {"int16": 1.0 / 32768.0, "int32": 1.0 / 2147483648.0}


def _read(path: str, max_seconds: float | None = None) -> tuple[np.ndarray, int, float]:
    """[frames, channels] float32, the file's rate and its whole duration; at most `max_seconds` are read (the rest
    never is). Integer PCM is read as integers and scaled here."""
    import soundfile as sf

    info = sf.info(path)
    frames = -1 if max_seconds is None else min(info.frames, int(np.ceil(max_seconds * info.samplerate)))
    subtype = info.subtype or ""
    if subtype in ("PCM_16", "PCM_U8", "PCM_S8"):
        raw, rate = sf.read(path, frames=frames, dtype="int16", always_2d=True)
        return raw.astype(np.float32) * np.float32(_INT_SCALE["int16"]), rate, float(info.duration)
    if subtype in ("PCM_24", "PCM_32"):
        raw, rate = sf.read(path, frames=frames, dtype="int32", always_2d=True)
        return raw.astype(np.float32) * np.float32(_INT_SCALE["int32"]), rate, float(info.duration)
    raw, rate = sf.read(path, frames=frames, dtype="float32", always_2d=True)
    return raw, rate, float(info.duration)


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


def wav_truncation(path: str) -> str | None:
    """Why a RIFF/WAVE file is cut short, or None: its `data` chunk declares more bytes than the file holds.

    libsndfile quietly shortens such a file to what is there (a copy cut at half its bytes reads as half its length),
    so a model would learn from, or answer, part of a recording. Only the header is read; a file that is not RIFF
    WAVE, or a streamed one whose data size is unset (0 or 0xFFFFFFFF), is left to the decoder."""
    import struct

    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            if handle.read(12)[:4] != b"RIFF":
                return None
            block_align, offset = 0, 12
            while offset + 8 <= size:
                handle.seek(offset)
                chunk, length = struct.unpack("<4sI", handle.read(8))
                if chunk == b"fmt ":
                    block_align = struct.unpack("<H", handle.read(14)[12:14])[0]
                elif chunk == b"data":
                    present = size - offset - 8
                    if length in (0, 0xFFFFFFFF) or length <= present or not block_align:
                        return None
                    return (f"the header declares {length // block_align} frames, the file holds {present // block_align} "
                            f"({present} of {length} data bytes): cut short; copy or download it again")
                offset += 8 + length + (length & 1)
    except (OSError, struct.error):
        return None  # the decoder names what is wrong with it
    return None


CROP_MARGIN_SECONDS = 0.05  # read past a crop so the resampler's edge never reaches the samples kept


def decode_clip(path: str, sample_rate: int, max_seconds: float | None = None) -> Decoded:
    """Read, mix down and resample one file — only its first `max_seconds` when given, so a 10-minute clip costs
    what its crop costs; never raises for bad input (the reason says what was wrong). A wav cut short is refused
    (`truncated`), whatever the crop: its header and its data disagree, so which part survived is unknown."""
    if not os.path.isfile(path):
        return Decoded(None, "missing", f"no such file: {path}")
    cut = wav_truncation(path)
    if cut is not None:
        return Decoded(None, "truncated", cut)
    try:
        frames, rate, seconds = _read(path, None if max_seconds is None else max_seconds + CROP_MARGIN_SECONDS)
    except Exception as err:  # libsndfile's errors are RuntimeError/LibsndfileError/ValueError, all "cannot decode"
        return Decoded(None, "undecodable", f"{type(err).__name__}: {err}".strip()[:300])
    channels = int(frames.shape[1]) if frames.ndim == 2 else 0
    if frames.shape[0] == 0:
        return Decoded(None, "empty", "0 samples", rate, channels, seconds)
    wave = to_mono(frames)
    if not np.isfinite(wave).all():
        return Decoded(None, "non_finite", "NaN or inf samples", rate, channels, seconds)
    wave = resample(wave, int(rate), int(sample_rate))
    if max_seconds is not None:
        wave = wave[:int(round(max_seconds * sample_rate))]
    if len(wave) == 0:
        return Decoded(None, "empty", f"{frames.shape[0]} samples at {rate} Hz → 0 at {sample_rate} Hz", rate, channels,
                       seconds)
    return Decoded(wave, source_rate=int(rate), channels=channels, file_seconds=seconds)


def rms_dbfs(wave: np.ndarray) -> float:
    """The clip's RMS level in dB relative to full scale (-inf for digital silence)."""
    power = float(np.mean(np.square(wave, dtype=np.float64))) if len(wave) else 0.0
    return 10.0 * np.log10(power) if power > 0 else float("-inf")


def reject_silent(clip: Decoded, min_rms_dbfs: float | None) -> Decoded:
    """`clip`, or a `silent` failure when its RMS level is below `min_rms_dbfs` (`audio.min_rms_dbfs`): a silent or
    near-silent recording carries no emotion, and every model would still answer it with confidence."""
    if clip.wave is None or min_rms_dbfs is None:
        return clip
    level = rms_dbfs(clip.wave)
    if level >= min_rms_dbfs:
        return clip
    return Decoded(None, "silent", f"RMS {level:.1f} dBFS < audio.min_rms_dbfs {min_rms_dbfs:g}", clip.source_rate,
                   clip.channels, clip.file_seconds)


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
