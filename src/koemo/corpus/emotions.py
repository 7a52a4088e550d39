"""The seven rater emotions of the AI Hub dataset and the spelling normalisation applied to them."""

from __future__ import annotations

import re

EMOTIONS = ("angry", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")

# Spellings seen in the releases (상황 uses anger/sad in 4차년도) and common typos.
_ALIASES = {
    "anger": "angry",
    "sad": "sadness",
    "happines": "happiness",
    "happy": "happiness",
    "disgusted": "disgust",
    "fearful": "fear",
    "surprised": "surprise",
    "surprize": "surprise",
}
_STRIP = re.compile(r"^[\s\W_]+|[\s\W_]+$", re.UNICODE)


def normalize_emotion(value: object) -> str | None:
    """Lower-case, strip surrounding spaces/punctuation, map aliases. Unknown or empty → None."""
    if value is None:
        return None
    text = _STRIP.sub("", str(value)).lower()
    text = _ALIASES.get(text, text)
    return text if text in EMOTIONS else None
