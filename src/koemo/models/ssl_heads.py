"""Classifiers on cached SSL layer features `[batch, layers, dim]`, alone or fused with a text sentence embedding.

- `Standardize`: per-feature mean/scale of one fold's training rows, kept as buffers so each saved fold model
  carries its own. Pooled SSL vectors share a large per-dimension offset and differ from clip to clip by little,
  so this (the role SUPERB's per-layer normalisation plays) is what lets a small head find the signal.
- `LayerWeighting`: SUPERB's learned softmax-weighted sum over layers (which layers carry emotion differs by
  model; the weights are read back after training).
- `SSLClassifier`: standardise → layer weighting → MLP.
- `GatedFusion`: a gated multimodal unit (Arevalo et al., 2017): text and audio projected to one size, a
  sigmoid gate computed from both decides per unit how much of each to use. A modality whose input is all
  zeros counts as missing and is replaced by a learned "absent" vector; modality dropout blanks one modality
  per training example at random, so the model also learns to classify from either alone.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import nn

FIT_BLOCK = 2048  # rows per step when computing statistics (the AI Hub cache is GBs)


def present(x: torch.Tensor) -> torch.Tensor:
    """[batch] bool: the row holds any non-zero value (an all-zero row is a missing modality)."""
    return x.flatten(1).abs().amax(dim=1) > 0


class Standardize(nn.Module):
    """(x − mean) / scale per feature; `fit` sets them from training rows (population std, 1 where constant)."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("scale", torch.ones(shape))

    def fit(self, x: np.ndarray) -> "Standardize":
        """Statistics over the rows of `x` that are not all zero (missing), accumulated in float64 blocks."""
        total = np.zeros(self.mean.shape, dtype=np.float64)
        squares = np.zeros(self.mean.shape, dtype=np.float64)
        count = 0
        for start in range(0, len(x), FIT_BLOCK):
            block = np.asarray(x[start:start + FIT_BLOCK], dtype=np.float64)
            block = block[block.reshape(len(block), -1).any(axis=1)]
            total += block.sum(axis=0)
            squares += np.square(block).sum(axis=0)
            count += len(block)
        if count:
            mean = total / count
            std = np.sqrt(np.maximum(squares / count - np.square(mean), 0.0))
            self.mean.copy_(torch.from_numpy(mean))
            self.scale.copy_(torch.from_numpy(np.where(std > 1e-8 * np.maximum(np.abs(mean), 1.0), std, 1.0)))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean) / self.scale


class LayerWeighting(nn.Module):
    """[batch, layers, dim] → [batch, dim]: the softmax(w)-weighted sum over layers; w starts uniform."""

    def __init__(self, layers: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(layers))

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.einsum("l,bld->bd", self.weights(), features.float())


def mlp(dim_in: int, hidden: int, n_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))


class SSLClassifier(nn.Module):
    """Standardise → layer weighting → dropout → MLP. A row with no audio (all zeros) gets `log_prior` as its
    logits: the builder sets it to the fold's training class frequencies, the honest guess with nothing to go on."""

    def __init__(self, layers: int, dim: int, n_classes: int, hidden: int = 128, dropout: float = 0.2):
        super().__init__()
        self.norm = Standardize((layers, dim))
        self.layer_weighting = LayerWeighting(layers)
        self.dropout = nn.Dropout(dropout)
        self.head = mlp(dim, hidden, n_classes, dropout)
        self.register_buffer("log_prior", torch.zeros(n_classes))

    @classmethod
    def from_params(cls, layers: int, dim: int, n_classes: int, p: Mapping) -> "SSLClassifier":
        """From a `train_wav2vec2` params section."""
        return cls(layers, dim, n_classes, hidden=int(p["hidden"]), dropout=float(p["dropout"]))

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # features: [batch, layers, dim]
        logits = self.head(self.dropout(self.layer_weighting(self.norm(features))))
        return torch.where(present(features)[:, None], logits, self.log_prior.to(logits.dtype))


class GatedFusion(nn.Module):
    """text [batch, text_dim] + audio [batch, layers, audio_dim] → logits; survives either modality missing."""

    def __init__(self, text_dim: int, layers: int, audio_dim: int, n_classes: int, hidden: int = 128,
                 dropout: float = 0.2, modality_dropout: float = 0.2):
        super().__init__()
        if not 0.0 <= modality_dropout <= 0.5:
            raise ValueError(f"modality_dropout={modality_dropout}: the chance of blanking each modality, in [0, 0.5]")
        self.modality_dropout = modality_dropout
        self.text_norm = Standardize((text_dim,))
        self.audio_norm = Standardize((layers, audio_dim))
        self.layer_weighting = LayerWeighting(layers)
        self.text_proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(text_dim, hidden), nn.Tanh())
        self.audio_proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(audio_dim, hidden), nn.Tanh())
        self.absent = nn.Parameter(torch.zeros(2, hidden))  # what a missing text (0) / audio (1) contributes
        self.gate = nn.Linear(2 * hidden + 2, hidden)
        self.head = mlp(hidden, hidden, n_classes, dropout)

    @classmethod
    def from_params(cls, text_dim: int, layers: int, audio_dim: int, n_classes: int, p: Mapping) -> "GatedFusion":
        """From a `train_fusion` params section."""
        return cls(text_dim, layers, audio_dim, n_classes, hidden=int(p["hidden"]), dropout=float(p["dropout"]),
                   modality_dropout=float(p["modality_dropout"]))

    def _drop_modalities(self, has_text: torch.Tensor, has_audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training only: blank text or audio (never both) of a random `modality_dropout` share of rows each."""
        if not self.training or self.modality_dropout == 0:
            return has_text, has_audio
        draw = torch.rand(has_text.shape, device=has_text.device)
        drop_text = (draw < self.modality_dropout) & has_audio
        drop_audio = (draw >= 1 - self.modality_dropout) & has_text
        return has_text & ~drop_text, has_audio & ~drop_audio

    def gate_values(self, text: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """[batch, hidden] share of each unit taken from text (the rest from audio), in eval mode's terms."""
        return self._fuse(text, audio)[1]

    def _fuse(self, text: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        has_text, has_audio = self._drop_modalities(present(text), present(audio))
        t = torch.where(has_text[:, None], self.text_proj(self.text_norm(text)), self.absent[0])
        a = torch.where(has_audio[:, None], self.audio_proj(self.layer_weighting(self.audio_norm(audio))), self.absent[1])
        flags = torch.stack([has_text, has_audio], dim=1).to(t.dtype)
        z = torch.sigmoid(self.gate(torch.cat([t, a, flags], dim=1)))
        return z * t + (1 - z) * a, z

    def forward(self, text: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.head(self._fuse(text, audio)[0])
