"""The reference project's waveform augmentations (noise, stretch, pitch), for training rows only, reproducible.

`noise` is the reference formula (x + noise_amp·U·max|x|·N(0,1)), drawn per copy from a generator seeded by
(seed, wav_id, method, copy), so a copy never depends on batch size or worker count. `stretch` and `pitch` are
librosa's `time_stretch` / `pitch_shift` (phase vocoder on a 2048-point STFT, hop 512; pitch = stretch, then
resampling back to the original rate) computed for a whole batch of clips at once in torch — on the GPU when there
is one — instead of clip by clip: `benchmarks/augment.py` measures the speed-up and the spectral distance to
librosa. They are deterministic transforms (fixed rate and step), so they yield one copy each whatever `copies`
says; `copies` multiplies the random `noise` method only.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

METHODS = ("noise", "stretch", "pitch")
RANDOM_METHODS = frozenset({"noise"})
N_FFT, HOP = 2048, 512  # librosa.effects' STFT defaults
STRETCH_SAMPLES = 1 << 20  # padded samples per stretch batch (~64 s at 16 kHz, ~100 MB of STFT and vocoder)


@dataclass(frozen=True)
class AugmentSpec:
    """`audio.augment` from params.yaml."""

    methods: tuple[str, ...] = ()
    copies: int = 0
    seed: int = 0
    noise_amp: float = 0.005     # noise std = noise_amp · U(0, 1) · max|x| (the reference project's formula)
    stretch_rate: float = 0.8    # time-stretch rate (< 1: slower, longer), as librosa.effects.time_stretch
    pitch_steps: float = 0.7     # pitch shift in semitones, as librosa.effects.pitch_shift

    @classmethod
    def from_params(cls, p: Mapping[str, Any] | None) -> "AugmentSpec":
        p = dict(p or {})
        methods = tuple(str(m) for m in (p.get("methods") or ()))
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"augment.methods: unknown {unknown}; choose from {list(METHODS)}")
        if len(set(methods)) != len(methods):
            raise ValueError(f"augment.methods lists a method twice: {list(methods)}")
        copies = int(p.get("copies", 0))
        if copies < 0:
            raise ValueError(f"augment.copies must be >= 0, got {copies}")
        spec = cls(methods, copies, int(p.get("seed", 0)), float(p.get("noise_amp", cls.noise_amp)),
                   float(p.get("stretch_rate", cls.stretch_rate)), float(p.get("pitch_steps", cls.pitch_steps)))
        if spec.stretch_rate <= 0:
            raise ValueError(f"augment.stretch_rate must be > 0, got {spec.stretch_rate}")
        return spec

    def plan(self) -> list[tuple[str, int]]:
        """(method, copy) pairs every training clip gets, in output order."""
        return [(m, c) for m in self.methods for c in range(self.copies if m in RANDOM_METHODS else min(self.copies, 1))]

    @property
    def longest_factor(self) -> float:
        """How much longer than its original an augmented copy can be (stretch with rate < 1)."""
        return max(1.0, 1.0 / self.stretch_rate) if "stretch" in self.methods and self.copies else 1.0


def rng_for(seed: int, wav_id: str, method: str, copy: int) -> np.random.Generator:
    """A generator that depends only on (seed, wav_id, method, copy): stable across runs, workers and platforms."""
    digest = hashlib.sha256(f"{seed}\x1f{wav_id}\x1f{method}\x1f{copy}".encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def add_noise(wave: np.ndarray, spec: AugmentSpec, rng: np.random.Generator) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)
    amp = spec.noise_amp * rng.uniform() * float(np.max(np.abs(wave)))
    return (wave + amp * rng.standard_normal(len(wave))).astype(np.float32)


def _padded(waves: Sequence[np.ndarray], device):
    import torch

    lengths = torch.as_tensor([len(w) for w in waves], dtype=torch.int64)
    batch = torch.zeros((len(waves), int(lengths.max())), dtype=torch.float32)
    for i, wave in enumerate(waves):
        batch[i, :len(wave)] = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    return batch.to(device), lengths


def _vocoder(magnitude, phase0, advance_plus_delta, rate: float):
    """librosa.phase_vocoder for one rate, from what every rate shares, frames first (`[frames, B, F]`, so picking
    frames copies whole blocks): the magnitude with two silent frames appended (as librosa pads), the first frame's
    phase, and each frame-to-next phase advance, wrapped. Output step t interpolates the magnitudes of the frames
    around t·rate and accumulates their advances. Returns the complex `[B, F, steps]` spectrogram."""
    import torch

    steps = torch.arange(0, magnitude.shape[0] - 2, rate, dtype=torch.float64, device=magnitude.device)
    first = steps.floor().long()
    alpha = (steps - first).to(magnitude.dtype)[:, None, None]
    m0 = magnitude.index_select(0, first)
    m1 = magnitude.index_select(0, first + 1)
    accumulated = torch.cat([phase0, advance_plus_delta.index_select(0, first[:-1])], dim=0).cumsum(dim=0)
    magnitude = m0.lerp_(m1, alpha)
    parts = torch.stack([magnitude * torch.cos(accumulated), magnitude.mul_(torch.sin(accumulated))], dim=-1)
    return torch.view_as_complex(parts).permute(1, 2, 0)  # = torch.polar, which builds complex numbers ~2× slower


def time_stretch(waves: Sequence[np.ndarray], rates: Sequence[float], device=None) -> list[list[np.ndarray]]:
    """librosa.effects.time_stretch of each clip at each of `rates` (`[rate][clip]`), from one padded batch STFT
    whose magnitude and phase advances are computed once for every rate.

    Frames past a clip's own end are silenced before the vocoder (librosa's per-clip STFT has none), so padding
    never leaks into a shorter clip; each output is cut to round(len / rate) as librosa cuts it.
    """
    import torch
    from torch.nn import functional as F

    if not len(waves):
        return [[] for _ in rates]
    device = device or torch.device("cpu")
    x, lengths = _padded(waves, device)
    window = torch.hann_window(N_FFT, periodic=True, device=device)
    out = []
    with torch.inference_mode():
        spec = torch.stft(x, N_FFT, HOP, window=window, center=True, pad_mode="constant", return_complex=True)
        own = (torch.arange(spec.shape[-1], device=device)[None, :] < (1 + lengths.to(device) // HOP)[:, None])[:, None, :]
        spec = F.pad(spec * own, (0, 2)).permute(2, 0, 1).contiguous()  # [frames + 2 silent, B, F]
        magnitude = torch.hypot(spec.real, spec.imag)
        phase = torch.atan2(spec.imag, spec.real)
        del spec
        advance = torch.linspace(0, math.pi * HOP, magnitude.shape[-1], device=device)
        delta = phase[1:] - phase[:-1] - advance
        advance_plus_delta = delta.sub_(torch.round(delta / (2 * math.pi)).mul_(2 * math.pi)).add_(advance)
        for rate in rates:
            out_lengths = [int(round(int(n) / rate)) for n in lengths]
            y = torch.istft(_vocoder(magnitude, phase[:1], advance_plus_delta, rate), N_FFT, HOP, window=window,
                            center=True, length=max(out_lengths)).cpu().numpy()
            out.append([np.ascontiguousarray(y[i, :n], dtype=np.float32) for i, n in enumerate(out_lengths)])
    return out


def resample(waves: Sequence[np.ndarray], orig_rate: float, new_rate: int, device=None) -> list[np.ndarray]:
    """Band-limited resampling, as librosa's pitch_shift does it: soxr "HQ" clip by clip on CPU (its exact
    resampler, fractional rates included), torchaudio's sinc resampler on a padded batch on a GPU."""
    import torch

    if not len(waves):
        return []
    if device is None or torch.device(device).type == "cpu":
        import soxr

        return [np.ascontiguousarray(soxr.resample(w, orig_rate, new_rate, quality="HQ"), dtype=np.float32) for w in waves]
    import torchaudio

    x, lengths = _padded(waves, device)
    whole = int(round(orig_rate))  # torchaudio resamples between whole rates: < 0.001 semitone off at 16 kHz
    with torch.inference_mode():
        y = torchaudio.functional.resample(x, whole, int(new_rate)).cpu().numpy()
    return [np.ascontiguousarray(y[i, :int(math.ceil(int(n) * new_rate / whole))], dtype=np.float32)
            for i, n in enumerate(lengths)]


