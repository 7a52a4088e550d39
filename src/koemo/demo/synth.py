"""Write the demo corpus exactly as an AI Hub release looks on disk: a cp949 CSV plus `wav/{wav_id}.wav`.

The corpus stage then reads it through the very same reader as the real data. The directory is
written as a whole with `koemo.core.io.atomic_dir`; every wav depends only on its own plan row, so the
output is byte-identical for a seed whatever the number of workers.
"""

from __future__ import annotations

import csv
import io
import math
import multiprocessing
import wave
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from tqdm import tqdm

from koemo.core.io import atomic_dir
from koemo.corpus.emotions import EMOTIONS
from koemo.demo.annotators import RATER_SPELLING
from koemo.demo.plan import Utterance, plan_corpus
from koemo.demo.tts import ESPEAK_RATE, speak

HEADERS = ("wav_id", "발화문", "상황", "1번 감정", "1번 감정세기", "2번 감정", "2번 감정세기", "3번 감정", "3번 감정세기",
           "4번 감정", "4번 감정세기", "5번 감정", "5번 감정세기", "나이", "성별")
CSV_NAME = "demo.csv"
WAV_DIR = "wav"


def render(utterance: Utterance, sample_rate: int) -> np.ndarray:
    """int16 audio: the synthesised speech with a little silence around it and a quiet noise floor."""
    speech = speak(utterance.text, utterance.prosody).astype(np.float64)
    rng = np.random.default_rng(utterance.noise_seed)
    lead = np.zeros(int(rng.uniform(0.15, 0.4) * ESPEAK_RATE))
    tail = np.zeros(int(rng.uniform(0.2, 0.5) * ESPEAK_RATE))
    audio = np.concatenate([lead, speech, tail])
    if sample_rate != ESPEAK_RATE:
        from scipy.signal import resample_poly

        g = math.gcd(sample_rate, ESPEAK_RATE)
        audio = resample_poly(audio, sample_rate // g, ESPEAK_RATE // g)
    noise_dbfs = rng.uniform(-62, -50)
    audio = audio + rng.standard_normal(len(audio)) * 32768 * 10 ** (noise_dbfs / 20)
    return np.clip(np.round(audio), -32768, 32767).astype("<i2")


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM mono with a plain RIFF header (no timestamps: reruns are byte-identical)."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def _render_chunk(utterances: list[Utterance], sample_rate: int, wav_dir: str) -> list[int]:
    """Render and write a chunk of wavs; returns their lengths in samples (runs in workers too)."""
    lengths = []
    for utterance in utterances:
        samples = render(utterance, sample_rate)
        write_wav(Path(wav_dir) / f"{utterance.wav_id}.wav", samples, sample_rate)
        lengths.append(len(samples))
    return lengths


def csv_bytes(plan: list[Utterance]) -> bytes:
    """The release CSV in cp949 with the 15 real headers and capitalised rater emotions."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADERS)
    for u in plan:
        row = [u.wav_id, u.text, u.situation]
        for emotion, intensity in u.ratings:
            row += [RATER_SPELLING[emotion], intensity]
        writer.writerow(row + [u.speaker.age, u.speaker.gender])
    return buffer.getvalue().encode("cp949")


def _synthesise(plan: list[Utterance], sample_rate: int, wav_dir: Path, workers: int) -> dict[str, int]:
    lengths: dict[str, int] = {}
    progress = tqdm(total=len(plan), desc="demo: synthesising speech", unit="utt")
    if workers <= 1:
        for u in plan:
            lengths[u.wav_id] = _render_chunk([u], sample_rate, str(wav_dir))[0]
            progress.update(1)
    else:
        # Fresh interpreters (spawn): no libespeak-ng inherited from the parent, whatever it loaded.
        size = max(1, min(50, math.ceil(len(plan) / (workers * 4))))
        chunks = [plan[i:i + size] for i in range(0, len(plan), size)]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(_render_chunk, chunk, sample_rate, str(wav_dir)): chunk for chunk in chunks}
            for future in as_completed(futures):
                for u, n in zip(futures[future], future.result()):
                    lengths[u.wav_id] = n
                progress.update(len(futures[future]))
    progress.close()
    return lengths


def summarize(plan: list[Utterance], lengths: dict[str, int], sample_rate: int) -> dict:
    """Deterministic facts about the corpus (for metrics/demo.json)."""
    seconds = [lengths[u.wav_id] / sample_rate for u in plan]
    intended = Counter(u.intended for u in plan)
    named_intended = sum(e == u.intended for u in plan for e, _ in u.ratings)
    speakers = sorted({u.speaker for u in plan}, key=lambda s: s.id)
    return {
        "utterances": len(plan),
        "distinct_sentences": len({u.text for u in plan}),
        "text_cue_utterances": sum(u.text_cue for u in plan),
        "intended_counts": {e: intended.get(e, 0) for e in EMOTIONS},
        "speakers": len(speakers),
        "speaker_profiles": [{"voice": s.voice, "gender": s.gender, "age": s.age} for s in speakers],
        "total_audio_seconds": sum(seconds),
        "mean_duration_seconds": float(np.mean(seconds)),
        "sample_rate": sample_rate,
        "raters_naming_intended_share": named_intended / (5 * len(plan)),
        "situation_equals_intended_share": sum(u.situation == u.intended for u in plan) / len(plan),
    }


def readme_text(summary: dict, seed: int) -> str:
    return (
        "# Demo corpus (synthetic)\n\n"
        "Generated by `python stages/demo.py` (koemo.demo) — not AI Hub data. Korean sentences written for\n"
        "this project, spoken by espeak-ng's Korean voice with emotion-dependent prosody, rated by five\n"
        "simulated annotators. Same layout as an AI Hub release: `demo.csv` (cp949, the 15 real headers)\n"
        f"and `wav/{{wav_id}}.wav` (16-bit PCM mono, {summary['sample_rate']} Hz).\n\n"
        f"seed {seed}: {summary['utterances']} utterances, {summary['distinct_sentences']} distinct sentences, "
        f"{summary['speakers']} speakers, {summary['total_audio_seconds']:.1f} s of audio.\n"
    )


def build_demo_corpus(out_dir, size: int, seed: int, sample_rate: int = ESPEAK_RATE, speakers: int = 6,
                      annotator_noise: float = 0.25, text_cue_strength: float = 0.75, workers: int = 1) -> dict:
    """Synthesise the demo corpus into `out_dir` (replaced as a whole) and return its summary."""
    if not 8000 <= int(sample_rate) <= 96000:
        raise ValueError(f"demo.sample_rate={sample_rate}: use a rate between 8000 and 96000 Hz (espeak-ng's own is {ESPEAK_RATE})")
    sample_rate = int(sample_rate)
    plan = plan_corpus(size, seed, speakers, annotator_noise, text_cue_strength)
    with atomic_dir(out_dir) as tmp:
        (tmp / CSV_NAME).write_bytes(csv_bytes(plan))
        wav_dir = tmp / WAV_DIR
        wav_dir.mkdir()
        lengths = _synthesise(plan, sample_rate, wav_dir, int(workers))
        summary = summarize(plan, lengths, sample_rate)
        (tmp / "README.md").write_text(readme_text(summary, seed), encoding="utf-8")
    return summary


def write_disabled(out_dir, source: str) -> None:
    """With data.source other than demo the stage only leaves this note (a cheap no-op)."""
    with atomic_dir(out_dir) as tmp:
        (tmp / "README.md").write_text(
            "# Demo corpus disabled\n\n"
            f"data.source is {source!r}, so no demo corpus was synthesised. Set data.source: demo in\n"
            "params.yaml (or `dvc exp run -S data.source=demo`) to generate it.\n",
            encoding="utf-8",
        )
