"""Augmentation speed: the stage's batched torch stretch + pitch vs the reference project's per-clip librosa loop, on
the same clips in one run, and how far apart their outputs are.

Clips are speech-like harmonic signals with clip lengths drawn like the real corpus (median 3.9 s, 1-16 s) at
16 kHz. The reference is `librosa.effects.time_stretch(rate=0.8)` + `pitch_shift(n_steps=0.7)` clip by clip, run
inline and in a 2-process pool (how the stage ran it before); the stage's path is `koemo.features.mel.augment.
augment_batch` over the same batches the stage forms (`audio.batch_seconds`), on CPU and, when present, on CUDA.
Equivalence: the mean log-spectral distance (dB, over the 80 dB below each clip's peak) between the two outputs.

    python benchmarks/augment.py [--clips 120] [--repeats 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from signals import speech_like  # noqa: E402  (the tests' speech-like clips)

RATE = 16000


def clips(count: int, seed: int = 0) -> list[np.ndarray]:
    """Harmonic, pitch-wobbling 'voices' with real-corpus-like lengths (lognormal, median 3.9 s, 1-16 s)."""
    rng = np.random.default_rng(seed)
    seconds = np.clip(rng.lognormal(np.log(3.9), 0.35, count), 1.0, 16.0)
    return [speech_like(rng, int(s * RATE), RATE, harmonics=5, noise=0.02) for s in seconds]


def librosa_pair(wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    return (librosa.effects.time_stretch(wave, rate=0.8).astype(np.float32),
            librosa.effects.pitch_shift(wave, sr=RATE, n_steps=0.7).astype(np.float32))


def reference(waves, workers: int):
    if workers <= 1:
        return [librosa_pair(w) for w in waves]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(librosa_pair, waves, chunksize=4))


def stage(waves, batch_seconds: float, device):
    from koemo.clips.extraction import budget_slices
    from koemo.features.mel.augment import AugmentSpec, augment_batch

    spec = AugmentSpec(("stretch", "pitch"), 1, 0, 0.005, 0.8, 0.7)
    out = []
    for start, stop in budget_slices([len(w) for w in waves], int(batch_seconds * RATE)):
        for made in augment_batch(waves[start:stop], [str(i) for i in range(start, stop)], RATE, spec, device):
            by = {m: y for m, _, y in made}
            out.append((by["stretch"], by["pitch"]))
    return out


def best(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-seconds", type=float, default=64.0, help="audio.batch_seconds")
    args = parser.parse_args()
    import torch

    waves = clips(args.clips)
    seconds = sum(len(w) for w in waves) / RATE
    print(f"{args.clips} clips, {seconds:.0f} s of 16 kHz audio (median {np.median([len(w) for w in waves]) / RATE:.1f} s); "
          f"stretch 0.8 + pitch 0.7 semitones each; best of {args.repeats}; torch threads {torch.get_num_threads()}")
    reference(waves[:2], 1), stage(waves[:2], args.batch_seconds, torch.device("cpu"))   # imports, JIT, FFT plans
    rows = {}
    rows["librosa loop, inline"], ref = best(lambda: reference(waves, 1), args.repeats)
    rows["librosa loop, 2 processes (the old stage)"], _ = best(lambda: reference(waves, 2), args.repeats)
    rows["batched torch, CPU (this stage)"], ours = best(lambda: stage(waves, args.batch_seconds, torch.device("cpu")),
                                                         args.repeats)
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        stage(waves[:2], args.batch_seconds, gpu)
        rows[f"batched torch, {torch.cuda.get_device_name(gpu)}"], _ = best(
            lambda: stage(waves, args.batch_seconds, gpu), args.repeats)
    base = rows["librosa loop, 2 processes (the old stage)"]
    for name, t in rows.items():
        print(f"  {name:48s} {t:7.2f} s = {seconds / t:7.0f}× real time → {base / t:5.2f}× the old stage")
    from koemo.features.mel.augment import log_spectral_distance

    stretch = [log_spectral_distance(o[0], r[0]) for o, r in zip(ours, ref)]
    pitch = [log_spectral_distance(o[1], r[1]) for o, r in zip(ours, ref)]
    print(f"equivalence (log-spectral distance to librosa, dB): stretch mean {np.mean(stretch):.3f} / max "
          f"{np.max(stretch):.3f}; pitch mean {np.mean(pitch):.3f} / max {np.max(pitch):.3f}")


if __name__ == "__main__":
    main()
