"""eGeMAPS v02 functionals (Eyben et al. 2016, the Geneva Minimalistic Acoustic Parameter Set): 88 per-clip
statistics of pitch, loudness, voice quality (jitter, shimmer, HNR), formants and spectral balance, the standard
hand-made feature set of speech emotion recognition, computed by openSMILE (the `opensmile` package bundles its
binary, so it runs offline).

Clips come from `koemo.decode.decode_clip` (mono float32 at the feature rate, 16 kHz). The Smile object is built
lazily once per process (a module-level cache), so a spawned `ProcessPoolExecutor` worker builds its own on its
first clip; `functionals_of` is the picklable worker for such a pool. openSMILE is single-threaded, about 75 ms of
CPU per 4 s clip (~50x real time per core).

A clip openSMILE cannot describe (shorter than `MIN_SECONDS`, or any non-finite value) raises `EgemapsError`, a
ValueError whose `reason` (`too_short` / `non_finite`) is the failure reason the clip pass lists.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from koemo.decode import Decoded, decode_clip

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


def functionals_of(path: str, sample_rate: int) -> tuple[Decoded, np.ndarray | None]:
    """Pool worker: decode one clip and compute its functionals. On success the Decoded keeps its wave (the clip
    pass counts seconds and lengths from it); on failure it carries the reason and the features are None."""
    decoded = decode_clip(path, sample_rate)
    if decoded.wave is None:
        return decoded, None
    try:
        return decoded, egemaps_functionals(decoded.wave, sample_rate)
    except EgemapsError as err:
        return Decoded(None, err.reason, str(err), decoded.source_rate, decoded.channels), None
