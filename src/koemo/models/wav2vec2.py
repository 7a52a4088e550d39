"""The wav2vec2 model: learned softmax weighting of the `ssl.model` layers → MLP, on the cached SSL features
(`train_wav2vec2.mode: frozen`) or with the encoder fine-tuned (`mode: finetune`, `models.wav2vec2_finetune`).
A row with no audio gets its fold's training class prior as its answer."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from koemo.core.errors import UserError
from koemo.models.layer_features import (LayerWeighting, SSLStore, Standardize, class_log_prior, fold_files, missing_rows,
                                         mlp, has_input, with_layer_weights)
from koemo.train.cv import FoldJob, FoldPlan
from koemo.train.data import ArrayRows, Examples, stack_collate
from koemo.train.stage import Built

NAME = "wav2vec2"
ARGS = (("--ssl", "the ssl_features cache of ssl.model (mode frozen)"),)
DISTRIBUTED = True
NEEDS = ("wav",)


def used_keys(params: Mapping[str, Any]) -> list[str]:
    """Dotted params keys the model reads (the audio encoder's, whichever the mode)."""
    return ["labels.classes", "train", "train_wav2vec2",
            "ssl.model", f"audio_encoders.{params['ssl']['model']}", "ssl_features.chunk_seconds", "audio.min_rms_dbfs"]


MODES = ("frozen", "finetune")


class UnknownMode(UserError, ValueError):
    """`train_wav2vec2.mode` is neither frozen nor finetune."""


def check_mode(spec: Mapping[str, Any]) -> str:
    """`train_wav2vec2.mode`: `frozen` (a head on the cached features) or `finetune` (`ssl.finetune`); returned."""
    mode = spec.get("mode", "frozen")
    if mode not in MODES:
        raise UnknownMode(f"train_wav2vec2.mode={mode!r}: expected one of {MODES}")
    return mode


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
        return torch.where(has_input(features)[:, None], logits, self.log_prior.to(logits.dtype))


class SSLInputs:
    """Layer-weighted head on the SSL features; a fresh head per fold."""

    def __init__(self, labels: pd.DataFrame, audio: np.ndarray, n_classes: int, model_params: Mapping[str, Any]):
        if len(audio) != len(labels):
            raise ValueError(f"wav2vec2: {len(labels)} labels rows, {len(audio)} SSL feature rows")
        self.audio = audio  # float16 as cached; rows become float32 one at a time
        self.missing = missing_rows(audio)
        self.wav_ids = labels["wav_id"].astype(str).to_numpy()
        self.y = labels["label_id"].to_numpy(dtype=np.int64)
        self.n_classes, self.params = n_classes, dict(model_params)

    def examples(self, rows: np.ndarray) -> Examples:
        return Examples(ArrayRows(self.audio[rows], self.y[rows]), self.y[rows], self.wav_ids[rows], stack_collate)

    def model(self, fit_rows: np.ndarray) -> SSLClassifier:
        model = SSLClassifier.from_params(self.audio.shape[1], self.audio.shape[2], self.n_classes, self.params)
        model.norm.fit(self.audio[fit_rows])
        model.log_prior.copy_(torch.from_numpy(class_log_prior(self.y[fit_rows], self.n_classes)))
        return model

    def __call__(self, plan: FoldPlan) -> FoldJob:
        return FoldJob(self.model(plan.fit), self.examples(plan.fit), self.examples(plan.valid),
                       self.examples(plan.holdout), self.examples(plan.test), files=fold_files(plan, self.missing))


def finetune_inputs(params, labels, n_classes: int):
    """The fine-tune fold builder over labels' wav_path, loading audio_encoders.<ssl.model> afresh per fold."""
    from koemo.models.wav2vec2_finetune import FineTuneInputs
    from koemo.ssl.registry import load_audio_encoder, unknown_audio_encoder

    name = params["ssl"]["model"]
    if name not in params["audio_encoders"]:
        raise unknown_audio_encoder(name, params["audio_encoders"], key="ssl.model")
    spec = params["train_wav2vec2"]
    checkpointing = bool(spec.get("gradient_checkpointing", False))
    return FineTuneInputs(labels, lambda: load_audio_encoder(name, params["audio_encoders"][name],
                                                             gradient_checkpointing=checkpointing), n_classes, spec)


def inputs(args, params: Mapping[str, Any], labels: pd.DataFrame, classes: list[str]) -> Built:
    spec = params["train_wav2vec2"]
    mode = check_mode(spec)
    if mode == "finetune":
        build = finetune_inputs(params, labels, len(classes))
        encoder, missing = build.description, 0
        config = {"mode": mode, "ssl_encoder": encoder, "layers": build.layers, "dim": build.dim,
                  "rows_without_audio": missing, "max_samples": build.max_samples, "sample_rate": build.sample_rate}
        source = "fine-tuned"
    else:
        store = SSLStore(args.ssl)
        build = SSLInputs(labels, store.aligned(labels["wav_id"].astype(str).tolist()), len(classes), spec)
        encoder, missing = store.encoder, int(build.missing.sum())
        config = {"ssl_encoder": encoder, "layers": store.layers, "dim": store.dim, "rows_without_audio": missing}
        source = "features of"
    return Built(build, config,
                 finish=lambda paths, metrics, runtime: with_layer_weights(paths, metrics, runtime, encoder, missing),
                 notes=lambda metrics: [f"train_wav2vec2: {source} {encoder['encoder']} ({encoder['source']}); mean layer "
                                        f"weights {metrics['layer_weights']['mean']}"])
