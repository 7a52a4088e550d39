"""audio_features speed: the reference project's per-file loop vs this stage's code path, on the same clips in one run.

Synthesises `--clips` voice-like clips (3–6 s, 48 kHz 16-bit mono, like the AI Hub release) into a temp dir,
so it needs no pipeline output. Reference-style `mel`: librosa.load at the native rate (torchaudio.load needs
torchcodec, not installed) + torchaudio MelSpectrogram(n_fft=400, hop_length=160, n_mels=128) + AmplitudeToDB,
cropped/padded per file; timed twice: the transform built per file (as the reference project's loop) and hoisted out of
the loop (the strongest per-file baseline). Stage: `koemo.features.mel.cache.extract_pass` as the stage runs it
(thread-pool decode + soxr to 16 kHz, batched torch STFT, shards + index written), no augmentation. Also the
reference project's `melmean` loop (librosa.load at 22,050 Hz + melspectrogram(n_mels=13) + power_to_db(ref=max) + mean)
against the stage's melmean, and the GPU figure when CUDA is available. Paths alternate `--repeats` times;
the best time of each counts.

    python benchmarks/audio_features.py [--clips 200] [--repeats 2] [--workers 2]

Issue 3's targets on the 2-core CPU: mel ≥ 10× the reference loop and ≥ 1,000× real time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


AUDIO: dict = {}   # params.yaml `audio` (the stage's own feature settings)


def synthesise(directory: Path, clips: int, rate: int = 48000, seed: int = 0) -> tuple[pd.DataFrame, float]:
    """Voiced-speech-like clips: harmonics of a wandering f0, syllable-rate envelope, breath noise."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    rows, total = [], 0.0
    for i in range(clips):
        seconds = rng.uniform(3.0, 6.0)
        n = int(seconds * rate)
        t = np.arange(n) / rate
        f0 = rng.uniform(90, 260) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
        phase = 2 * np.pi * np.cumsum(f0) / rate
        voice = sum(np.sin(k * phase) / k for k in range(1, 12))
        envelope = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(3, 6) * t)) ** 2
        y = 0.15 * voice * envelope + 0.01 * rng.standard_normal(n)
        path = directory / f"clip{i:04d}.wav"
        sf.write(path, (np.clip(y, -1, 1) * 32767).astype(np.int16), rate, subtype="PCM_16")
        rows.append({"wav_id": f"clip{i:04d}", "wav_path": str(path), "split": "train", "fold": i % 5,
                     "label": "neutral", "label_id": 2})
        total += n / rate
    return pd.DataFrame(rows), total


def reference_mel(paths, max_frames: int = 400, hoisted: bool = False) -> np.ndarray:
    """The reference project's loop; `hoisted` builds the MelSpectrogram once per rate instead of once per file."""
    import librosa
    import torch
    import torchaudio

    transforms, to_db, out = {}, torchaudio.transforms.AmplitudeToDB("power", top_db=80), []
    for path in paths:
        y, sr = librosa.load(path, sr=None)
        if sr not in transforms or not hoisted:
            transforms[sr] = torchaudio.transforms.MelSpectrogram(sample_rate=sr, n_fft=400, hop_length=160, n_mels=128)
        mel = to_db(transforms[sr](torch.from_numpy(y)))[:, :max_frames]
        out.append(torch.nn.functional.pad(mel, (0, max_frames - mel.shape[1]), value=float(mel.min())).numpy())
    return np.stack(out)


def reference_melmean(paths) -> np.ndarray:
    import librosa

    out = []
    for path in paths:
        y, sr = librosa.load(path)
        out.append(librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_mels=13), ref=np.max).mean(axis=1))
    return np.stack(out)


def stage_run(labels, kind: str, workers: int, device, directory: Path) -> float:
    """Wall seconds of the stage's pass (`extract_pass`: pool, decode, features, shards, index), no augmentation."""
    from koemo.features.mel.augment import AugmentSpec
    from koemo.features.mel.cache import extract_pass
    from koemo.features.mel.spectral import FeatureSpec

    spec = FeatureSpec.from_params(kind, AUDIO)
    out = Path(tempfile.mkdtemp(dir=directory))
    start = time.perf_counter()
    metrics, _ = extract_pass(labels, [spec], AugmentSpec(), [out / kind], workers, float(AUDIO["batch_seconds"]),
                              device=device, progress=False)
    wall = time.perf_counter() - start
    assert metrics["clips"] == len(labels) and metrics["failed"] == 0, metrics
    return wall


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def report(kind: str, references: dict[str, float], stage: float, audio_seconds: float) -> None:
    print(f"{kind:8s} stage CPU {stage:6.3f} s = {audio_seconds / stage:6.0f}× real time")
    for name, s in references.items():
        print(f"{'':8s} {name:42s} {s:6.3f} s = {audio_seconds / s:6.0f}× real time → stage is {s / stage:5.1f}× faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="At least one mel filterbank")
    import torch

    from koemo.clips.decode import decode_clips
    from koemo.core.params import load_params

    global AUDIO
    AUDIO = load_params()["audio"]
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory(prefix="koemo-bench-audio-") as tmp:
        tmp = Path(tmp)
        labels, audio_seconds = synthesise(tmp, args.clips)
        paths = labels["wav_path"].tolist()
        print(f"{args.clips} clips, {audio_seconds:.0f} s of 48 kHz audio; torch threads {torch.get_num_threads()}, "
              f"stage workers {args.workers}, best of {args.repeats}")
        reference_mel(paths[:5]), reference_melmean(paths[:5])                     # imports, page cache, filterbanks
        stage_run(labels.head(5), "mel", args.workers, cpu, tmp), stage_run(labels.head(5), "melmean", args.workers, cpu, tmp)
        references = {"mel": {"reference loop (MelSpectrogram built per file)": lambda: reference_mel(paths),
                         "reference loop, transform hoisted out of the loop": lambda: reference_mel(paths, hoisted=True)},
                 "melmean": {"reference loop (librosa.load 22,050 Hz + librosa)": lambda: reference_melmean(paths)}}
        fastest = float("inf")
        for kind, loops in references.items():
            ref_t, stage_t = {name: [] for name in loops}, []
            for _ in range(args.repeats):                                  # alternate, best of each
                for name, fn in loops.items():
                    ref_t[name].append(timed(fn))
                stage_t.append(stage_run(labels, kind, args.workers, cpu, tmp))
            report(kind, {name: min(t) for name, t in ref_t.items()}, min(stage_t), audio_seconds)
            fastest = min(fastest, *(min(t) for t in ref_t.values()))
        # The floor under any implementation: reading the files and resampling to 16 kHz, nothing else.
        decode = min(timed(lambda: decode_clips(paths, int(AUDIO["sample_rate"]), workers=args.workers))
                     for _ in range(args.repeats))
        print(f"decode + resample only ({args.workers} threads) {decode:6.3f} s = {audio_seconds / decode:6.0f}× real time → "
              f"no feature code can beat the fastest reference loop by more than {fastest / decode:.1f}× here")
        if torch.cuda.is_available():
            gpu = torch.device("cuda")
            stage_run(labels.head(5), "mel", args.workers, gpu, tmp)
            for kind in ("mel", "melmean"):
                o = min(stage_run(labels, kind, args.workers, gpu, tmp) for _ in range(args.repeats))
                print(f"{kind:8s} stage on {torch.cuda.get_device_name(gpu)}: {o:6.3f} s ({audio_seconds / o:6.0f}× real time)")
        else:
            print("no CUDA device: GPU figure not measured")


if __name__ == "__main__":
    main()
