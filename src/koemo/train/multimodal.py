"""The multimodal model: the reference project's Conv1D over [text embedding ‖ mel means], and its fold builder, which
standardises with statistics of the fold's fitting rows only (saved with the weights).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from koemo.train.cv import FoldJob, FoldPlan, present
from koemo.train.data import ArrayRows, Examples, stack_collate


class MultimodalConv1D(nn.Module):
    """The reference project's model: Conv1D(256, k=5, same, relu) → Dropout(0.2) → Flatten → Dense(32, relu) → Dense(classes).

    The standardised feature vector is read as a 1-channel sequence (Keras `Conv1D` over [features, 1]);
    Keras' Flatten between the convolution and Dense(32) is implied by the shapes. Softmax is applied by the
    loss / at prediction, as logits are what the one trainer expects.
    """

    def __init__(self, in_features: int, n_classes: int, channels: int = 256, kernel_size: int = 5,
                 dropout: float = 0.2, hidden: int = 32):
        super().__init__()
        self.conv = nn.Conv1d(1, channels, kernel_size, padding="same")
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(channels * in_features, hidden)
        self.head = nn.Linear(hidden, n_classes)

    @classmethod
    def from_params(cls, in_features: int, n_classes: int, p: Mapping) -> "MultimodalConv1D":
        """From a `train_multimodal` params section."""
        return cls(in_features, n_classes, channels=int(p["channels"]), kernel_size=int(p["kernel_size"]),
                   dropout=float(p["dropout"]), hidden=int(p["hidden"]))

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # features: [batch, in_features]
        x = F.relu(self.conv(features.unsqueeze(1)))
        x = self.dropout(x).flatten(1)
        return self.head(F.relu(self.dense(x)))


def standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and scale (population std; 1 where constant), like sklearn's StandardScaler."""
    x64 = np.asarray(x, dtype=np.float64)
    mean = x64.mean(axis=0)
    scale = x64.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


class MultimodalInputs:
    """[text embedding ‖ mel means] per labels row, standardised with statistics of the fold's fitting rows."""

    def __init__(self, labels: pd.DataFrame, text: np.ndarray, audio: np.ndarray, n_classes: int,
                 model_params: Mapping[str, Any], absent: np.ndarray | None = None):
        """`absent`: labels rows whose clip has no audio features (a failure the features stage listed)."""
        if not (len(text) == len(audio) == len(labels)):
            raise ValueError(f"multimodal: {len(labels)} labels rows, {len(text)} text rows, {len(audio)} audio rows")
        self.absent = np.zeros(0, dtype=np.int64) if absent is None else np.asarray(absent, dtype=np.int64)
        self.x = np.concatenate([np.asarray(text, np.float32), np.asarray(audio, np.float32)], axis=1)
        self.text_dim = int(text.shape[1])
        self.wav_ids = labels["wav_id"].astype(str).to_numpy()
        self.y = labels["label_id"].to_numpy(dtype=np.int64)
        self.n_classes, self.params = n_classes, dict(model_params)

    def examples(self, x: np.ndarray, rows: np.ndarray) -> Examples:
        rows = present(rows, self.absent)
        return Examples(ArrayRows(x[rows], self.y[rows]), self.y[rows], self.wav_ids[rows], stack_collate)

    def model(self) -> MultimodalConv1D:
        return MultimodalConv1D.from_params(self.x.shape[1], self.n_classes, self.params)

    def __call__(self, plan: FoldPlan) -> FoldJob:
        fit = present(plan.fit, self.absent)
        mean, scale = standardizer(self.x[fit])
        x = ((self.x - mean) / scale).astype(np.float32)
        return FoldJob(self.model(), self.examples(x, plan.fit), self.examples(x, plan.valid), self.examples(x, plan.holdout),
                       self.examples(x, plan.test),
                       files={"fold.json": {"scaler_fit_rows": len(fit), "features": int(self.x.shape[1]),
                                            "text_features": self.text_dim}},
                       arrays={"scaler.safetensors": {"mean": mean, "scale": scale}}, absent=self.absent)
