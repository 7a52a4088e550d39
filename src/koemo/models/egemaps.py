"""The eGeMAPS model: a small MLP (or, with `hidden: 0`, a linear classifier) over the 88 openSMILE eGeMAPSv02
functionals of each clip (Eyben et al. 2016, the field's standard interpretable baseline), standardised per fold."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from koemo.core.shards import ShardStore
from koemo.train.stage import Built
from koemo.train.vectors import VectorInputs

NAME = "egemaps"
ARGS = (("--features", "the egemaps_features cache"),)
DISTRIBUTED = True
NEEDS = ("wav",)


def used_keys(params: Mapping[str, Any]) -> list[str]:
    """Dotted params keys the model reads."""
    return ["labels.classes", "train", "train_egemaps", "audio.sample_rate", "audio.min_rms_dbfs", "egemaps"]


def inputs(args, params: Mapping[str, Any], labels: pd.DataFrame, classes: list[str]) -> Built:
    store = ShardStore(args.features)
    x, absent = store.aligned_with_absent(labels["wav_id"].astype(str).tolist())  # absent: openSMILE or decoding failed
    config = {"features": "egemaps", "input_dim": int(store.row_shape[0]), "rows_without_features": int(len(absent)),
              "scaler": "per fold, fit on its fitting rows: fold<k>/scaler.safetensors"}
    return Built(EgemapsInputs(labels, x, len(classes), params["train_egemaps"], absent=absent), config)


class EgemapsMLP(nn.Module):
    """Linear(features → hidden) → ReLU → Dropout → Linear(hidden → classes); `hidden: 0` is plain multinomial
    logistic regression (Linear(features → classes))."""

    def __init__(self, in_features: int, n_classes: int, hidden: int = 64, dropout: float = 0.2):
        super().__init__()
        self.net = (nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))
                    if hidden else nn.Linear(in_features, n_classes))

    @classmethod
    def from_params(cls, in_features: int, n_classes: int, p: Mapping[str, Any]) -> "EgemapsMLP":
        """From a `train_egemaps` params section."""
        return cls(in_features, n_classes, hidden=int(p["hidden"]), dropout=float(p["dropout"]))

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # features: [batch, 88]
        return self.net(features)


def EgemapsInputs(labels: pd.DataFrame, x: np.ndarray, n_classes: int, model_params: Mapping[str, Any],
                  absent: np.ndarray | None = None) -> VectorInputs:
    """The functionals of each labels row, standardised per fold; `absent`: rows whose clip has none."""
    return VectorInputs(labels, x, lambda width: EgemapsMLP.from_params(width, n_classes, model_params), absent=absent)
