"""What every training stage does once its inputs are built: CV, then predictions, models, metrics, plots.

Outputs of model `<m>` (stage `train_<m>`; dvc.yaml passes every path): the predictions parquet, the model
directory (config.json + fold<k>/model.safetensors and fold files), the metrics and runtime JSON, the test
confusion CSV and the dvclive curves.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from koemo.io import atomic_dir, write_csv, write_json, write_parquet
from koemo.metrics import add_metrics_args, format_rate, write_metrics
from koemo.train.cv import (CVResult, FoldJob, FoldPlan, confusion_table, kept_files, plan_folds, predictions_frame,
                            run_cv, summarize)
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
    resume_dir: Path | None = None           # finished folds and the fold in progress of an interrupted run
    inputs: tuple[Path, ...] = ()            # what the model reads besides labels (features, embeddings, …)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainingPaths":
        outputs = {"model_dir", "predictions", "confusion", "live", "metrics", "runtime", "resume_dir", "labels"}
        inputs = tuple(value for key, value in sorted(vars(args).items()) if key not in outputs and isinstance(value, Path))
        return cls(args.labels, args.model_dir, args.predictions, args.confusion, args.live, args.metrics, args.runtime,
                   args.resume_dir, inputs)


def training_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every training stage takes; a stage adds its own input paths."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--labels", type=Path, required=True, help="the labels stage's table (parquet)")
    parser.add_argument("--model-dir", type=Path, required=True, help="fold weights + config.json")
    parser.add_argument("--predictions", type=Path, required=True, help="OOF + fold-mean test probabilities (parquet)")
    parser.add_argument("--confusion", type=Path, required=True, help="test confusion rows for dvc plots (CSV)")
    parser.add_argument("--live", type=Path, required=True, help="dvclive directory of the training curves")
    parser.add_argument("--resume-dir", type=Path, help="where an interrupted run's finished folds wait for a rerun "
                                                        "(git- and dvc-ignored; removed when the stage completes)")
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


def write_curves(directory: str | Path, result: CVResult) -> None:
    """The dvclive training curves of every fold (step = epoch), written to a temp directory and swapped in whole:
    an interrupted stage never leaves half of them. dvclive here never creates experiments or touches dvc.yaml."""
    from dvclive import Live

    with atomic_dir(directory) as tmp:
        live = Live(dir=str(tmp), dvcyaml=None, save_dvc_exp=False, report=None)
        for record in result.records:
            for row in record.fit.history:
                live.step = row["epoch"]
                for key, value in row.items():
                    if key != "epoch":
                        live.log_metric(f"fold{record.fold}/{key}", float(value), timestamp=False)
        live.make_summary()
        live.end()


def resume_key(model: str, recorded: Mapping[str, Any], paths: TrainingPaths) -> str:
    """What an interrupted run's folds are valid for: the model, its params, its inputs (each file's size and
    modification time) and the code (every koemo source file and stage script). Anything changed → a fresh start."""
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps({"model": model, "params": recorded}, sort_keys=True, default=str).encode())
    for root in (paths.labels, *paths.inputs):
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for f in files:
            if f.is_file():
                stat = f.stat()
                digest.update(f"{f.as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    code = Path(__file__).resolve().parents[1]
    for f in sorted([*code.rglob("*.py"), *Path("stages").glob("*.py")]):
        digest.update(f.as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:16]


def run_training_stage(model: str, labels: pd.DataFrame, classes: Sequence[str], shared: Mapping[str, Any],
                       specific: Mapping[str, Any], build: Callable[[FoldPlan], FoldJob], config: Mapping[str, Any],
                       paths: TrainingPaths, live: bool = True, recorded: Mapping[str, Any] | None = None) -> tuple[dict, dict]:
    """Train every fold of `model`, write all its outputs; return (metrics, runtime).

    `recorded`: the params the model depends on (`koemo.lineage.used_params`), kept in its config.json so
    `koemo predict` can refuse weights built with other params; default: the `train` and `train_<model>` sections.
    With `paths.resume_dir`, each fold is kept there as it completes (and the fold in progress checkpointed per
    epoch) under a key of params, inputs and code; a rerun after a crash reuses them, and the directory is removed
    once every output is written.
    """
    import shutil

    start = time.perf_counter()
    recorded = dict(recorded) if recorded is not None else {"train": dict(shared), f"train_{model}": dict(specific)}
    train_config = TrainConfig.from_params(shared, specific)
    trainer = Trainer(train_config, len(classes))
    folds, valid_fraction = int(shared["folds"]), float(shared["valid_fraction"])
    plans = plan_folds(labels, folds, valid_fraction, int(shared["seed"]))
    with ExitStack() as stack:
        if paths.resume_dir is not None:
            fold_store = Path(paths.resume_dir) / resume_key(model, recorded, paths)
            for stale in Path(paths.resume_dir).glob("*"):  # another key: params, inputs or code changed since
                if stale != fold_store:
                    shutil.rmtree(stale, ignore_errors=True)
        else:
            fold_store = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"koemo-{model}-folds-")))
        result = run_cv(labels, plans, build, trainer, out_dir=fold_store, resume=paths.resume_dir is not None)
        metrics = {"model": model, **summarize(labels, result, classes, folds, valid_fraction)}
        runtime = runtime_figures(result, trainer, time.perf_counter() - start)
        # Under `accelerate launch` only the main process writes; the others trained their shard of each batch.
        if trainer.is_main_process:
            with atomic_dir(paths.model_dir) as tmp:
                for plan in plans:
                    (tmp / f"fold{plan.fold}").mkdir()
                    for f in kept_files(fold_store / f"fold{plan.fold}"):
                        shutil.copy2(f, tmp / f"fold{plan.fold}" / f.name)
                write_json(tmp / "config.json", {"model": model, "classes": list(classes), "folds": folds,
                                                 "params": recorded, **config})
            if live:
                write_curves(paths.live, result)
            write_parquet(paths.predictions, predictions_frame(labels, result, classes))
            write_csv(paths.confusion, confusion_table(labels, result, classes))
            write_metrics(paths.metrics, metrics, paths.runtime, runtime)
    trainer.accelerator.wait_for_everyone()
    if paths.resume_dir is not None and trainer.is_main_process:
        shutil.rmtree(paths.resume_dir, ignore_errors=True)
        try:
            Path(paths.resume_dir).parent.rmdir()  # data/.resume, once no other model waits there
        except OSError:
            pass
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
            f"{format_rate(runtime['train_samples_per_second'])} samples/s on {runtime['device']} ({runtime['precision']}), "
            f"{runtime['seconds']:.0f} s")
