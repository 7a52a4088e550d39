"""`koemo predict`'s inputs: an `Utterance` (a wav and/or a text), whether a value was given at all, and why no model
can use an utterance — checked before any model is loaded, so a typo costs no load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from koemo.core.errors import UserError


class PredictError(UserError):
    """Artefacts missing or stale, or an input that cannot be used; the message says what to do. Here, not in
    `predictor`, so `koemo predict` refuses a bad argument before it imports torch and the models."""


@dataclass
class Utterance:
    wav: str | None = None   # path to a wav (any rate, any channel count)
    text: str | None = None  # its transcript


def given_value(value: str | None) -> str | None:
    """The input, or None when it is absent or only whitespace (no model can use a blank text or path)."""
    return value if value is not None and str(value).strip() else None


def input_problem(utterance: Utterance) -> str | None:
    """Why no model can use this utterance, or None; checked before any model is loaded, so a typo costs no load."""
    wav, text = given_value(utterance.wav), given_value(utterance.text)
    if wav is None and text is None:
        return "neither a wav nor a text"
    if wav is not None and Path(wav).is_dir():
        return f"{wav} is a directory, not a wav file"
    return None
