"""The audio model: a small 2-D ResNet over a mel spectrogram (depth/width are params so the demo trains on CPU), and
its fold builder: originals for every role, plus only the fitting rows' augmented copies for training.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from koemo.core.shards import ShardStore
from koemo.train.cv import FoldJob, FoldPlan, without_absent
from koemo.train.data import ArrayRows, Examples, stack_collate
from koemo.train.stage import Built

NAME = "audio"
ARGS = (("--features", "the audio_features cache of train_audio.features"),)
DISTRIBUTED = True
NEEDS = ("wav",)


def used_keys(params: Mapping[str, Any]) -> list[str]:
    """Dotted params keys the model reads; its training rows include the augmented copies."""
    return ["labels.classes", "train", "train_audio",
            "audio.sample_rate", "audio.min_rms_dbfs", "audio.augment", f"audio.{params['train_audio']['features']}"]


def inputs(args, params: Mapping[str, Any], labels: pd.DataFrame, classes: list[str]) -> Built:
    store = ShardStore(args.features)
    spec = params["train_audio"]
    return Built(AudioInputs(labels, store, len(classes), spec),
                 {"features": spec["features"], "input_shape": list(store.row_shape)})


class SpecAugment(nn.Module):
    """Zero random frequency bands and time spans of each training example (Park et al., 2019); identity in eval.

    Uses torch's global generator, which the trainer seeds, so masked runs still repeat on CPU.
    """

    def __init__(self, freq_masks: int = 2, freq_width: int = 16, time_masks: int = 2, time_width: int = 40):
        super().__init__()
        self.freq_masks, self.freq_width, self.time_masks, self.time_width = freq_masks, freq_width, time_masks, time_width

    @staticmethod
    def _mask(batch: int, size: int, count: int, width: int, device) -> torch.Tensor:
        """[batch, size] bool: True inside any of `count` spans of random width in [0, width)."""
        masked = torch.zeros(batch, size, dtype=torch.bool, device=device)
        positions = torch.arange(size, device=device)
        for _ in range(count):
            w = torch.randint(0, max(1, min(width, size)), (batch, 1), device=device)
            start = (torch.rand(batch, 1, device=device) * (size - w + 1).float()).long()
            masked |= (positions >= start) & (positions < start + w)
        return masked

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [batch, bands, frames]
        if not self.training:
            return x
        batch, bands, frames = x.shape
        freq = self._mask(batch, bands, self.freq_masks, self.freq_width, x.device)
        time = self._mask(batch, frames, self.time_masks, self.time_width, x.device)
        keep = ~(freq.unsqueeze(2) | time.unsqueeze(1))
        return x * keep.to(x.dtype)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm and an identity (or 1×1 projection) shortcut."""

    def __init__(self, channels_in: int, channels_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.shortcut = nn.Identity()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class AudioResNet(nn.Module):
    """ResNet over a [bands, frames] spectrogram: input batch norm → strided stem → stages → average pool → linear.

    Stage i has `width · 2^i` channels and `blocks[i]` BasicBlocks; every stage after the first halves the
    resolution. `pool` average-pools the input first (e.g. [2, 2] turns 128×400 into 64×200, ~4× cheaper).
    The input batch norm learns the feature scale from training batches, so no statistics outside the
    training folds are used.
    """

    def __init__(self, n_classes: int, width: int = 16, blocks: Sequence[int] = (1, 1, 1), stem_stride: int = 2,
                 pool: Sequence[int] = (1, 1), dropout: float = 0.2, spec_augment: Mapping | None = None):
        super().__init__()
        self.spec_augment = SpecAugment(**spec_augment) if spec_augment else nn.Identity()
        self.pool = nn.AvgPool2d(tuple(pool)) if tuple(pool) != (1, 1) else nn.Identity()
        self.input_norm = nn.BatchNorm2d(1)
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, stride=stem_stride, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        layers, channels = [], width
        for stage, count in enumerate(blocks):
            out = width * 2 ** stage
            for i in range(int(count)):
                layers.append(BasicBlock(channels, out, stride=2 if stage > 0 and i == 0 else 1))
                channels = out
        self.stages = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, n_classes)

    @classmethod
    def from_params(cls, n_classes: int, p: Mapping) -> "AudioResNet":
        """From a `train_audio` params section."""
        return cls(n_classes, width=int(p["width"]), blocks=[int(b) for b in p["blocks"]], stem_stride=int(p["stem_stride"]),
                   pool=[int(k) for k in p.get("pool", [1, 1])], dropout=float(p["dropout"]),
                   spec_augment=p.get("spec_augment") or None)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # features: [batch, bands, frames]
        x = self.spec_augment(features).unsqueeze(1)
        x = self.input_norm(self.pool(x))
        x = self.stages(self.stem(x))
        return self.head(self.dropout(x.mean(dim=(2, 3))))


def _rows_examples(fetch: Callable[[int], np.ndarray], n: int, labels: np.ndarray, ids: np.ndarray) -> Examples:
    return Examples(ArrayRows(fetch, labels, n), labels, ids, stack_collate)


class AudioInputs:
    """ResNet-on-mel folds: originals for every role, plus the fitting rows' augmented copies for training."""

    def __init__(self, labels: pd.DataFrame, store: ShardStore, n_classes: int, model_params: Mapping[str, Any]):
        self.store, self.n_classes, self.params = store, n_classes, dict(model_params)
        self.wav_ids = labels["wav_id"].astype(str).to_numpy()
        self.y = labels["label_id"].to_numpy(dtype=np.int64)
        self.original = store.originals(self.wav_ids, missing="mark")  # labels row → index position (-1: none)
        self.absent = np.flatnonzero(self.original < 0)  # clips the features stage listed as failed
        self.copies = store.augmented() if self.params.get("use_augmented", True) else {}
        train_ids = set(self.wav_ids[labels["split"].to_numpy() == "train"])
        if not set(self.copies) <= train_ids:
            raise ValueError(f"{store.directory}: augmented rows exist for non-training wav_ids (contract: train only)")

    def examples(self, rows: np.ndarray, with_copies: bool = False) -> Examples:
        rows = without_absent(rows, self.absent)
        positions, labels, ids = [self.original[rows]], [self.y[rows]], [self.wav_ids[rows]]
        if with_copies:
            for r in rows:
                extra = self.copies.get(self.wav_ids[r])
                if extra is not None:
                    positions.append(extra)
                    labels.append(np.full(len(extra), self.y[r]))
                    ids.append(np.full(len(extra), self.wav_ids[r], dtype=object))
        positions_all = np.concatenate(positions)
        return _rows_examples(lambda i: self.store.row(positions_all[i]), len(positions_all),
                              np.concatenate(labels), np.concatenate(ids))

    def model(self) -> AudioResNet:
        return AudioResNet.from_params(self.n_classes, self.params)

    def __call__(self, plan: FoldPlan) -> FoldJob:
        train = self.examples(plan.fit, with_copies=True)
        fit_rows = len(without_absent(plan.fit, self.absent))
        files = {"fit_rows": fit_rows, "augmented_rows": len(train) - fit_rows, "valid_rows": len(plan.valid),
                 "holdout_rows": len(plan.holdout)}
        if len(self.absent):
            files["rows_without_features"] = int(len(self.absent))
        return FoldJob(self.model(), train, self.examples(plan.valid), self.examples(plan.holdout), self.examples(plan.test),
                       files={"fold.json": files}, absent=self.absent)
