"""What the SSL training stages add to the common training runner: the mode check and the learned layer weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from koemo.core.errors import UserError

MODES = ("frozen", "finetune")


class UnknownMode(UserError, ValueError):
    """`train_wav2vec2.mode` is neither frozen nor finetune."""


def check_mode(spec: Mapping[str, Any]) -> str:
    """`train_wav2vec2.mode`: `frozen` (a head on the cached features) or `finetune` (`ssl.finetune`); returned."""
    mode = spec.get("mode", "frozen")
    if mode not in MODES:
        raise UnknownMode(f"train_wav2vec2.mode={mode!r}: expected one of {MODES}")
    return mode


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
