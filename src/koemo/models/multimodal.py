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

from koemo.core.shards import ShardStore
from koemo.train.stage import Built
from koemo.train.vectors import VectorInputs

NAME = "multimodal"
ARGS = (("--embeddings", "the text_embeddings output of text.model"),
        ("--features", "the audio_features cache of train_multimodal.audio_features"))
DISTRIBUTED = True
NEEDS = ("text", "wav")


def used_keys(params: Mapping[str, Any]) -> list[str]:
    """Dotted params keys the model reads; audio: the originals only (no augmentation param)."""
    return ["labels.classes", "train", "train_multimodal", "text.source", "text.model", f"encoders.{params['text']['model']}",
            "audio.sample_rate", "audio.min_rms_dbfs", f"audio.{params['train_multimodal']['audio_features']}"]


def inputs(args, params: Mapping[str, Any], labels: pd.DataFrame, classes: list[str]) -> Built:
    spec = params["train_multimodal"]
    wav_ids = labels["wav_id"].astype(str).tolist()
    embeddings = ShardStore(args.embeddings)
    text = embeddings.rows(embeddings.originals(wav_ids))
    audio, absent = ShardStore(args.features).aligned_with_absent(wav_ids)  # absent: clips the features stage listed as failed
    audio = audio.astype(np.float32)
    config = {"text_model": params["text"]["model"], "audio_features": spec["audio_features"], "text_dim": int(text.shape[1]),
              "audio_dim": int(audio.shape[1]), "scaler": "per fold, fit on its fitting rows: fold<k>/scaler.safetensors"}
    return Built(MultimodalInputs(labels, text, audio, len(classes), spec, absent=absent), config)


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
