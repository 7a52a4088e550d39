"""The reference project's waveform augmentations (noise, stretch, pitch), for training rows only, reproducible per copy.

Each augmented copy draws from its own generator seeded by (seed, wav_id, method, copy), so a copy's bytes
never depend on batch size, worker count or the order clips finish decoding. `stretch` and `pitch` are
deterministic transforms (fixed rate and step, as in the reference project): a second copy would repeat the first, so
they yield one copy each whatever `copies` says; `copies` multiplies the random `noise` method only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

METHODS = ("noise", "stretch", "pitch")
RANDOM_METHODS = frozenset({"noise"})


@dataclass(frozen=True)
class AugmentSpec:
    """`audio.<kind>.augment` from params.yaml."""

    methods: tuple[str, ...] = ()
    copies: int = 0
    seed: int = 0
    noise_amp: float = 0.005     # noise std = noise_amp · U(0, 1) · max|x| (the reference project's formula)
    stretch_rate: float = 0.8    # librosa.effects.time_stretch rate (< 1: slower, longer)
    pitch_steps: float = 0.7     # librosa.effects.pitch_shift semitones

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
    def needs_processes(self) -> bool:
        """librosa's stretch/pitch hold the GIL: only a process pool runs them in parallel."""
        return any(m in ("stretch", "pitch") for m, _ in self.plan())


def rng_for(seed: int, wav_id: str, method: str, copy: int) -> np.random.Generator:
    """A generator that depends only on (seed, wav_id, method, copy): stable across runs, workers and platforms."""
    digest = hashlib.sha256(f"{seed}\x1f{wav_id}\x1f{method}\x1f{copy}".encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def apply(wave: np.ndarray, sample_rate: int, method: str, spec: AugmentSpec, rng: np.random.Generator) -> np.ndarray:
    """One augmented float32 copy of `wave`."""
    wave = np.asarray(wave, dtype=np.float32)
    if method == "noise":
        amp = spec.noise_amp * rng.uniform() * float(np.max(np.abs(wave)))
        return (wave + amp * rng.standard_normal(len(wave))).astype(np.float32)
    import librosa

    if method == "stretch":
        return librosa.effects.time_stretch(wave, rate=spec.stretch_rate).astype(np.float32)
    if method == "pitch":
        return librosa.effects.pitch_shift(wave, sr=sample_rate, n_steps=spec.pitch_steps).astype(np.float32)
    raise ValueError(f"unknown augmentation method {method!r}")
