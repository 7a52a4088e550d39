"""Synthetic speakers and emotion-dependent prosody for espeak-ng.

Each emotion shifts the speaker's rate, pitch, pitch range, volume and word gap (angry fast, loud and
wide; sadness slow, low, narrow and quiet; ...). Per utterance the shift is scaled by a random
expressiveness and jittered, so audio alone recovers emotion only partly — as with real actors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# espeak-ng voice variants (espeak-ng-data/voices/!v). Variants with `breath` (f2, f3, f5, ...) add
# noise from a generator seeded by the clock, so they differ from one second to the next; m8 is
# near-whispered. tests/test_demo.py checks every variant listed here is reproducible.
FEMALE_VARIANTS = ("f1", "f4", "belinda", "linda", "steph", "aunty")
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")


@dataclass(frozen=True)
class Speaker:
    id: int
    gender: str      # 남성 | 여성, as in the 성별 column
    age: int         # 나이
    variant: str     # espeak voice variant
    rate: float      # words per minute
    pitch: float     # espeak pitch 0-99
    range: float     # espeak pitch range 0-99

    @property
    def voice(self) -> str:
        return f"ko+{self.variant}"


@dataclass(frozen=True)
class Prosody:
    voice: str
    rate: int        # espeakRATE, words per minute (80-450)
    pitch: int       # espeakPITCH 0-99
    range: int       # espeakRANGE 0-99
    volume: int      # espeakVOLUME 0-200 (100 = normal); capped at 170 to avoid clipping
    wordgap: int     # espeakWORDGAP, extra pause between words in 10 ms units


@dataclass(frozen=True)
class EmotionShift:
    rate: float      # multiplier
    pitch: float     # added
    range: float     # multiplier
    volume: float    # multiplier of 100
    wordgap: float   # added


EMOTION_SHIFT = {
    "neutral": EmotionShift(rate=1.00, pitch=0, range=1.0, volume=1.00, wordgap=0),
    "angry": EmotionShift(rate=1.18, pitch=5, range=1.6, volume=1.60, wordgap=0),
    "happiness": EmotionShift(rate=1.10, pitch=14, range=1.7, volume=1.25, wordgap=0),
    "sadness": EmotionShift(rate=0.72, pitch=-12, range=0.4, volume=0.55, wordgap=3),
    "fear": EmotionShift(rate=1.22, pitch=16, range=0.5, volume=0.80, wordgap=0),
    "surprise": EmotionShift(rate=1.00, pitch=18, range=2.1, volume=1.30, wordgap=0),
    "disgust": EmotionShift(rate=0.80, pitch=-8, range=0.8, volume=0.90, wordgap=2),
}


def make_speakers(n: int, rng: np.random.Generator) -> list[Speaker]:
    """`n` speakers alternating gender, each with a distinct (age, gender) pair — the only speaker hint in the data."""
    if n < 1:
        raise ValueError(f"demo.speakers={n}: need at least one speaker")
    speakers: list[Speaker] = []
    taken: set[tuple[int, str]] = set()
    first_female = bool(rng.integers(2))
    for i in range(n):
        female = (i % 2 == 0) == first_female
        gender = "여성" if female else "남성"
        age = int(rng.integers(20, 61))
        while (age, gender) in taken:
            age = 20 + (age - 20 + 1) % 41
            if len(taken) >= 82:  # every (age, gender) pair is in use: allow sharing
                break
        taken.add((age, gender))
        variants = FEMALE_VARIANTS if female else MALE_VARIANTS
        speakers.append(Speaker(
            id=i, gender=gender, age=age, variant=variants[(i // 2) % len(variants)],
            rate=float(rng.uniform(155, 185)),
            pitch=float(rng.uniform(52, 66) if female else rng.uniform(32, 46)),
            range=float(rng.uniform(42, 58)),
        ))
    return speakers


def emotion_prosody(speaker: Speaker, emotion: str, expressiveness: float = 1.0,
                    rng: np.random.Generator | None = None) -> Prosody:
    """The speaker's voice shifted toward `emotion` (scaled by expressiveness), jittered when rng is given."""
    shift = EMOTION_SHIFT[emotion]
    e = expressiveness
    rate = speaker.rate * shift.rate**e
    pitch = speaker.pitch + shift.pitch * e
    rng_ = speaker.range * shift.range**e
    volume = 100 * shift.volume**e
    wordgap = shift.wordgap * e
    if rng is not None:
        rate *= float(np.exp(rng.normal(0, 0.07)))
        pitch += float(rng.normal(0, 4))
        rng_ += float(rng.normal(0, 6))
        volume *= float(np.exp(rng.normal(0, 0.12)))
        wordgap += float(rng.normal(0, 0.5))
    return Prosody(
        voice=speaker.voice,
        rate=int(np.clip(round(rate), 80, 450)),
        pitch=int(np.clip(round(pitch), 0, 99)),
        range=int(np.clip(round(rng_), 0, 99)),
        volume=int(np.clip(round(volume), 20, 170)),
        wordgap=int(np.clip(round(wordgap), 0, 10)),
    )
