"""Batched torch features of whole padded batches, equal per clip to the reference one-clip formulas.

Per clip the features are defined by the single-clip reference (the tests check both):
- `mel`  = AmplitudeToDB("power", top_db)(torchaudio MelSpectrogram(clip)[..., :max_frames]), frames past the
  clip filled with its floor (max − top_db: what appended silence gives), shape [n_mels, max_frames];
- `mfcc` = the orthonormal DCT of that log-mel (torchaudio's MFCC), shape [n_mfcc, max_frames];
- `melmean` = librosa power_to_db(melspectrogram(y, sr, n_mels), ref=np.max).mean(axis=1) (the seed's
  multimodal input), shape [n_mels].
Padding must not leak between clips, so each row is laid out as the clip's own centre-padded signal (reflect
for torchaudio, zeros for librosa), framed without centring, and frames past each clip are masked out of
every max and mean. Only the frames kept are computed: a 6 s clip with `max_frames` 400 costs 4 s of STFT.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

KINDS = ("mel", "mfcc", "melmean")


@dataclass(frozen=True)
class FeatureSpec:
    """One kind's framing and shape (`audio.<kind>` plus `audio.sample_rate`)."""

    kind: str
    sample_rate: int
    n_fft: int
    hop_length: int
    n_mels: int
    top_db: float = 80.0
    max_frames: int | None = None   # mel/mfcc: frames kept (cropped or padded to this); the crop follows from it
    n_mfcc: int | None = None
    max_seconds: float | None = None  # melmean: the clip's first max_seconds are averaged (its crop)
    dtype: str = "float32"          # how the cache stores rows (float16 halves mel/mfcc; readers get float32)
    augment: bool = True            # training rows also get the augmented copies (audio.augment)

    @classmethod
    def from_params(cls, kind: str, audio: Mapping[str, Any]) -> "FeatureSpec":
        if kind not in KINDS:
            raise ValueError(f"unknown feature kind {kind!r}; choose from {list(KINDS)}")
        p = audio[kind]
        spec = cls(kind, int(audio["sample_rate"]), int(p["n_fft"]), int(p["hop_length"]), int(p["n_mels"]),
                   float(p.get("top_db", 80.0)), int(p["max_frames"]) if kind != "melmean" else None,
                   int(p["n_mfcc"]) if kind == "mfcc" else None,
                   float(p["max_seconds"]) if kind == "melmean" else None, str(p.get("dtype", "float32")),
                   bool(p.get("augment", True)))
        if spec.n_fft % 2 or spec.hop_length <= 0 or (spec.max_frames is not None and spec.max_frames < 1):
            raise ValueError(f"audio.{kind}: n_fft must be even, hop_length > 0, max_frames >= 1 ({spec})")
        if spec.n_mfcc is not None and not 0 < spec.n_mfcc <= spec.n_mels:
            raise ValueError(f"audio.mfcc: n_mfcc ({spec.n_mfcc}) must be in 1..n_mels ({spec.n_mels})")
        if spec.dtype not in ("float16", "float32"):
            raise ValueError(f"audio.{kind}.dtype={spec.dtype!r}: float16 or float32")
        if spec.max_seconds is not None and spec.max_seconds * spec.sample_rate < spec.n_fft:
            raise ValueError(f"audio.{kind}.max_seconds={spec.max_seconds}: shorter than one analysis window")
        return spec

    @property
    def crop_samples(self) -> int:
        """Samples of a clip (or augmented copy) this kind reads: through the last kept frame's window for
        mel/mfcc, `max_seconds` for melmean. Memory and time per clip are bounded by this, not by the clip."""
        if self.max_frames is not None:
            return (self.max_frames - 1) * self.hop_length + self.n_fft // 2
        return int(round(self.max_seconds * self.sample_rate))

    @property
    def pad_mode(self) -> str:
        """torchaudio centres with reflect padding, librosa (≥ 0.10) with zeros."""
        return "constant" if self.kind == "melmean" else "reflect"

    @property
    def min_samples(self) -> int:
        """Shorter clips have no full analysis window (`too_short`)."""
        return self.n_fft

    @property
    def shape(self) -> tuple[int, ...]:
        if self.kind == "melmean":
            return (self.n_mels,)
        return (self.n_mfcc if self.kind == "mfcc" else self.n_mels, self.max_frames)

    def frames(self, length: int) -> int:
        """Frames computed for a clip of `length` samples (centred STFT: 1 + length // hop, then the crop)."""
        count = 1 + int(length) // self.hop_length
        return min(count, self.max_frames) if self.max_frames is not None else count


