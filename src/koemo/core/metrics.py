"""Metrics: computed here (classification reports that expose a collapsed model) and written here (the one writer).

Every report carries WA (accuracy), UA (mean per-class recall), macro/weighted F1, the majority-class baseline
on the same rows and a `collapsed` flag: the reference project reported plain accuracy only, so a model that
always said "neutral" looked like a working classifier.

`write_metrics` splits what a stage knows three ways, so DVC's tables stay readable:

- `metrics/<stage>.json` (dvc.yaml `metrics:`, committed): the headline only. Every training stage and the stack
  carry the same `MODEL_HEADLINE` keys, so `dvc metrics show` is a models x figures table; a data stage a handful of
  counts (`DATA_HEADLINE`). Byte-identical on rerun, so `dvc metrics diff` shows only real changes.
- `reports/<stage>.json` (a cached `outs:`): every detail (per-class, confusion, CV folds, intervals, per-group,
  paired bootstraps, protocol, lineage). Deterministic too; DVC versions it and restores it from the run-cache;
  `koemo report` reads it at any revision.
- `reports/runtime/<stage>.json` (a cached `outs:`): wall-clock figures (seconds, throughput, device, threads),
  which differ on every run and so are no metric.

dvc.yaml names the three files and passes them to the stage (`--metrics`, `--report`, `--runtime`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from koemo.core.io import write_json


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
    # here, not at the top: every stage imports this module (the writer), and sklearn.metrics (+ scipy) costs ~1 s
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

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


# ---- the headline: what `dvc metrics show` / `dvc exp show` / `dvc metrics diff` print -------------------------
# The same keys, in this order, for every training stage and the stack: a models x figures table.
MODEL_HEADLINE = ("test_ua", "test_wa", "test_macro_f1", "test_ua_lo", "test_ua_hi", "oof_ua", "baseline_ua",
                  "collapsed")

# A data stage's few counts, by stage (the report file keeps the rest). Shared names where the meaning is shared.
DATA_HEADLINE = {
    "demo": ("utterances", "speakers"),
    "corpus": ("rows_read", "rows_kept", "rows_dropped", "audio_hours"),
    "labels": ("rows_in", "rows_kept", "groups", "fleiss_kappa"),
    "tiny_encoders": ("encoders",),
    "tiny_audio_encoders": ("encoders",),
    "text_embeddings": ("rows", "unique_texts", "unknown_token_share"),
    "audio_features": ("clips_in", "clips", "failed", "audio_seconds"),
    "egemaps_features": ("clips_in", "clips", "failed", "audio_seconds"),
    "ssl_features": ("clips_in", "clips", "failed", "audio_seconds"),
    "tiny_asr": ("encoders",),
    "transcribe": ("rows", "transcribed", "failed"),          # + test_cer / test_wer (stages/transcribe.py)
    "text_source": ("rows", "rows_differing_from_transcript", "empty"),
}


def model_headline(report: Mapping[str, Any]) -> dict:
    """`MODEL_HEADLINE` of a training stage's or the stack's report: test UA / WA / macro-F1, the UA interval's
    bounds (null without an interval), OOF UA (the stack: its nested-CV UA, null when it chose by another metric),
    the majority baseline's test UA and `collapsed`."""
    test = report.get("test", {})
    ci = report.get("test_ci", {}).get("ua", {})
    baseline = report.get("baseline", {})
    baseline = baseline.get("test", baseline)          # a training stage: {oof, test}; the stack: the test figures
    if "oof" in report:
        oof_ua = report["oof"].get("ua")
    else:  # the stack: OOF of the nested CV that chose it
        choice = report.get("choice", {})
        oof_ua = choice.get("nested_cv", {}).get("stack") if report.get("select_by", "ua") == "ua" else None
    values = {"test_ua": test.get("ua"), "test_wa": test.get("accuracy"), "test_macro_f1": test.get("macro_f1"),
              "test_ua_lo": ci.get("lo"), "test_ua_hi": ci.get("hi"), "oof_ua": oof_ua,
              "baseline_ua": baseline.get("ua"), "collapsed": bool(report.get("collapsed", False))}
    return {key: values[key] for key in MODEL_HEADLINE}


def data_headline(kind: str, report: Mapping[str, Any]) -> dict:
    """`DATA_HEADLINE[kind]` of a data stage's report (`encoders`: how many models the stage built)."""
    if kind not in DATA_HEADLINE:
        raise KeyError(f"no headline keys for data stage kind {kind!r}; add it to koemo.core.metrics.DATA_HEADLINE")
    if DATA_HEADLINE[kind] == ("encoders",):
        return {"encoders": len(report)}
    return {key: report.get(key) for key in DATA_HEADLINE[kind]}


# ---- the one metrics writer ------------------------------------------------------------------------------------
def add_metrics_args(parser: argparse.ArgumentParser) -> None:
    """`--metrics`, `--report` and `--runtime` FILE, as dvc.yaml declares them."""
    parser.add_argument("--metrics", type=Path, required=True,
                        help="metrics/<stage>.json: the headline figures (`dvc metrics show`)")
    parser.add_argument("--report", type=Path, required=True,
                        help="reports/<stage>.json: every detail the stage measured (a cached output)")
    parser.add_argument("--runtime", type=Path, help="reports/runtime/<stage>.json: seconds, throughput, device")


def write_metrics(path: str | os.PathLike, headline: Mapping[str, Any], report_path: str | os.PathLike,
                  report: Mapping[str, Any], runtime_path: str | os.PathLike | None = None,
                  runtime: Mapping[str, Any] | None = None) -> Path:
    """Write the `headline` to `path`, the full `report` to `report_path` and, when both are given, `runtime` to
    `runtime_path` (each atomically, rounded); the runtime figures gain the CPU thread budget the stage ran with."""
    from koemo.core.device import threads_in_use

    write_json(report_path, dict(report))
    if runtime_path is not None and runtime is not None:
        write_json(runtime_path, {**runtime, "threads": threads_in_use()})
    write_json(path, dict(headline))  # last: a stage that stops midway leaves no fresh headline over old details
    return Path(path)


def format_rate(value: float | None) -> str:
    """Two significant digits, never "0×" for a slow run: 0.22, 3.4, 210, 2100."""
    if value is None or not np.isfinite(value) or value <= 0:
        return "0"
    digits = 1 - int(np.floor(np.log10(value)))
    return f"{value:.{digits}f}" if digits > 0 else f"{round(value, digits):,.0f}"
