"""Per-model input builders: given a `FoldPlan`, a fresh model plus its train/valid/holdout/test `Examples`.

Each builder is where a model's fold-specific rules live:
- audio: augmented copies join training only, and only those of the fold's fitting rows;
- multimodal: the standardiser is fit on the fold's fitting rows only and saved with the weights;
- text: the encoder is reloaded from its registry entry for every fold, so no fold starts from another's weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from koemo.train.cv import FoldJob, FoldPlan
from koemo.train.data import ArrayRows, Examples, PadCollate, TokenRows, stack_collate
from koemo.train.models import AudioResNet, MultimodalConv1D, TextClassifier


class FeatureStore:
    """`data/features/<kind>/` (see docs/data-contracts.md): the index plus memory-mapped shards, read lazily."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.index = pd.read_parquet(self.directory / "index.parquet")
        self._shards: dict[int, np.ndarray] = {}
        self._shard = self.index["shard"].to_numpy(dtype=np.int64)
        self._row = self.index["row"].to_numpy(dtype=np.int64)

    def shard(self, k: int) -> np.ndarray:
        if k not in self._shards:
            self._shards[k] = np.load(self.directory / f"shard-{k:03d}.npy", mmap_mode="r", allow_pickle=False)
        return self._shards[k]

    def row(self, position: int) -> np.ndarray:
        """The feature array of index row `position`."""
        return self.shard(int(self._shard[position]))[int(self._row[position])]

    def rows(self, positions: Sequence[int]) -> np.ndarray:
        return np.stack([np.asarray(self.row(p), dtype=np.float32) for p in positions]) if len(positions) else \
            np.zeros((0, *self.shard(0).shape[1:]), dtype=np.float32)

    def originals(self, wav_ids: Sequence[str]) -> np.ndarray:
        """Index positions of the un-augmented rows of `wav_ids`, in that order (raises on a missing one)."""
        original = self.index[self.index["aug"].astype(str) == ""]
        position = pd.Series(original.index.to_numpy(), index=original["wav_id"].astype(str).to_numpy())
        if position.index.has_duplicates:
            raise ValueError(f"{self.directory}: duplicate original rows for a wav_id")
        missing = pd.Index(wav_ids).difference(position.index)
        if len(missing):
            raise ValueError(f"{self.directory}: {len(missing)} labels row(s) have no features (e.g. {missing[0]}); "
                             "rerun the audio_features stage")
        return position.loc[list(wav_ids)].to_numpy(dtype=np.int64)

    def augmented(self) -> dict[str, np.ndarray]:
        """wav_id → index positions of its augmented copies (index order)."""
        aug = self.index[self.index["aug"].astype(str) != ""]
        return {str(k): v.to_numpy(dtype=np.int64) for k, v in aug.groupby(aug["wav_id"].astype(str), sort=True).groups.items()}


def _rows_examples(fetch: Callable[[int], np.ndarray], n: int, labels: np.ndarray, ids: np.ndarray) -> Examples:
    return Examples(ArrayRows(fetch, labels, n), labels, ids, stack_collate)


class AudioInputs:
    """ResNet-on-mel folds: originals for every role, plus the fitting rows' augmented copies for training."""

    def __init__(self, labels: pd.DataFrame, store: FeatureStore, n_classes: int, model_params: Mapping[str, Any]):
        self.store, self.n_classes, self.params = store, n_classes, dict(model_params)
        self.wav_ids = labels["wav_id"].astype(str).to_numpy()
        self.y = labels["label_id"].to_numpy(dtype=np.int64)
        self.original = store.originals(self.wav_ids)           # labels row → index position
        self.copies = store.augmented() if self.params.get("use_augmented", True) else {}
        train_ids = set(self.wav_ids[labels["split"].to_numpy() == "train"])
        if not set(self.copies) <= train_ids:
            raise ValueError(f"{store.directory}: augmented rows exist for non-training wav_ids (contract: train only)")

    def examples(self, rows: np.ndarray, with_copies: bool = False) -> Examples:
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
        augmented = len(train) - len(plan.fit)
        return FoldJob(self.model(), train, self.examples(plan.valid), self.examples(plan.holdout), self.examples(plan.test),
                       files={"fold.json": {"fit_rows": len(plan.fit), "augmented_rows": augmented,
                                            "valid_rows": len(plan.valid), "holdout_rows": len(plan.holdout)}})


def standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and scale (population std; 1 where constant), like sklearn's StandardScaler."""
    x64 = np.asarray(x, dtype=np.float64)
    mean = x64.mean(axis=0)
    scale = x64.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


def aligned_rows(index: pd.DataFrame, wav_ids: Sequence[str], what: str) -> np.ndarray:
    """`row` of each wav_id in an `index.parquet` (wav_id,row), in `wav_ids` order."""
    position = pd.Series(index["row"].to_numpy(dtype=np.int64), index=index["wav_id"].astype(str).to_numpy())
    missing = pd.Index(wav_ids).difference(position.index)
    if len(missing):
        raise ValueError(f"{what}: {len(missing)} labels row(s) missing (e.g. {missing[0]}); rerun its stage")
    return position.loc[list(wav_ids)].to_numpy()


class MultimodalInputs:
    """[text embedding ‖ mel means] per labels row, standardised with statistics of the fold's fitting rows."""

    def __init__(self, labels: pd.DataFrame, text: np.ndarray, audio: np.ndarray, n_classes: int,
                 model_params: Mapping[str, Any]):
        if not (len(text) == len(audio) == len(labels)):
            raise ValueError(f"multimodal: {len(labels)} labels rows, {len(text)} text rows, {len(audio)} audio rows")
        self.x = np.concatenate([np.asarray(text, np.float32), np.asarray(audio, np.float32)], axis=1)
        self.text_dim = int(text.shape[1])
        self.wav_ids = labels["wav_id"].astype(str).to_numpy()
        self.y = labels["label_id"].to_numpy(dtype=np.int64)
        self.n_classes, self.params = n_classes, dict(model_params)

    def examples(self, x: np.ndarray, rows: np.ndarray) -> Examples:
        return Examples(ArrayRows(x[rows], self.y[rows]), self.y[rows], self.wav_ids[rows], stack_collate)

    def model(self) -> MultimodalConv1D:
        return MultimodalConv1D.from_params(self.x.shape[1], self.n_classes, self.params)

    def __call__(self, plan: FoldPlan) -> FoldJob:
        mean, scale = standardizer(self.x[plan.fit])
        x = ((self.x - mean) / scale).astype(np.float32)
        return FoldJob(self.model(), self.examples(x, plan.fit), self.examples(x, plan.valid), self.examples(x, plan.holdout),
                       self.examples(x, plan.test),
                       files={"fold.json": {"scaler_fit_rows": len(plan.fit), "features": int(self.x.shape[1]),
                                            "text_features": self.text_dim}},
                       arrays={"scaler.safetensors": {"mean": mean, "scale": scale}})


class TextInputs:
    """Fine-tuning folds: token ids computed once; a fresh encoder (registry weights) + new head per fold."""

    def __init__(self, labels: pd.DataFrame, load_encoder: Callable[[], Any], n_classes: int, model_params: Mapping[str, Any]):
        self.load_encoder = load_encoder
        encoder = load_encoder()
        self.ids = encoder.encode(labels["text"].astype(str).tolist())
        self.pad_id, self.pooling = encoder.pad_id, encoder.pooling
        self.lengths = np.array([len(row) for row in self.ids], dtype=np.int64)
        self.wav_ids = labels["wav_id"].astype(str).to_numpy()
        self.y = labels["label_id"].to_numpy(dtype=np.int64)
        self.n_classes, self.params = n_classes, dict(model_params)
        self.source = encoder.source

    def examples(self, rows: np.ndarray) -> Examples:
        return Examples(TokenRows([self.ids[r] for r in rows], self.y[rows]), self.y[rows], self.wav_ids[rows],
                        PadCollate(self.pad_id), lengths=self.lengths[rows])

    def model(self) -> TextClassifier:
        encoder = self.load_encoder()
        return TextClassifier(encoder.model, self.n_classes, pooling=encoder.pooling, dropout=float(self.params["dropout"]))

    def __call__(self, plan: FoldPlan) -> FoldJob:
        return FoldJob(self.model(), self.examples(plan.fit), self.examples(plan.valid), self.examples(plan.holdout),
                       self.examples(plan.test),
                       files={"fold.json": {"fit_rows": len(plan.fit), "valid_rows": len(plan.valid),
                                            "holdout_rows": len(plan.holdout)}})
