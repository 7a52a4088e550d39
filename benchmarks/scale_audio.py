"""Is `make scale`'s audio as costly per clip as real speech? The audio_features pass (mel + melmean from one decode,
augmentation on, as the stage runs it) on three clip sets of the same N and the same clip lengths, in one run:

- `scale`: benchmarks/scale.py's release clips (the demo synthesiser, neutral delivery, fit to lengths drawn like the
  real ones: lognormal, median 3.9 s, 1-16 s; 48 kHz 16-bit);
- `emotional`: the same sentences and lengths spoken with the demo's emotional prosody (the demo corpus' delivery);
- `harmonic`: non-speech voice-like tones (benchmarks/audio_features.py's generator) of the same lengths — what a
  synthetic-tone benchmark would have measured.

CPU seconds (process time: every thread of the pass) per clip, sets alternated, best of --repeats. Ratios are
what count on a shared machine; wall seconds are printed too.

    python benchmarks/scale_audio.py [--clips 120] [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))


def scale_like(directory: Path, clips: int, emotional: bool) -> pd.DataFrame:
    """scale.py's clips (its own `_render`), or the same with each utterance's emotional prosody."""
    import scale

    from koemo.demo.plan import plan_corpus

    plan = plan_corpus(clips, 11)
    seconds = np.clip(np.random.default_rng(11).lognormal(np.log(3.9), 0.35, clips), 1.0, 16.0)
    (directory / "wav").mkdir(parents=True)
    if emotional:  # _render speaks `emotion_prosody(speaker, "neutral")`: give it the utterance's own prosody instead
        import koemo.demo.prosody as prosody

        original = prosody.emotion_prosody
        current = []
        prosody.emotion_prosody = lambda speaker, emotion, *a, **k: current[-1]
        try:
            for utterance, s in zip(plan, seconds):
                current.append(utterance.prosody)
                scale._render([(utterance, s)], str(directory / "wav"))
        finally:
            prosody.emotion_prosody = original
    else:
        scale._render(list(zip(plan, seconds)), str(directory / "wav"))
    return _labels(directory, [u.wav_id for u in plan])


def harmonic(directory: Path, clips: int) -> pd.DataFrame:
    import soundfile as sf

    seconds = np.clip(np.random.default_rng(11).lognormal(np.log(3.9), 0.35, clips), 1.0, 16.0)
    rng, rate, ids = np.random.default_rng(0), 48000, []
    (directory / "wav").mkdir(parents=True)
    for i, s in enumerate(seconds):
        t = np.arange(int(s * rate)) / rate
        f0 = rng.uniform(90, 260) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
        phase = 2 * np.pi * np.cumsum(f0) / rate
        voice = sum(np.sin(k * phase) / k for k in range(1, 12))
        envelope = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(3, 6) * t)) ** 2
        y = 0.15 * voice * envelope + 0.01 * rng.standard_normal(len(t))
        ids.append(f"h{i:05d}")
        sf.write(directory / "wav" / f"{ids[-1]}.wav", (np.clip(y, -1, 1) * 32767).astype(np.int16), rate, subtype="PCM_16")
    return _labels(directory, ids)


def _labels(directory: Path, ids: list[str]) -> pd.DataFrame:
    """The columns the pass reads; 80 % training rows (augmented), as split.test_size 0.2 gives."""
    return pd.DataFrame({"wav_id": ids, "wav_path": [str(directory / "wav" / f"{i}.wav") for i in ids],
                         "split": ["test" if k % 5 == 0 else "train" for k in range(len(ids))],
                         "fold": [k % 4 for k in range(len(ids))], "label": "neutral", "label_id": 2})


def audio_pass(labels: pd.DataFrame, audio: dict, out: Path) -> tuple[float, float, float]:
    """(CPU seconds, wall seconds, audio seconds) of the stage's pass on `labels`."""
    from koemo.features.mel.augment import AugmentSpec
    from koemo.features.mel.cache import extract_pass
    from koemo.features.mel.spectral import FeatureSpec

    specs = [FeatureSpec.from_params(kind, audio) for kind in ("mel", "melmean")]
    outs = [Path(tempfile.mkdtemp(dir=out)) / kind for kind in ("mel", "melmean")]
    cpu, wall = time.process_time(), time.perf_counter()
    metrics, runtime = extract_pass(labels, specs, AugmentSpec.from_params(audio.get("augment")), outs,
                                    int(audio["workers"]), float(audio["batch_seconds"]), audio.get("min_rms_dbfs"),
                                    progress=False)
    assert metrics["failed"] == 0, metrics
    import soundfile as sf

    audio_seconds = sum(sf.info(p).duration for p in labels["wav_path"])
    return time.process_time() - cpu, time.perf_counter() - wall, audio_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    import torch

    from koemo.core.params import load_params

    torch.set_num_threads(1)  # one thread for the batched math, as `runtime.threads: auto` gives two jobs on 2 cores
    audio = load_params(REPO / "params.yaml")["audio"]
    with tempfile.TemporaryDirectory(prefix="koemo-scale-audio-") as tmp:
        tmp = Path(tmp)
        sets = {"scale": scale_like(tmp / "scale", args.clips, emotional=False),
                "emotional": scale_like(tmp / "emotional", args.clips, emotional=True),
                "harmonic": harmonic(tmp / "harmonic", args.clips)}
        audio_pass(sets["scale"].head(8), audio, tmp)  # imports, filterbanks
        best = {name: (float("inf"), 0.0, 0.0) for name in sets}
        for _ in range(args.repeats):
            for name, labels in sets.items():
                figures = audio_pass(labels, audio, tmp)
                best[name] = min(best[name], figures)
        print(f"{args.clips} clips per set, audio_features pass (mel + melmean, augmentation on), best of {args.repeats}")
        base = best["scale"][0] / args.clips
        for name, (cpu, wall, seconds) in best.items():
            print(f"  {name:10s} {cpu / args.clips * 1000:7.1f} CPU-ms/clip ({wall / args.clips * 1000:6.1f} wall-ms), "
                  f"{seconds / args.clips:4.2f} s/clip, {seconds / cpu:5.0f}× real time per CPU-s; "
                  f"{cpu / args.clips / base:4.2f}× scale's per clip")


if __name__ == "__main__":
    main()
