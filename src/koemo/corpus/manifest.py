"""The manifest contract: what every corpus reader (AI Hub, KEMDy, the demo) writes and the labels stage reads.

One row per kept utterance with `MANIFEST_COLUMNS` (five annotators' emotion + intensity, whatever the source), and
one drop-list row per refused CSV row with its reason (`DROP_REASONS`). The readers live beside it (`aihub`,
`kemdy`); the labels stage and `koemo predict` import only this module, so an edit to a CSV reader reruns the corpus
stage, not `labels`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from koemo.corpus.emotions import normalize_emotion

N_ANNOTATORS = 5
DROP_REASONS = (
    "empty_wav_id",
    "empty_text",
    "no_hangul",
    "unknown_emotion",
    "bad_intensity",
    "too_few_fields",
    "duplicate_wav_id",
    "missing_wav",
    "unreadable_wav",
)
MANIFEST_COLUMNS = (["wav_id", "text", "situation", "release", "source_file", "source_row", "wav_path"]
                    + [f"emotion_{i}" for i in range(1, N_ANNOTATORS + 1)]
                    + [f"intensity_{i}" for i in range(1, N_ANNOTATORS + 1)]
                    + ["age", "gender", "sample_rate", "duration_s"])
DROPPED_COLUMNS = ["source_file", "source_row", "wav_id", "reason", "detail"]
_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")


@dataclass
class ReadResult:
    manifest: pd.DataFrame
    dropped: pd.DataFrame
    files: list[dict] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(f["rows"] for f in self.files)


def has_hangul(text: str) -> bool:
    """Whether `text` holds a Hangul syllable or jamo. A text without any (emoji, English, digits) is nothing a
    Korean model can read: its tokens are [UNK] or foreign sub-words, and any answer for it would be noise."""
    return bool(_HANGUL.search(str(text)))


def finish_manifest(frame: pd.DataFrame) -> pd.DataFrame:
    """The kept rows as the manifest: emotions normalised, intensities and ages typed, MANIFEST_COLUMNS in order,
    sorted by wav_id (the reader's row order never reaches the labels)."""
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in MANIFEST_COLUMNS})
    for i in range(1, N_ANNOTATORS + 1):
        frame[f"emotion_{i}"] = frame[f"emotion_{i}"].map(normalize_emotion)
        frame[f"intensity_{i}"] = frame[f"intensity_{i}"].astype(float).astype("int64")
    frame["situation"] = frame["situation"].map(normalize_emotion)
    frame["age"] = pd.to_numeric(frame["age"], errors="coerce").round().astype("Int64")
    frame["source_row"] = frame["source_row"].astype("int64")
    return frame[MANIFEST_COLUMNS].sort_values("wav_id", kind="stable").reset_index(drop=True)


def summarize(result: ReadResult, source: str) -> dict:
    """The corpus stage's metrics: what was read, kept and dropped (by reason), per file and release."""
    manifest = result.manifest
    reasons = Counter(result.dropped["reason"])
    return {
        "source": source,
        "files": result.files,
        "rows_read": result.rows_read,
        "rows_kept": len(manifest),
        "rows_dropped": len(result.dropped),
        "dropped_by_reason": {reason: reasons.get(reason, 0) for reason in DROP_REASONS},
        "kept_by_release": manifest.groupby("release").size().to_dict() if len(manifest) else {},
        "distinct_texts": int(manifest["text"].nunique()) if len(manifest) else 0,
        "audio_hours": float(manifest["duration_s"].sum() / 3600) if len(manifest) else 0.0,
        "sample_rates": {str(k): int(v) for k, v in manifest["sample_rate"].value_counts().sort_index().items()},
        "age_missing": int(manifest["age"].isna().sum()) if len(manifest) else 0,
    }
