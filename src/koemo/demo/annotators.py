"""Five simulated raters and the 상황 column, disagreeing the way the real annotators do.

A rater names the intended emotion, or with probability `noise` (varied per utterance: some
recordings are harder) a plausibly confusable one. Neutral is always rated intensity 0, as in the
real data; a rater who deviates usually rates weakly, and weaker still when the speaker meant
neutral — otherwise the `weighted` rule (neutral sums to 0) would leave almost no neutral rows.
"""

from __future__ import annotations

import numpy as np

# Spellings as in the real CSVs.
RATER_SPELLING = {
    "angry": "Angry", "disgust": "Disgust", "fear": "Fear", "happiness": "Happiness",
    "neutral": "Neutral", "sadness": "Sadness", "surprise": "Surprise",
}

# intended emotion → {confusable emotion: weight}
CONFUSIONS: dict[str, dict[str, float]] = {
    "angry": {"disgust": 0.45, "neutral": 0.2, "surprise": 0.15, "sadness": 0.1, "fear": 0.1},
    "disgust": {"angry": 0.5, "neutral": 0.25, "sadness": 0.15, "surprise": 0.1},
    "fear": {"surprise": 0.35, "sadness": 0.35, "neutral": 0.2, "angry": 0.1},
    "surprise": {"fear": 0.3, "happiness": 0.35, "neutral": 0.25, "angry": 0.1},
    "sadness": {"neutral": 0.45, "fear": 0.25, "disgust": 0.15, "angry": 0.15},
    "happiness": {"surprise": 0.45, "neutral": 0.45, "sadness": 0.1},
    "neutral": {"sadness": 0.3, "happiness": 0.25, "angry": 0.12, "disgust": 0.13, "surprise": 0.12, "fear": 0.08},
}

# P(intensity = 0, 1, 2)
INTENSITY_INTENDED = (0.05, 0.45, 0.50)
INTENSITY_DEVIATING = (0.30, 0.55, 0.15)
INTENSITY_DEVIATING_FROM_NEUTRAL = (0.60, 0.35, 0.05)

# Chance the 상황 column names the intended emotion; the rest is a confusable one. Tuned so 상황
# agrees with the rater majority about as often as in the real release (~68 %).
SITUATION_AGREEMENT = 0.71


def _confusable(intended: str, rng: np.random.Generator) -> str:
    options = CONFUSIONS[intended]
    names = list(options)
    weights = np.asarray([options[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def rate(intended: str, noise: float, rng: np.random.Generator, raters: int = 5) -> list[tuple[str, int]]:
    """(emotion, intensity) per rater, emotions in lower case."""
    noise_here = float(np.clip(noise * rng.uniform(0.5, 1.5), 0.0, 0.95))
    ratings = []
    for _ in range(raters):
        if rng.random() >= noise_here:
            emotion, probs = intended, INTENSITY_INTENDED
        else:
            emotion = _confusable(intended, rng)
            probs = INTENSITY_DEVIATING_FROM_NEUTRAL if intended == "neutral" else INTENSITY_DEVIATING
        intensity = 0 if emotion == "neutral" else int(rng.choice(3, p=probs))
        ratings.append((emotion, intensity))
    return ratings


def situation(intended: str, rng: np.random.Generator) -> str:
    """The 상황 column (5차 spelling, lower case)."""
    return intended if rng.random() < SITUATION_AGREEMENT else _confusable(intended, rng)
