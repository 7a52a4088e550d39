"""The fusion model: a gated multimodal unit (Arevalo et al., 2017) over the text.model sentence embedding and the
ssl.model layer features. Text and audio are projected to one size and a sigmoid gate computed from both decides per
unit how much of each to use. A modality whose input is all zeros counts as missing and is replaced by a learned
"absent" vector; modality dropout blanks one modality per training example at random, so the model also learns to
classify from either alone (`koemo predict` runs it on whatever an utterance carries)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from koemo.core.shards import ShardStore
from koemo.models.layer_features import LayerWeighting, SSLStore, Standardize, fold_files, missing_rows, mlp, has_input, with_layer_weights
from koemo.train.cv import FoldJob, FoldPlan
from koemo.train.data import Examples
from koemo.train.stage import Built

NAME = "fusion"
ARGS = (("--embeddings", "the text_embeddings output of text.model"), ("--ssl", "the ssl_features cache of ssl.model"))
DISTRIBUTED = True
NEEDS = ()  # either modality alone will do (modality dropout)


def used_keys(params: Mapping[str, Any]) -> list[str]:
    """Dotted params keys the model reads."""
    return ["labels.classes", "train", "train_fusion", "text.source", "text.model", f"encoders.{params['text']['model']}",
            "ssl.model", f"audio_encoders.{params['ssl']['model']}", "ssl_features.chunk_seconds", "audio.min_rms_dbfs"]


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
        has_text, has_audio = self._drop_modalities(has_input(text), has_input(audio))
        t = torch.where(has_text[:, None], self.text_proj(self.text_norm(text)), self.absent[0])
        a = torch.where(has_audio[:, None], self.audio_proj(self.layer_weighting(self.audio_norm(audio))), self.absent[1])
        flags = torch.stack([has_text, has_audio], dim=1).to(t.dtype)
        z = torch.sigmoid(self.gate(torch.cat([t, a, flags], dim=1)))
        return z * t + (1 - z) * a, z

    def forward(self, text: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.head(self._fuse(text, audio)[0])


class PairRows(Dataset):
    """(text vector, SSL layer features, label) rows."""

    def __init__(self, text: np.ndarray, audio: np.ndarray, labels: np.ndarray):
        self.text, self.audio, self.labels = text, audio, np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.text[i], np.asarray(self.audio[i], dtype=np.float32), int(self.labels[i])


def pair_collate(items: list) -> dict[str, torch.Tensor]:
    return {"text": torch.from_numpy(np.stack([t for t, _, _ in items])),
            "audio": torch.from_numpy(np.stack([a for _, a, _ in items])),
            "labels": torch.tensor([y for _, _, y in items], dtype=torch.long)}


class FusionInputs:
    """Gated text+audio fusion: the text.model sentence embedding and the SSL layer features of each row."""

    def __init__(self, labels: pd.DataFrame, text: np.ndarray, audio: np.ndarray, n_classes: int,
                 model_params: Mapping[str, Any]):
        if not (len(text) == len(audio) == len(labels)):
            raise ValueError(f"fusion: {len(labels)} labels rows, {len(text)} text rows, {len(audio)} SSL feature rows")
        self.text = np.asarray(text, dtype=np.float32)
        self.audio = audio
        self.missing = missing_rows(audio)
        self.wav_ids = labels["wav_id"].astype(str).to_numpy()
        self.y = labels["label_id"].to_numpy(dtype=np.int64)
        self.n_classes, self.params = n_classes, dict(model_params)

    def examples(self, rows: np.ndarray) -> Examples:
        return Examples(PairRows(self.text[rows], self.audio[rows], self.y[rows]), self.y[rows], self.wav_ids[rows],
                        pair_collate)

    def model(self, fit_rows: np.ndarray) -> GatedFusion:
        model = GatedFusion.from_params(self.text.shape[1], self.audio.shape[1], self.audio.shape[2], self.n_classes,
                                        self.params)
        model.text_norm.fit(self.text[fit_rows])
        model.audio_norm.fit(self.audio[fit_rows])
        return model

    def __call__(self, plan: FoldPlan) -> FoldJob:
        return FoldJob(self.model(plan.fit), self.examples(plan.fit), self.examples(plan.valid), self.examples(plan.holdout),
                       self.examples(plan.test), files=fold_files(plan, self.missing))


def inputs(args, params: Mapping[str, Any], labels: pd.DataFrame, classes: list[str]) -> Built:
    store = SSLStore(args.ssl)
    wav_ids = labels["wav_id"].astype(str).tolist()
    embeddings = ShardStore(args.embeddings)
    text = embeddings.rows(embeddings.originals(wav_ids))
    build = FusionInputs(labels, text, store.aligned(wav_ids), len(classes), params["train_fusion"])
    missing = int(build.missing.sum())
    config = {"text_model": params["text"]["model"], "text_dim": int(text.shape[1]), "ssl_encoder": store.encoder,
              "layers": store.layers, "dim": store.dim, "rows_without_audio": missing}
    return Built(build, config,
                 finish=lambda paths, metrics, runtime: with_layer_weights(paths, metrics, runtime, store.encoder, missing))
