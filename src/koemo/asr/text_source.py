"""`text.source`: which text every text model reads — the corpus' own transcript, or an ASR model's transcript.

The text_source stage writes `data/texts.parquet` (wav_id, text, source) once; text_embeddings and the text
models replace the labels' `text` column with it (`apply_texts`). With `text.source: transcript` the file holds
the corpus text whatever the ASR transcripts are, so a new ASR run changes no byte of it and DVC reruns no text
model; `-S text.source=asr` changes it, and DVC reruns exactly the text side. The split, the labels and the
tokenizers of the tiny encoders (trained on the corpus text of the training split) never depend on it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from koemo.core.errors import UserError

TEXT_SOURCES = ("transcript", "asr")


def build_texts(labels: pd.DataFrame, source: str, transcripts: pd.DataFrame | None, asr_name: str | None):
    """(frame `wav_id, text, source` in labels order, metrics). `transcripts` (wav_id, text, asr_failure) is read
    only for source `asr`; every labels row must have one."""
    if source not in TEXT_SOURCES:
        raise UserError(f"text.source = {source!r}: expected one of {TEXT_SOURCES}")
    wav_ids = labels["wav_id"].astype(str)
    gold = labels["text"].astype(str).to_numpy()
    if source == "transcript":
        text, label = gold, "transcript"
    else:
        by_id = transcripts.set_index(transcripts["wav_id"].astype(str))
        missing = wav_ids[~wav_ids.isin(by_id.index)]
        if len(missing):
            raise UserError(f"the transcripts of asr.model {asr_name} lack {len(missing)} labels rows (e.g. "
                            f"{missing.iloc[0]}): they are from another labels table; run `dvc repro transcribe@{asr_name}`")
        text, label = by_id.loc[wav_ids, "text"].astype(str).to_numpy(), f"asr:{asr_name}"
    frame = pd.DataFrame({"wav_id": wav_ids.to_numpy(), "text": text, "source": label})
    metrics = {"source": label, "rows": len(frame), "rows_differing_from_transcript": int((text != gold).sum()),
               "empty": int(sum(not str(t).strip() for t in text))}
    return frame, metrics


TEXTS_ARG = ("--texts", "the text_source stage's table (text.source's text); default: the labels' text", False)


def texts_argument(parser):
    """`--texts FILE`: the text_source stage's table, which a text stage reads instead of the labels' text."""
    flag, help_, _ = TEXTS_ARG
    parser.add_argument(flag, type=Path, help=help_)
    return parser


def apply_texts(labels: pd.DataFrame, texts_path: str | Path | None) -> pd.DataFrame:
    """`labels` with its `text` column replaced by the text_source stage's (same rows, same order required)."""
    if texts_path is None:
        return labels
    if not Path(texts_path).is_file():
        raise UserError(f"{texts_path} is missing (the text_source stage's output, the text.source text): "
                        "run `dvc repro text_source`")
    texts = pd.read_parquet(texts_path, columns=["wav_id", "text"])
    if len(texts) != len(labels) or (texts["wav_id"].astype(str).to_numpy() != labels["wav_id"].astype(str).to_numpy()).any():
        raise UserError(f"{texts_path} does not list the labels rows in order ({len(texts)} rows vs {len(labels)}): "
                        "it is from another labels table; run `dvc repro text_source`")
    out = labels.copy()
    out["text"] = texts["text"].astype(str).to_numpy()
    return out
