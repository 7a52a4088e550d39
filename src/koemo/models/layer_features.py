"""What the two heads on SSL layer features (`models.wav2vec2`, `models.fusion`) share: the `ssl_features` store,
the per-fold standardisation, the learned layer weighting, and the layer weights both report.

- `Standardize`: per-feature mean/scale of one fold's training rows, kept as buffers so each saved fold model
  carries its own. Pooled SSL vectors share a large per-dimension offset and differ from clip to clip by little,
  so this (the role SUPERB's per-layer normalisation plays) is what lets a small head find the signal.
- `LayerWeighting`: SUPERB's learned softmax-weighted sum over layers (which layers carry emotion differs by
  model; the weights are read back after training: `with_layer_weights`).
- `SSLStore`: `data/ssl/<encoder>/` aligned to labels order. A labels row whose clip has no SSL features (a decode
  failure `ssl_features` counted and listed) gets all-zero features, which the heads treat as missing audio; the
  training metrics count those rows. Nothing is standardised with statistics from outside a fold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from koemo.core.shards import ShardStore
from koemo.train.cv import FoldPlan, class_prior

FIT_BLOCK = 2048  # rows per step when computing statistics (the AI Hub cache is GBs)


def has_input(x: torch.Tensor) -> torch.Tensor:
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


class SSLStore(ShardStore):
    """`data/ssl/<encoder>/`: float16 `[clips, layers, dim]` shards read through memory maps, and `encoder.json`
    (name, source — "local-tiny" for the random-init stand-in —, architecture)."""

    def __init__(self, directory: str | Path):
        super().__init__(directory)
        self.encoder = json.loads((self.directory / "encoder.json").read_text(encoding="utf-8"))
        if self.index["wav_id"].duplicated().any():
            raise ValueError(f"{self.directory}: duplicate wav_ids in index.parquet")

    @property
    def layers(self) -> int:
        return int(self.row_shape[0])

    @property
    def dim(self) -> int:
        return int(self.row_shape[1])


def missing_rows(audio: np.ndarray) -> np.ndarray:
    """[rows] bool: rows whose SSL features are all zero (no clip features were cached for them)."""
    return ~np.asarray(audio).reshape(len(audio), -1).any(axis=1)


def class_log_prior(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """log of `train.cv.class_prior` (add-one smoothed class frequencies): the SSL head's logits for a row with no
    audio, the same prior the CV loop gives other models' absent rows."""
    return np.log(class_prior(labels, n_classes)).astype(np.float32)


def fold_files(plan: FoldPlan, missing: np.ndarray) -> dict:
    return {"fold.json": {"fit_rows": len(plan.fit), "valid_rows": len(plan.valid), "holdout_rows": len(plan.holdout),
                          "fit_rows_without_audio": int(missing[plan.fit].sum())}}


def layer_weights(model_dir: str | Path) -> list[list[float]]:
    """Each fold model's softmax layer weights, fold order (read back from its safetensors)."""
    from safetensors.numpy import load_file

    folds = sorted(Path(model_dir).glob("fold*/model.safetensors"), key=lambda p: int(p.parent.name[4:]))
    out = []
    for path in folds:
        logits = load_file(str(path))["layer_weighting.logits"].astype(np.float64)
        weights = np.exp(logits - logits.max())
        out.append((weights / weights.sum()).tolist())
    return out


def with_layer_weights(paths, metrics: Mapping[str, Any], runtime: Mapping[str, Any], encoder: Mapping[str, Any],
                       rows_without_audio: int) -> dict:
    """The stage's metrics plus which SSL encoder fed it and the layer weights it learned (rewrites the stage's
    metrics file; `paths` is its `train.runner.TrainingPaths`)."""
    from accelerate import PartialState

    from koemo.train.runner import write_stage_metrics

    per_fold = layer_weights(paths.model_dir)
    extra = {"ssl_encoder": encoder["encoder"], "ssl_source": encoder["source"], "rows_without_audio": rows_without_audio,
             "layer_weights": {"per_fold": per_fold, "mean": np.mean(per_fold, axis=0).round(4).tolist() if per_fold else []}}
    full = {**metrics, **extra}
    if PartialState().is_main_process:
        write_stage_metrics(paths, full, runtime)
    return full
