"""Speech-like test signals (a few harmonics of a wobbling pitch, plus noise), shared by tests and benchmarks."""

from __future__ import annotations

import numpy as np


def speech_like(rng: np.random.Generator, samples: int, rate: int, harmonics: int, noise: float) -> np.ndarray:
    """One float32 clip of `samples` samples; draws from `rng` in a fixed order, so a seed gives the same clip."""
    t = np.arange(samples) / rate
    f0 = rng.uniform(100, 250) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(1, 4) * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    wave = sum(np.sin(k * phase) / k for k in range(1, harmonics + 1)) + noise * rng.standard_normal(samples)
    return (0.3 * wave).astype(np.float32)
