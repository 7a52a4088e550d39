"""`train_wav2vec2.mode: finetune`: the registry's speech encoder trained end to end under the layer-weighted head.

The CNN feature encoder stays frozen (its low-level filters need far more data than an emotion corpus has, and
freezing it is the standard wav2vec2 fine-tuning recipe); the transformer learns at `lr × encoder_lr_scale`, the
head at `lr`, through the shared trainer (`param_groups`). Pooling is the frozen mode's: every hidden layer
mean-pooled over the valid frames, then `LayerWeighting` → MLP, so the learned layer weights are read back the same.

Waveforms are decoded lazily per example (the AI Hub corpus never sits in memory) and cropped to `max_seconds`.
Each fold loads a fresh encoder from the registry, so no fold starts from another fold's fine-tuned weights.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from koemo.clips.decode import decode_clip
from koemo.core.errors import UserError
from koemo.models.layer_features import LayerWeighting, mlp
from koemo.ssl.pooling import layer_states, masked_layer_sums, normalize, pad_waves
from koemo.train.cv import FoldJob, FoldPlan
from koemo.train.data import Examples


class UndecodableClip(UserError):
    """A labels row's wav cannot be used for fine-tuning (missing, undecodable, empty, non-finite)."""


class SSLFineTuner(nn.Module):
    """Speech encoder (CNN feature encoder frozen) → per-layer masked mean pool → layer weighting → MLP logits."""

    def __init__(self, encoder, n_classes: int, hidden: int = 128, dropout: float = 0.2, encoder_lr_scale: float = 0.05):
        super().__init__()
        if not 0 < encoder_lr_scale <= 1:
            raise ValueError(f"train_wav2vec2.encoder_lr_scale={encoder_lr_scale}: expected a factor in (0, 1]")
        self.encoder = encoder.model
        self.encoder.requires_grad_(True)  # the registry hands it over frozen for feature extraction
        if hasattr(self.encoder, "freeze_feature_encoder"):
            self.encoder.freeze_feature_encoder()
        else:
            self.encoder.feature_extractor.requires_grad_(False)
        # LayerDrop skips whole layers in training, which drops their hidden states: the layer weighting needs
        # every layer every step. (SpecAugment-style time masking, the checkpoint's own regulariser, stays on.)
        self.encoder.config.layerdrop = 0.0
        # Group-norm models (wav2vec2-base) were pre-trained on zero-padded batches without a mask: giving them
        # one changes their output, so they get none (padding frames are still left out of the pooling).
        self.uses_attention_mask = bool(encoder.uses_attention_mask)
        self.encoder_lr_scale = float(encoder_lr_scale)
        self.layer_weighting = LayerWeighting(encoder.layers)  # key `layer_weighting.logits`: read back by speech.stage
        self.dropout = nn.Dropout(dropout)
        self.head = mlp(encoder.dim, hidden, n_classes, dropout)

    @classmethod
    def from_params(cls, encoder, n_classes: int, p: Mapping[str, Any]) -> "SSLFineTuner":
        """From a `train_wav2vec2` params section."""
        return cls(encoder, n_classes, hidden=int(p["hidden"]), dropout=float(p["dropout"]),
                   encoder_lr_scale=float(p.get("encoder_lr_scale", 0.05)))

    def param_groups(self, lr: float) -> list[dict]:
        """Head at `lr`, trainable encoder params (transformer, projection) at `lr × encoder_lr_scale`. The head
        comes first, so the trainer's logged `lr` is the head's."""
        head = [p for name, p in self.named_parameters() if not name.startswith("encoder.")]
        encoder = [p for p in self.encoder.parameters() if p.requires_grad]
        return [{"params": head, "lr": lr}, {"params": encoder, "lr": lr * self.encoder_lr_scale}]

    def pooled(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """[batch, layers, dim] float32: each layer's hidden states averaged over the clip's valid frames."""
        kwargs = {"attention_mask": attention_mask} if self.uses_attention_mask and attention_mask is not None else {}
        outputs = self.encoder(input_values, output_hidden_states=True, **kwargs)
        states = layer_states(outputs)
        samples = (attention_mask.sum(dim=1) if attention_mask is not None
                   else torch.full((len(input_values),), input_values.shape[1], device=input_values.device))
        frames = self.encoder._get_feat_extract_output_lengths(samples, add_adapter=False).clamp(min=1)
        return masked_layer_sums(states, frames) / frames[:, None, None].to(torch.float32)

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        pooled = self.pooled(input_values, attention_mask)
        # Per-layer layer norm (as s3prl's weighted-sum featurizer): layers of very different scale are then
        # weighed by the learned weights, not by their magnitude. No fold statistics needed, unlike `Standardize`.
        pooled = F.layer_norm(pooled, pooled.shape[-1:])
        return self.head(self.dropout(self.layer_weighting(pooled)))


class WaveRows(Dataset):
    """Labels rows as waveforms: decoded on access at the encoder's rate, normalised when it expects that, cropped
    to the first `max_samples` (deterministic) and zero-padded to at least one frame's receptive field."""

    def __init__(self, paths, labels: np.ndarray, sample_rate: int, normalize: bool, max_samples: int, min_samples: int):
        self.paths = np.asarray(paths, dtype=object)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.sample_rate, self.normalize = int(sample_rate), bool(normalize)
        self.max_samples, self.min_samples = int(max_samples), int(min_samples)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        path = str(self.paths[i])
        clip = decode_clip(path, self.sample_rate)
        if clip.wave is None:
            raise UndecodableClip(
                f"train_wav2vec2 (mode: finetune): cannot use {path}: {clip.reason} ({clip.detail}). Fine-tuning needs "
                f"every labels row's clip: replace or repair the file, or drop it from the corpus and rerun the labels "
                f"stage; mode: frozen instead treats such a clip as missing audio.")
        wave = clip.wave[:self.max_samples]
        wave = normalize(wave) if self.normalize else np.asarray(wave, dtype=np.float32)
        if len(wave) < self.min_samples:
            wave = np.pad(wave, (0, self.min_samples - len(wave)))
        return wave, int(self.labels[i])


def wave_collate(items: list) -> dict[str, torch.Tensor]:
    """[(wave, label)] → right-padded `input_values`, sample-level `attention_mask`, `labels`."""
    values, mask = pad_waves([w for w, _ in items])
    return {"input_values": values, "attention_mask": mask, "labels": torch.tensor([y for _, y in items], dtype=torch.long)}


def crop_collate(items: list) -> dict[str, torch.Tensor]:
    """[(wave, label)] → `input_values` cropped to the batch's shortest clip, no mask: for a group-norm encoder
    (wav2vec2-base), which takes no attention mask and whose features zero padding would move. Length-bucketed
    batches keep the crops small."""
    width = min(len(w) for w, _ in items)
    values = torch.from_numpy(np.stack([np.ascontiguousarray(w[:width], dtype=np.float32) for w, _ in items]))
    return {"input_values": values, "labels": torch.tensor([y for _, y in items], dtype=torch.long)}


def loader_workers() -> int:
    """DataLoader workers decoding wavs on a GPU machine: the cores but one, at most 4 (`make_loader` uses them only
    when CUDA is in use)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(4, cores - 1))


class FineTuneInputs:
    """Fold builder for `mode: finetune`: a fresh registry encoder + head per fold, waveforms read lazily.

    `labels` needs `wav_id, wav_path, label_id`; `load_encoder()` returns a `speech.registry.AudioEncoder`.
    """

    def __init__(self, labels: pd.DataFrame, load_encoder: Callable[[], Any], n_classes: int, model_params: Mapping[str, Any]):
        self.load_encoder = load_encoder
        encoder = load_encoder()
        self.sample_rate, self.normalize = encoder.sample_rate, encoder.normalize
        self.min_samples, self.layers, self.dim = encoder.min_samples, encoder.layers, encoder.dim
        self.description = {"encoder": encoder.name, "source": encoder.source, "architecture": encoder.architecture,
                            "uses_attention_mask": encoder.uses_attention_mask}
        self.params = dict(model_params)
        max_seconds = float(self.params.get("max_seconds", 15))
        self.max_samples = int(round(max_seconds * self.sample_rate))
        if self.max_samples < 2 * self.min_samples:
            raise ValueError(f"train_wav2vec2.max_seconds={max_seconds}: too short for the encoder's receptive field")
        self.uses_attention_mask = bool(encoder.uses_attention_mask)
        # each clip's samples as fed (cropped to max_samples): batches of similar lengths, each padded to its own
        # longest, instead of random batches that nearly always hold one max_seconds clip
        self.lengths = (np.minimum(np.round(labels["duration_s"].to_numpy(dtype=np.float64) * self.sample_rate),
                                   self.max_samples).astype(np.int64)
                        if "duration_s" in labels and labels["duration_s"].notna().all() else None)
        self.paths = labels["wav_path"].astype(str).to_numpy()
        self.wav_ids = labels["wav_id"].astype(str).to_numpy()
        self.y = labels["label_id"].to_numpy(dtype=np.int64)
        self.n_classes = n_classes

    def examples(self, rows: np.ndarray) -> Examples:
        dataset = WaveRows(self.paths[rows], self.y[rows], self.sample_rate, self.normalize, self.max_samples,
                           self.min_samples)
        return Examples(dataset, self.y[rows], self.wav_ids[rows], wave_collate if self.uses_attention_mask else crop_collate,
                        lengths=None if self.lengths is None else self.lengths[rows], gpu_workers=loader_workers())

    def model(self) -> SSLFineTuner:
        return SSLFineTuner.from_params(self.load_encoder(), self.n_classes, self.params)

    def __call__(self, plan: FoldPlan) -> FoldJob:
        return FoldJob(self.model(), self.examples(plan.fit), self.examples(plan.valid), self.examples(plan.holdout),
                       self.examples(plan.test),
                       files={"fold.json": {"fit_rows": len(plan.fit), "valid_rows": len(plan.valid),
                                            "holdout_rows": len(plan.holdout), "fit_rows_without_audio": 0}})
