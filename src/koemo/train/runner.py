"""What every training stage does once its inputs are built: CV, then predictions, models, metrics, plots.

Outputs of model `<m>` (stage `train_<m>`; dvc.yaml passes every path): the predictions parquet, the model
directory (config.json + fold<k>/model.safetensors and fold files), the metrics and runtime JSON, the test
confusion CSV and the dvclive curves.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from koemo.io import atomic_dir, write_csv, write_json, write_parquet
from koemo.metrics import add_metrics_args, write_metrics
from koemo.train.cv import CVResult, FoldJob, FoldPlan, confusion_table, plan_folds, predictions_frame, run_cv, summarize
from koemo.train.trainer import TrainConfig, Trainer, describe_device

LABEL_COLUMNS = ["wav_id", "wav_path", "text", "split", "fold", "group", "label", "label_id"]


@dataclass(frozen=True)
class TrainingPaths:
    """Where a training stage reads its labels and writes its outputs (dvc.yaml's `cmd:` arguments)."""

    labels: Path
    model_dir: Path
    predictions: Path
    confusion: Path
    live: Path
    metrics: Path
    runtime: Path

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainingPaths":
        return cls(args.labels, args.model_dir, args.predictions, args.confusion, args.live, args.metrics, args.runtime)


def training_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every training stage takes; a stage adds its own input paths."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--labels", type=Path, required=True, help="data/labels.parquet")
    parser.add_argument("--model-dir", type=Path, required=True, help="fold weights + config.json")
    parser.add_argument("--predictions", type=Path, required=True, help="OOF + fold-mean test probabilities (parquet)")
    parser.add_argument("--confusion", type=Path, required=True, help="test confusion rows for dvc plots (CSV)")
    parser.add_argument("--live", type=Path, required=True, help="dvclive directory of the training curves")
    add_metrics_args(parser)
    return parser


def read_labels(path: str | Path, classes: Sequence[str]) -> pd.DataFrame:
    """labels.parquet, checked against `labels.classes` (label_id must index that list)."""
    labels = pd.read_parquet(path, columns=LABEL_COLUMNS)
    names = np.asarray(list(classes), dtype=object)
    ids = labels["label_id"].to_numpy(dtype=np.int64)
    if len(ids) and (ids.min() < 0 or ids.max() >= len(names) or (names[ids] != labels["label"].to_numpy()).any()):
        raise ValueError(f"{path}: label/label_id disagree with labels.classes {list(classes)}; rerun the labels stage")
    return labels.reset_index(drop=True)


def open_live(directory: str | Path):
    """dvclive curves that never create experiments or touch dvc.yaml (dvc.yaml declares the plots)."""
    from dvclive import Live

    return Live(dir=str(directory), dvcyaml=None, save_dvc_exp=False, report=None)


def run_training_stage(model: str, labels: pd.DataFrame, classes: Sequence[str], shared: Mapping[str, Any],
                       specific: Mapping[str, Any], build: Callable[[FoldPlan], FoldJob], config: Mapping[str, Any],
                       paths: TrainingPaths, live: bool = True, recorded: Mapping[str, Any] | None = None) -> tuple[dict, dict]:
    """Train every fold of `model`, write all its outputs; return (metrics, runtime).

    `recorded`: the params the model depends on (`koemo.lineage.used_params`), kept in its config.json so
    `koemo predict` can refuse weights built with other params; default: the `train` and `train_<model>` sections.
    """
    start = time.perf_counter()
    train_config = TrainConfig.from_params(shared, specific)
    trainer = Trainer(train_config, len(classes))
    folds, valid_fraction = int(shared["folds"]), float(shared["valid_fraction"])
    plans = plan_folds(labels, folds, valid_fraction, int(shared["seed"]))
    logger = open_live(paths.live) if live and trainer.is_main_process else None
    # Under `accelerate launch` only the main process writes; the others train their shard of each batch.
    with (atomic_dir(paths.model_dir) if trainer.is_main_process else nullcontext()) as tmp:
        result = run_cv(labels, plans, build, trainer, out_dir=tmp, live=logger)
        if tmp is not None:
            write_json(tmp / "config.json", {"model": model, "classes": list(classes), "folds": folds,
                                             "params": dict(recorded) if recorded is not None else
                                             {"train": dict(shared), f"train_{model}": dict(specific)}, **config})
    if logger is not None:
        logger.make_summary()
        logger.end()
    metrics = {"model": model, **summarize(labels, result, classes, folds, valid_fraction)}
    runtime = runtime_figures(result, trainer, time.perf_counter() - start)
    if trainer.is_main_process:
        write_parquet(paths.predictions, predictions_frame(labels, result, classes))
        write_csv(paths.confusion, confusion_table(labels, result, classes))
        write_metrics(paths.metrics, metrics, paths.runtime, runtime)
    trainer.accelerator.wait_for_everyone()
    return metrics, runtime


def runtime_figures(result: CVResult, trainer: Trainer, seconds: float) -> dict:
    samples = sum(r.fit.train_samples for r in result.records)
    train_seconds = sum(r.fit.train_seconds for r in result.records)
    return {"seconds": seconds, "train_seconds": train_seconds,
            "train_samples_per_second": samples / train_seconds if train_seconds > 0 else None,
            "device": describe_device(trainer.device), "precision": trainer.precision,
            "processes": trainer.accelerator.num_processes}


def headline(model: str, metrics: Mapping[str, Any], runtime: Mapping[str, Any]) -> str:
    test, base = metrics["test"], metrics["baseline"]["test"]
    epochs = ", ".join(f"{f['epochs_run']}(best {f['best_epoch']})" for f in metrics["folds"])
    return (f"train_{model}: test UA {test['ua']:.3f} / WA {test['accuracy']:.3f} / macro-F1 {test['macro_f1']:.3f} "
            f"vs majority baseline UA {base['ua']:.3f} ({base['class']}); OOF UA {metrics['oof'].get('ua', float('nan')):.3f}"
            f"{'; COLLAPSED' if metrics['collapsed'] else ''}; epochs {epochs}; "
            f"{runtime['train_samples_per_second'] or 0:.0f} samples/s on {runtime['device']} ({runtime['precision']}), "
            f"{runtime['seconds']:.0f} s")
