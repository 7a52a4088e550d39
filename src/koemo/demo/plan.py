"""The demo corpus as a script: who says what, meaning which emotion, and how the raters heard it.

Everything random is drawn here from the seed, before any audio exists, so the text side can be
inspected (and tested) without synthesis and every utterance's audio depends only on its own row.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

import numpy as np

from koemo.corpus.emotions import EMOTIONS
from koemo.demo import annotators
from koemo.demo.prosody import Prosody, Speaker, emotion_prosody, make_speakers
from koemo.demo.sentences import AMBIGUOUS, SentenceSource

# Intended-emotion shares, chosen so that after rating, the `weighted` rule and the 4-class filter
# (angry, happiness, neutral, sadness) the classes are moderately imbalanced, each well above 12 %.
# Neutral is over-planned because raters who deviate from it push it out under `weighted`.
INTENDED_SHARE = {
    "happiness": 0.19,
    "neutral": 0.26,
    "sadness": 0.16,
    "angry": 0.13,
    "disgust": 0.09,
    "surprise": 0.09,
    "fear": 0.08,
}
assert set(INTENDED_SHARE) == set(EMOTIONS) and abs(sum(INTENDED_SHARE.values()) - 1) < 1e-9


@dataclass(frozen=True)
class Utterance:
    index: int
    wav_id: str
    text: str
    intended: str
    text_cue: bool                     # wording reveals the emotion (else emotion-neutral wording)
    situation: str
    ratings: tuple[tuple[str, int], ...]
    speaker: Speaker
    prosody: Prosody
    noise_seed: int                    # background noise and padding of this utterance's audio


def _rng(seed: int, part: str) -> np.random.Generator:
    """An independent stream per part, so changing one part's draws leaves the others alone."""
    return np.random.default_rng([seed, zlib.crc32(part.encode())])


def wav_id(seed: int, index: int) -> str:
    """24 lower-case hex characters, like the real ids, fixed by (seed, index)."""
    return hashlib.sha256(f"koemo-demo:{seed}:{index}".encode()).hexdigest()[:24]


def quotas(size: int, shares: dict[str, float]) -> dict[str, int]:
    """Exact counts summing to `size` (largest remainder), so class counts do not wobble with the seed."""
    raw = {k: size * v for k, v in shares.items()}
    counts = {k: int(np.floor(v)) for k, v in raw.items()}
    by_remainder = sorted(shares, key=lambda k: (-(raw[k] - counts[k]), k))
    for k in by_remainder[: size - sum(counts.values())]:
        counts[k] += 1
    return counts


def plan_corpus(size: int, seed: int, speakers: int = 6, annotator_noise: float = 0.25,
                text_cue_strength: float = 0.75) -> list[Utterance]:
    if size < 1:
        raise ValueError(f"demo.size={size}: need at least one utterance")
    if not 0.0 <= annotator_noise <= 1.0:
        raise ValueError(f"demo.annotator_noise={annotator_noise}: must be within 0..1")
    if not 0.0 <= text_cue_strength <= 1.0:
        raise ValueError(f"demo.text_cue_strength={text_cue_strength}: must be within 0..1")
    voices = make_speakers(speakers, _rng(seed, "speakers"))
    counts = quotas(size, INTENDED_SHARE)
    intended = [e for e in EMOTIONS for _ in range(counts[e])]
    _rng(seed, "order").shuffle(intended)

    text_rng, rater_rng, voice_rng = _rng(seed, "text"), _rng(seed, "raters"), _rng(seed, "voice")
    sentences = SentenceSource(text_rng)
    plan = []
    for index, emotion in enumerate(intended):
        cue = bool(text_rng.random() < text_cue_strength)
        text = sentences.next(emotion if cue else AMBIGUOUS)
        speaker = voices[int(voice_rng.integers(len(voices)))]
        expressiveness = float(voice_rng.uniform(0.45, 1.25))
        plan.append(Utterance(
            index=index,
            wav_id=wav_id(seed, index),
            text=text,
            intended=emotion,
            text_cue=cue,
            situation=annotators.situation(emotion, rater_rng),
            ratings=tuple(annotators.rate(emotion, annotator_noise, rater_rng)),
            speaker=speaker,
            prosody=emotion_prosody(speaker, emotion, expressiveness, voice_rng),
            noise_seed=int(voice_rng.integers(2**31)),
        ))
    if len({u.wav_id for u in plan}) != len(plan):
        raise RuntimeError("wav_id collision in the demo plan; change demo.seed")
    return plan
