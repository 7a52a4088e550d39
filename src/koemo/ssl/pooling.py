"""Every hidden layer of a frozen speech encoder, mean-pooled over each clip's valid frames: `[clips, layers, dim]`.

Computed once per encoder so the heads that learn a layer weighting (SUPERB-style) train in seconds. Padding
never counts: a batch is padded to its longest chunk, each chunk's valid frames come from the conv stack's own
length arithmetic, and models that take an attention mask get one; group-norm models (wav2vec2-base), whose
first conv layer normalises over the whole padded input, are batched with equal-length chunks only. Clips
longer than `chunk_seconds` are split into near-equal chunks (attention cost grows with the square of length)
whose frame sums are added, so a chunked clip's vector is still its frame-weighted mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

FP16_MAX = float(np.finfo(np.float16).max)


class ClipTooShort(ValueError):
    """A clip shorter than the encoder's receptive field yields no frame at all."""


def normalize(wave: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over the clip (Wav2Vec2FeatureExtractor's formula), float32."""
    wave = np.asarray(wave, dtype=np.float32)
    return ((wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)).astype(np.float32)


def split_chunks(wave: np.ndarray, chunk_samples: int) -> list[np.ndarray]:
    """Near-equal consecutive chunks of at most `chunk_samples` (no short remainder that would yield few frames)."""
    pieces = max(1, math.ceil(len(wave) / chunk_samples))
    return np.array_split(wave, pieces)


def plan_batches(lengths: Sequence[int], max_samples: int, equal_lengths: bool = False) -> list[np.ndarray]:
    """Indices in batches of similar length, longest first, each batch's padded size (rows × longest) within
    `max_samples` (a single longer item gets a batch of its own); `equal_lengths` puts only equal lengths together."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches, current = [], []
    for i in order:
        if current and ((len(current) + 1) * lengths[current[0]] > max_samples
                        or (equal_lengths and lengths[i] != lengths[current[0]])):
            batches.append(np.asarray(current))
            current = []
        current.append(i)
    if current:
        batches.append(np.asarray(current))
    return batches


def pad_waves(waves: Sequence[np.ndarray]):
    """Right-padded float32 `input_values` and the sample-level `attention_mask` (long)."""
    import torch

    width = max(len(w) for w in waves)
    values = torch.zeros((len(waves), width), dtype=torch.float32)
    mask = torch.zeros((len(waves), width), dtype=torch.long)
    for i, wave in enumerate(waves):
        values[i, :len(wave)] = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
        mask[i, :len(wave)] = 1
    return values, mask


def layer_states(outputs) -> tuple:
    """Hidden states, transformer input first; the last is the model's final output (after a stable-layer-norm
    model's closing LayerNorm, which `hidden_states[-1]` leaves out in transformers 5)."""
    return (*outputs.hidden_states[:-1], outputs.last_hidden_state)


def masked_layer_sums(states: Sequence, frames) -> "torch.Tensor":
    """[batch, layers, dim] float32 sums over each row's first `frames[i]` frames (padding frames excluded)."""
    import torch

    width = states[0].shape[1]
    mask = (torch.arange(width, device=states[0].device)[None, :] < frames[:, None]).to(torch.float32).unsqueeze(-1)
    return torch.stack([(state.float() * mask).sum(dim=1) for state in states], dim=1)


@dataclass
class PoolStats:
    chunks: int = 0
    chunked_clips: int = 0
    batches: int = 0
    frames: int = 0
    fp16_clipped: int = 0  # pooled values beyond float16's range, clipped before caching


def encode_chunks(encoder, chunks: Sequence[np.ndarray], batch_samples: int, device, amp, stats: PoolStats,
                  progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Per chunk: summed hidden states over its valid frames `[chunks, layers, dim]` (float64) and frame counts."""
    import torch

    lengths = np.asarray([len(c) for c in chunks], dtype=np.int64)
    frames = encoder.frames(lengths)
    sums = np.zeros((len(chunks), encoder.layers, encoder.dim), dtype=np.float64)
    for batch in plan_batches(lengths, batch_samples, equal_lengths=not encoder.uses_attention_mask):
        values, mask = pad_waves([chunks[i] for i in batch])
        values = values.to(device, non_blocking=True)
        kwargs = {"attention_mask": mask.to(device, non_blocking=True)} if encoder.uses_attention_mask else {}
        with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=amp, enabled=amp is not None):
            outputs = encoder.model(values, output_hidden_states=True, **kwargs)
            states = layer_states(outputs)
            batch_frames = torch.as_tensor(frames[batch], device=device)
            if states[0].shape[1] < int(batch_frames.max()):
                raise AssertionError(f"{encoder.name}: model returned {states[0].shape[1]} frames, expected {int(batch_frames.max())}")
            sums[batch] = masked_layer_sums(states, batch_frames).double().cpu().numpy()
        stats.batches += 1
        if progress is not None:
            progress.update(len(batch))
    return sums, frames


def pool_clips(encoder, waves: Sequence[np.ndarray], chunk_seconds: float, batch_seconds: float, device=None,
               stats: PoolStats | None = None, progress=None) -> np.ndarray:
    """float32 `[clips, layers, dim]`: each clip's hidden states averaged over its valid frames, per layer.

    `waves` are mono float arrays at `encoder.sample_rate`; each must be at least `encoder.min_samples` long
    (`ClipTooShort` otherwise — the caller counts it as a failure).
    """
    from koemo.core.device import autocast_dtype, resolve_device

    device = device if device is not None else resolve_device()
    stats = stats if stats is not None else PoolStats()
    rate = encoder.sample_rate
    chunk_samples = int(round(chunk_seconds * rate))
    batch_samples = int(round(batch_seconds * rate))
    if chunk_samples < 2 * encoder.min_samples:
        raise ValueError(f"ssl_features.chunk_seconds={chunk_seconds}: chunks must span at least two receptive fields "
                         f"({2 * encoder.min_samples / rate:.3f} s)")
    chunks, owner = [], []
    for i, wave in enumerate(waves):
        if len(wave) < encoder.min_samples:
            raise ClipTooShort(f"clip {i}: {len(wave)} samples, fewer than the receptive field ({encoder.min_samples})")
        wave = normalize(wave) if encoder.normalize else np.asarray(wave, dtype=np.float32)
        pieces = split_chunks(wave, chunk_samples)
        stats.chunked_clips += len(pieces) > 1
        chunks.extend(pieces)
        owner.extend([i] * len(pieces))
    stats.chunks += len(chunks)
    encoder.model.to(device).eval()
    sums, frames = encode_chunks(encoder, chunks, batch_samples, device, autocast_dtype(device), stats, progress)
    owner = np.asarray(owner, dtype=np.int64)
    clip_sums = np.zeros((len(waves), encoder.layers, encoder.dim), dtype=np.float64)
    np.add.at(clip_sums, owner, sums)
    clip_frames = np.bincount(owner, weights=frames, minlength=len(waves))
    stats.frames += int(frames.sum())
    return (clip_sums / clip_frames[:, None, None]).astype(np.float32)


def to_fp16(features: np.ndarray, stats: PoolStats) -> np.ndarray:
    """float16 for the cache; values beyond its range are clipped and counted (never silently inf)."""
    if not np.isfinite(features).all():
        raise FloatingPointError("pooled SSL features contain NaN/inf")
    beyond = np.abs(features) > FP16_MAX
    stats.fp16_clipped += int(beyond.sum())
    return np.clip(features, -FP16_MAX, FP16_MAX).astype(np.float16)