def pitch_rate(steps: float) -> float:
    """The stretch rate behind a pitch shift of `steps` semitones (librosa's)."""
    return 2.0 ** (-float(steps) / 12)


def fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    """librosa.util.fix_length: cut or zero-pad to `length`."""
    return np.pad(wave, (0, max(0, length - len(wave))))[:length].astype(np.float32)


def augment_batch(waves: Sequence[np.ndarray], wav_ids: Sequence[str], sample_rate: int, spec: AugmentSpec,
                  device=None, max_samples: int = STRETCH_SAMPLES) -> list[list[tuple[str, int, np.ndarray]]]:
    """Every clip's augmented copies `(method, copy, wave)` in `spec.plan()` order. Stretch and pitch share one
    batched STFT; pitch = stretch by `pitch_rate(steps)`, then resampling back to `sample_rate` (librosa's recipe).
    Clips are sorted by length and stretched in padded batches of at most `max_samples` (count × longest): the
    STFT and vocoder hold ~100 bytes per padded sample, so memory follows the budget, not the clip count."""
    from koemo.clips.extraction import budget_slices

    plan = spec.plan()
    methods = {m for m, _ in plan}
    rates = [r for m, r in (("stretch", spec.stretch_rate), ("pitch", pitch_rate(spec.pitch_steps))) if m in methods]
    order = np.argsort([-len(w) for w in waves], kind="stable")  # similar lengths share a padded batch
    made: dict[str, list] = {"stretch": [None] * len(waves), "pitch": [None] * len(waves)}
    for start, stop in budget_slices([len(waves[i]) for i in order], max_samples):
        chunk = order[start:stop]
        stretched = dict(zip([m for m in ("stretch", "pitch") if m in methods],
                             time_stretch([waves[i] for i in chunk], rates, device)))
        if "pitch" in stretched:
            rate = pitch_rate(spec.pitch_steps)
            stretched["pitch"] = [fit_length(y, len(waves[i])) for i, y in
                                  zip(chunk, resample(stretched["pitch"], sample_rate / rate, sample_rate, device))]
        for method, outputs in stretched.items():
            for i, y in zip(chunk, outputs):
                made[method][i] = y
    out: list[list[tuple[str, int, np.ndarray]]] = [[] for _ in waves]
    for i, (wave, wav_id) in enumerate(zip(waves, wav_ids)):
        for method, copy in plan:
            y = add_noise(wave, spec, rng_for(spec.seed, wav_id, method, copy)) if method == "noise" else made[method][i]
            out[i].append((method, copy, y))
    return out


def log_spectral_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over frames of the RMS difference of two clips' log power spectra (dB; 512-point STFT, each floored 80 dB
    below the louder peak, as the features' top_db is): how far the batched augmentation is from librosa's."""
    import librosa

    da = 10 * np.log10(np.abs(librosa.stft(a, n_fft=512)) ** 2 + 1e-10)
    db = 10 * np.log10(np.abs(librosa.stft(b, n_fft=512)) ** 2 + 1e-10)
    top = max(da.max(), db.max())
    da, db = np.maximum(da, top - 80), np.maximum(db, top - 80)
    return float(np.mean(np.sqrt(np.mean((da - db) ** 2, axis=0))))
