"""The fold builder of every model that reads one feature vector per labels row (multimodal: text embedding ‖ mel
means; egemaps: openSMILE functionals): standardised with statistics of the fold's fitting rows only, saved beside
the fold's weights (`scaler.safetensors`) so prediction standardises the same way.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from torch import nn

from koemo.train.cv import FoldJob, FoldPlan, without_absent
from koemo.train.data import ArrayRows, Examples, stack_collate


def standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and scale (population std; 1 where constant), like sklearn's StandardScaler."""
    x64 = np.asarray(x, dtype=np.float64)
    mean = x64.mean(axis=0)
    scale = x64.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


class VectorInputs:
    """Rows of `x` (one vector per labels row) standardised per fold; `make_model(width)` builds a fresh network.

    `absent`: labels rows without a vector (a clip the features stage listed as failed): left out of training and
    predicted as the fold's class prior by the CV loop.
    """

    def __init__(self, labels: pd.DataFrame, x: np.ndarray, make_model: Callable[[int], nn.Module],
                 files: Mapping[str, Any] | None = None, absent: np.ndarray | None = None):
        if len(x) != len(labels):
            raise ValueError(f"{len(labels)} labels rows, {len(x)} feature rows")
        self.x = np.asarray(x, dtype=np.float32)
        self.make_model, self.files = make_model, dict(files or {})
        self.absent = np.zeros(0, dtype=np.int64) if absent is None else np.asarray(absent, dtype=np.int64)
        self.wav_ids = labels["wav_id"].astype(str).to_numpy()
        self.y = labels["label_id"].to_numpy(dtype=np.int64)

    def examples(self, x: np.ndarray, rows: np.ndarray) -> Examples:
        rows = without_absent(rows, self.absent)
        return Examples(ArrayRows(x[rows], self.y[rows]), self.y[rows], self.wav_ids[rows], stack_collate)

    def __call__(self, plan: FoldPlan) -> FoldJob:
        fit = without_absent(plan.fit, self.absent)
        mean, scale = standardizer(self.x[fit])
        x = ((self.x - mean) / scale).astype(np.float32)
        return FoldJob(self.make_model(self.x.shape[1]), self.examples(x, plan.fit), self.examples(x, plan.valid),
                       self.examples(x, plan.holdout), self.examples(x, plan.test),
                       files={"fold.json": {"scaler_fit_rows": len(fit), "features": int(self.x.shape[1]), **self.files}},
                       arrays={"scaler.safetensors": {"mean": mean, "scale": scale}}, absent=self.absent)