def mel_filters(spec: FeatureSpec) -> tuple[np.ndarray, int]:
    """[n_fft//2+1, n_mels] float32 filterbank and how many of its bands are all-zero.

    mel/mfcc: torchaudio's (HTK scale, no norm) as MelSpectrogram builds it; melmean: librosa's (Slaney, norm).
    128 bands over 201 bins leave some bands empty (torchaudio warns): they are counted, not hidden.
    """
    n_freqs = spec.n_fft // 2 + 1
    if spec.kind == "melmean":
        import librosa

        fb = librosa.filters.mel(sr=spec.sample_rate, n_fft=spec.n_fft, n_mels=spec.n_mels).T
    else:
        import torchaudio

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            fb = torchaudio.functional.melscale_fbanks(n_freqs, 0.0, spec.sample_rate / 2, spec.n_mels, spec.sample_rate,
                                                       norm=None, mel_scale="htk").numpy()
    fb = np.ascontiguousarray(fb, dtype=np.float32)
    return fb, int((fb.max(axis=0) == 0).sum())


def layout(waves: Sequence[np.ndarray], spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """[batch, width] float32 rows, each its clip's centre-padded signal up to the last kept frame (zeros
    after), and the kept frame count per row."""
    half = spec.n_fft // 2
    frames = np.array([spec.frames(len(w)) for w in waves], dtype=np.int64)
    need = (frames - 1) * spec.hop_length + spec.n_fft
    out = np.zeros((len(waves), int(need.max())), dtype=np.float32)
    for i, wave in enumerate(waves):
        n = int(need[i])
        if n - half <= len(wave):  # the kept frames end inside the clip: no right padding needed
            if spec.pad_mode == "reflect":
                out[i, :half] = wave[half:0:-1]
            out[i, half:n] = wave[:n - half]
        else:
            out[i, :n] = np.pad(wave, half, mode=spec.pad_mode)[:n]
    return out, frames


class FeatureExtractor:
    """Computes one kind for batches of mono waveforms at `spec.sample_rate` (each ≥ `spec.min_samples`)."""

    def __init__(self, spec: FeatureSpec, device=None):
        import torch

        self.spec = spec
        self.device = device if device is not None else torch.device("cpu")
        fb, self.empty_bands = mel_filters(spec)
        self.fb_t = torch.from_numpy(np.ascontiguousarray(fb.T)).to(self.device)   # [n_mels, freqs]
        self.window = torch.hann_window(spec.n_fft, periodic=True, dtype=torch.float32, device=self.device)
        if spec.kind == "mfcc":
            import torchaudio

            self.dct_t = torchaudio.functional.create_dct(spec.n_mfcc, spec.n_mels, "ortho").T.contiguous().to(self.device)

    def __call__(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """float32 [batch, *spec.shape]."""
        import torch

        spec = self.spec
        short = [i for i, w in enumerate(waves) if len(w) < spec.min_samples]
        if short:
            raise ValueError(f"clips {short} are shorter than one window ({spec.min_samples} samples)")
        rows, frames = layout(waves, spec)
        with torch.inference_mode():
            x = torch.from_numpy(rows).to(self.device, non_blocking=True)
            # torch.stft(center=False) computed as framing + rfft, and |X|² from the real and imaginary parts
            # (~2× cheaper than reducing view_as_real(stft)); bands-first output needs no transposed copy later
            spectrum = torch.fft.rfft(x.unfold(1, spec.n_fft, spec.hop_length) * self.window)   # [B, T, freqs]
            power = spectrum.real.square().add_(spectrum.imag.square())
            del spectrum
            mel = torch.matmul(self.fb_t, power.transpose(1, 2))                # [B, n_mels, T]
            count = torch.as_tensor(frames, device=self.device)
            valid = (torch.arange(mel.shape[2], device=self.device)[None, :] < count[:, None])[:, None, :]  # [B, 1, T]
            out = self._melmean(mel, valid, count) if spec.kind == "melmean" else self._log_mel(mel, valid)
            return out.float().cpu().numpy()

    def _log_mel(self, mel, valid):
        """AmplitudeToDB(power, top_db) per clip over its kept frames; padding = the floor; mfcc: DCT."""
        import torch

        spec = self.spec
        db = mel.clamp_(min=1e-10).log10_().mul_(10.0)
        floor = (db.masked_fill(~valid, float("-inf")).amax(dim=(1, 2)) - spec.top_db)[:, None, None]
        db = torch.where(valid, torch.maximum(db, floor), floor)
        if db.shape[2] < spec.max_frames:
            db = torch.cat([db, floor.expand(-1, db.shape[1], spec.max_frames - db.shape[2])], dim=2)
        if spec.kind == "mfcc":
            db = torch.matmul(self.dct_t, db)                                   # [B, n_mfcc, max_frames]
        return db

    def _melmean(self, mel, valid, count):
        """power_to_db(ref=max over the clip, amin 1e-10, top_db) averaged over the clip's own frames."""
        import torch

        spec = self.spec
        ref = mel.masked_fill(~valid, 0.0).amax(dim=(1, 2))
        db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10)) - 10.0 * torch.log10(torch.clamp(ref, min=1e-10))[:, None, None]
        top = db.masked_fill(~valid, float("-inf")).amax(dim=(1, 2))
        db = torch.maximum(db, (top - spec.top_db)[:, None, None])
        return (db.double() * valid).sum(dim=2) / count[:, None].double()
