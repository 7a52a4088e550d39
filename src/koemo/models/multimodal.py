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

from koemo.train.vectors import VectorInputs


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


def MultimodalInputs(labels: pd.DataFrame, text: np.ndarray, audio: np.ndarray, n_classes: int,
                     model_params: Mapping[str, Any], absent: np.ndarray | None = None) -> VectorInputs:
    """[text embedding ‖ mel means] per labels row, standardised per fold; `absent`: rows without audio features."""
    if not (len(text) == len(audio) == len(labels)):
        raise ValueError(f"multimodal: {len(labels)} labels rows, {len(text)} text rows, {len(audio)} audio rows")
    x = np.concatenate([np.asarray(text, np.float32), np.asarray(audio, np.float32)], axis=1)
    return VectorInputs(labels, x, lambda width: MultimodalConv1D.from_params(width, n_classes, model_params),
                        files={"text_features": int(text.shape[1])}, absent=absent)
