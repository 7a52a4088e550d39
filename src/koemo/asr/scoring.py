"""Character and word error rates of transcripts against reference text, corpus-level (errors ÷ reference length).

Korean CER is computed on characters with spaces removed (spacing in Korean is inconsistent, and a spacing
slip is not a recognition error); WER on whitespace-separated words (어절). Both normalise the same way first:
Unicode NFC, punctuation dropped, case folded, whitespace collapsed.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", str(text)).casefold()
    return " ".join(_PUNCT.sub(" ", text).split())


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions each 1)."""
    if len(ref) < len(hyp):
        ref, hyp = hyp, ref
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> dict:
    """{cer, wer, ref_chars, ref_words, rows, exact}: corpus-level rates (can exceed 1 when the output is longer)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} transcripts")
    char_errors = word_errors = chars = words = exact = 0
    for ref, hyp in zip(references, hypotheses):
        ref, hyp = normalise(ref), normalise(hyp)
        char_errors += edit_distance(ref.replace(" ", ""), hyp.replace(" ", ""))
        word_errors += edit_distance(ref.split(), hyp.split())
        chars += len(ref.replace(" ", ""))
        words += len(ref.split())
        exact += ref == hyp
    return {"rows": len(references), "cer": char_errors / chars if chars else None,
            "wer": word_errors / words if words else None, "ref_chars": chars, "ref_words": words, "exact": exact}
