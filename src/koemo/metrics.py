"""Metrics: computed here (classification reports that expose a collapsed model) and written here (the one writer).

Every report carries WA (accuracy), UA (mean per-class recall), macro/weighted F1, the majority-class baseline
on the same rows and a `collapsed` flag: the reference project reported plain accuracy only, so a model that
always said "neutral" looked like a working classifier.

`write_metrics` puts what the params and seed determine in `metrics/<stage>.json` (byte-identical on rerun, so
`dvc metrics diff` shows only real changes) and wall-clock figures (seconds, throughput, device) in
`metrics/runtime/<stage>.json`; dvc.yaml names both files and passes them to the stage (`--metrics`, `--runtime`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from koemo.io import write_json


COLLAPSE_SHARE = 0.9  # a model predicting one class for more than this share of rows has collapsed


def predicted_shares(y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Fraction of rows predicted as each class."""
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if not len(y_pred):
        return np.zeros(n_classes)
    return np.bincount(y_pred, minlength=n_classes)[:n_classes] / len(y_pred)


def is_collapsed(y_pred: np.ndarray, n_classes: int, threshold: float = COLLAPSE_SHARE) -> bool:
    """True when one class takes more than `threshold` of the predictions."""
    return bool(len(y_pred) and predicted_shares(y_pred, n_classes).max() > threshold)


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]) -> dict:
    """WA, UA, macro/weighted F1, per-class P/R/F1, confusion matrix (rows actual, columns predicted), collapse."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    labels = list(range(len(classes)))
    if not len(y_true):
        return {"rows": 0}
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = support > 0  # UA averages recall over the classes that occur in these rows
    shares = predicted_shares(y_pred, len(classes))
    return {
        "rows": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)),  # WA: weighted (overall) accuracy
        "ua": float(recall[present].mean()),
        # near-collapse shows here before `collapsed` trips: one class almost never predicted
        "min_recall": float(recall[present].min()),
        "min_recall_class": classes[int(np.flatnonzero(present)[recall[present].argmin()])],
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "per_class": {name: {"precision": float(precision[k]), "recall": float(recall[k]), "f1": float(f1[k]),
                             "support": int(support[k])} for k, name in enumerate(classes)},
        "confusion": {"classes": list(classes), "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist()},
        "predicted_share": {name: float(shares[k]) for k, name in enumerate(classes)},
        "collapsed": is_collapsed(y_pred, len(classes)),
    }


def majority_class(y_train: np.ndarray, n_classes: int) -> int:
    """The most frequent training class (lowest index on a tie)."""
    return int(np.argmax(np.bincount(np.asarray(y_train, dtype=np.int64), minlength=n_classes)))


def majority_baseline(y_train: np.ndarray, y_true: np.ndarray, classes: Sequence[str]) -> dict:
    """WA / UA / macro-F1 of always predicting the most frequent training class on `y_true`'s rows."""
    k = majority_class(y_train, len(classes))
    report = classification_report(y_true, np.full(len(y_true), k), classes)
    return {"class": classes[k], **{key: report.get(key) for key in ("accuracy", "ua", "macro_f1")}}


def confusion_rows(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]):
    """One `actual,predicted` row per prediction: the table `dvc plots` draws as a confusion matrix."""
    import pandas as pd

    names = np.asarray(classes, dtype=object)
    return pd.DataFrame({"actual": names[np.asarray(y_true, dtype=np.int64)],
                         "predicted": names[np.asarray(y_pred, dtype=np.int64)]})


# ---- the one metrics writer ------------------------------------------------------------------------------------
def add_metrics_args(parser: argparse.ArgumentParser) -> None:
    """`--metrics FILE` (deterministic figures) and `--runtime FILE` (wall-clock figures), as dvc.yaml declares them."""
    parser.add_argument("--metrics", type=Path, required=True, help="metrics/<stage>.json: what params and seed determine")
    parser.add_argument("--runtime", type=Path, help="metrics/runtime/<stage>.json: seconds, throughput, device")


def write_metrics(path: str | os.PathLike, metrics: Mapping[str, Any], runtime_path: str | os.PathLike | None = None,
                  runtime: Mapping[str, Any] | None = None) -> Path:
    """Write `metrics` to `path` and, when both are given, `runtime` to `runtime_path` (atomically, rounded); the
    runtime figures gain the CPU thread budget the stage ran with."""
    from koemo.device import threads_in_use

    write_json(path, dict(metrics))
    if runtime_path is not None and runtime is not None:
        write_json(runtime_path, {**runtime, "threads": threads_in_use()})
    return Path(path)


def format_rate(value: float | None) -> str:
    """Two significant digits, never "0×" for a slow run: 0.22, 3.4, 210, 2100."""
    if value is None or not np.isfinite(value) or value <= 0:
        return "0"
    digits = 1 - int(np.floor(np.log10(value)))
    return f"{value:.{digits}f}" if digits > 0 else f"{round(value, digits):,.0f}"
