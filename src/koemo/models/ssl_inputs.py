"""Fold builders for the SSL head and the text+audio fusion, on the shared split via the common CV loop.

Both read `data/ssl/<encoder>/` (features + index) aligned to labels order. A labels row whose clip has no
SSL features (a decode failure `ssl_features` counted and listed) gets all-zero features: the fusion model
treats that as missing audio and predicts from text, the SSL head predicts its fold's training class prior
for it; the training metrics count those rows. Nothing is standardised with statistics from outside a fold:
each fold's model standardises with statistics of its own fitting rows (`heads.Standardize`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from koemo.core.shards import ShardStore
from koemo.models.ssl_heads import GatedFusion, SSLClassifier
from koemo.train.cv import FoldJob, FoldPlan, class_prior
from koemo.train.data import ArrayRows, Examples, stack_collate


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


def _fold_files(plan: FoldPlan, missing: np.ndarray) -> dict:
    return {"fold.json": {"fit_rows": len(plan.fit), "valid_rows": len(plan.valid), "holdout_rows": len(plan.holdout),
                          "fit_rows_without_audio": int(missing[plan.fit].sum())}}


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
                       self.examples(plan.holdout), self.examples(plan.test), files=_fold_files(plan, self.missing))


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
                       self.examples(plan.test), files=_fold_files(plan, self.missing))
