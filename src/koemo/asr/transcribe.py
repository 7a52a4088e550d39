"""Batched Whisper transcription: length-sorted batches, the GPU when present (fp16), `language` forced.

Clips are sorted by length so a batch's transcripts end together (a batch decodes until its longest output ends)
and each is padded/cropped to the model's window by its feature extractor, as Whisper was trained; a clip longer
than the window is transcribed from its first window only (counted as `cropped`). Greedy decoding (or beams) with
a fixed token budget: the same clips give the same transcripts on CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from koemo.core.device import resolve_device


@dataclass
class TranscribeStats:
    clips: int = 0
    cropped: int = 0          # longer than the model's window: only its first window was heard
    at_token_limit: int = 0   # ended by max_new_tokens rather than by the model (possibly cut short)
    seconds_audio: float = 0.0
    wall: float = 0.0
    batches: int = 0
    extra: dict = field(default_factory=dict)


def _dtype(device):
    import torch

    return torch.float16 if device.type == "cuda" else torch.float32


def transcribe(recognizer, waves: Sequence[np.ndarray], batch_size: int = 16, max_new_tokens: int = 48,
               num_beams: int = 1, device=None, stats: TranscribeStats | None = None, progress=None) -> list[str]:
    """One transcript per wave (mono float32 at `recognizer.sample_rate`), in input order."""
    from transformers.utils import logging as hf_logging

    # a "max_new_tokens and max_length both set" warning per batch buries the progress: quiet transformers while
    # decoding, and give the process its verbosity back after (other loads' reports must still show)
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return _transcribe(recognizer, waves, batch_size, max_new_tokens, num_beams, device, stats, progress)
    finally:
        hf_logging.set_verbosity(previous)


def _transcribe(recognizer, waves, batch_size, max_new_tokens, num_beams, device, stats, progress) -> list[str]:
    import torch

    device = device if device is not None else resolve_device()
    stats = stats if stats is not None else TranscribeStats()
    model = recognizer.model.to(device=device, dtype=_dtype(device)).eval()
    window = int(recognizer.features.n_samples)
    out: list[str] = [""] * len(waves)
    order = np.argsort(-np.asarray([len(w) for w in waves], dtype=np.int64), kind="stable")
    eos = model.generation_config.eos_token_id
    started = time.perf_counter()
    for start in range(0, len(order), max(1, int(batch_size))):
        batch = order[start:start + batch_size]
        clips = [np.asarray(waves[i][:window], dtype=np.float32) for i in batch]
        stats.cropped += sum(len(waves[i]) > window for i in batch)
        stats.seconds_audio += sum(len(waves[i]) for i in batch) / recognizer.sample_rate
        inputs = recognizer.features(clips, sampling_rate=recognizer.sample_rate, return_tensors="pt",
                                     return_attention_mask=True)
        with torch.inference_mode():
            ids = model.generate(inputs.input_features.to(device=device, dtype=_dtype(device)),
                                 attention_mask=inputs.attention_mask.to(device), language=recognizer.language,
                                 task="transcribe", max_new_tokens=int(max_new_tokens), num_beams=int(num_beams))
        ids = ids.cpu()
        lengths = (ids != eos).sum(dim=1) if eos is not None else torch.full((len(ids),), ids.shape[1])
        stats.at_token_limit += int((lengths >= int(max_new_tokens)).sum())
        for i, text in zip(batch, recognizer.tokenizer.batch_decode(ids, skip_special_tokens=True)):
            out[int(i)] = " ".join(text.split())
        stats.batches += 1
        stats.clips += len(batch)
        if progress is not None:
            progress.update(len(batch))
    stats.wall += time.perf_counter() - started
    return out


BLOCK_CLIPS = 512  # clips decoded at a time: memory stays flat whatever the corpus size


def transcribe_labels(recognizer, labels, batch_size: int, max_new_tokens: int, num_beams: int = 1, device=None,
                      workers: int = 2, min_rms_dbfs: float | None = None, progress: bool = True):
    """A transcript per labels row (labels order), its metrics against the corpus transcript, and runtime figures.

    Returns (frame `wav_id, text, asr_failure`, metrics, runtime). A clip that cannot be decoded (or is silent,
    `audio.min_rms_dbfs`) gets an empty transcript and its reason in `asr_failure`: counted, never dropped."""
    import pandas as pd

    from koemo.asr.scoring import error_rates
    from koemo.clips.decode import decode_clips, reject_silent
    from koemo.core.device import describe
    from koemo.core.progress import Progress

    device = device if device is not None else resolve_device()
    paths = labels["wav_path"].astype(str).tolist()
    texts = [""] * len(paths)
    failures = [""] * len(paths)
    stats = TranscribeStats()
    with Progress(len(paths), f"transcribe ({recognizer.name})", unit="clip", disable=not progress) as bar:
        for start in range(0, len(paths), BLOCK_CLIPS):
            block = range(start, min(start + BLOCK_CLIPS, len(paths)))
            clips = [reject_silent(c, min_rms_dbfs) for c in decode_clips([paths[i] for i in block], recognizer.sample_rate, workers)]
            usable = [i for i, c in zip(block, clips) if c.wave is not None]
            for i, clip in zip(block, clips):
                if clip.wave is None:
                    failures[i] = clip.reason
                    bar.update(1)
            waves = [clips[i - start].wave for i in usable]
            for i, text in zip(usable, transcribe(recognizer, waves, batch_size, max_new_tokens, num_beams, device, stats,
                                                  progress=bar)):
                texts[i] = text
    frame = pd.DataFrame({"wav_id": labels["wav_id"].astype(str).to_numpy(), "text": texts, "asr_failure": failures})
    test = (labels["split"] == "test").to_numpy()
    gold = labels["text"].astype(str).tolist()
    failed = pd.Series([f for f in failures if f]).value_counts()
    metrics = {
        "asr": recognizer.name,
        "source": recognizer.source,
        "architecture": recognizer.architecture,
        "language": recognizer.language,
        "window_seconds": recognizer.window_seconds,
        "rows": len(frame),
        "transcribed": stats.clips,
        "failed": int(failed.sum()) if len(failed) else 0,
        "failed_by_reason": {str(k): int(v) for k, v in failed.items()},
        "cropped_to_window": stats.cropped,
        "at_token_limit": stats.at_token_limit,
        "empty_transcripts": int(sum(not t for t in texts)),
        "decoding": {"max_new_tokens": int(max_new_tokens), "num_beams": int(num_beams)},
        # against the corpus transcript: the test rows are the headline, all rows for scale
        "test": error_rates([g for g, t in zip(gold, test) if t], [h for h, t in zip(texts, test) if t]),
        "all": error_rates(gold, texts),
    }
    if recognizer.source == "local-tiny":
        metrics["note"] = ("local-tiny is a random-init stand-in, not a speech recognizer: its transcripts are noise "
                           "and its CER/WER say nothing about Whisper")
    hours = stats.seconds_audio / 3600
    runtime = {"seconds": stats.wall, "audio_hours": hours,
               "audio_hours_per_second": hours / stats.wall if stats.wall > 0 else None,
               "x_real_time": stats.seconds_audio / stats.wall if stats.wall > 0 else None,
               "batches": stats.batches, "device": describe(device), "dtype": str(_dtype(device)).replace("torch.", "")}
    return frame, metrics, runtime
