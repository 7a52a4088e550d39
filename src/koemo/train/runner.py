"""What every training stage does once its inputs are built: CV, then predictions, models, metrics, plots.

Outputs of model `<m>` (stage `train_<m>`; dvc.yaml passes every path): the predictions parquet, the model
directory (config.json + fold<k>/model.safetensors and fold files), the headline metrics, the report (every
detail) and the runtime JSON (`koemo.core.metrics.write_metrics`), the test confusion CSV and the dvclive curves.
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

from koemo.core.io import atomic_dir, write_csv, write_json, write_parquet
from koemo.core.metrics import format_rate, model_headline, write_metrics
from koemo.core.runner import stage_parser
from koemo.train.cv import (CVResult, FoldJob, FoldPlan, FoldTrainer, confusion_table, cross_validate, kept_files,
                            plan_folds, predictions_frame, summarize, torch_folds)
from koemo.train.distributed import broadcast
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
    metrics: Path                            # the headline (`koemo.core.metrics.MODEL_HEADLINE`)
    runtime: Path
    report: Path                             # every detail: per-class, confusion, CV folds, intervals, per-group, …
    resume_dir: Path | None = None           # finished folds and the fold in progress of an interrupted run
    inputs: tuple[Path, ...] = ()            # what the model reads besides labels (features, embeddings, …)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainingPaths":
        outputs = {"model_dir", "predictions", "confusion", "live", "metrics", "runtime", "report", "resume_dir", "labels"}
        inputs = tuple(value for key, value in sorted(vars(args).items()) if key not in outputs and isinstance(value, Path))
        return cls(args.labels, args.model_dir, args.predictions, args.confusion, args.live, args.metrics, args.runtime,
                   args.report, args.resume_dir, inputs)


def training_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every training stage takes (`stage_parser`'s, plus --resume-dir); a stage adds its own inputs."""
    parser = stage_parser(description, ("--labels", "the labels stage's table (parquet)"),
                          ("--model-dir", "fold weights + config.json"),
                          ("--predictions", "OOF + fold-mean test probabilities (parquet)"),
                          ("--confusion", "test confusion rows for dvc plots (CSV)"),
                          ("--live", "dvclive directory of the training curves"))
    parser.add_argument("--resume-dir", type=Path, help="where an interrupted run's finished folds wait for a rerun "
                                                        "(git- and dvc-ignored; removed when the stage completes)")
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
        live.end()
        # the per-fold scalars stay curves (plots): dvclive's summary of their last values is no headline metric
        (Path(tmp) / "metrics.json").unlink(missing_ok=True)


def resume_key(model: str, recorded: Mapping[str, Any], paths: TrainingPaths) -> str:
    """What an interrupted run's folds are valid for: the model, its params, the content of its inputs and of the
    code (every koemo source file and the running stage script). Anything changed → a fresh start. Content, not file times:
    `dvc checkout` or a rerun of an upstream stage that writes the same bytes must not lose finished folds."""
    import hashlib
    import json

    digest = hashlib.blake2b(json.dumps({"model": model, "params": recorded}, sort_keys=True, default=str).encode(),
                             digest_size=16)
    import sys

    code = Path(__file__).resolve().parents[1]
    script = [Path(sys.argv[0])] if Path(sys.argv[0]).is_file() else []  # the stage script running
    roots = [paths.labels, *paths.inputs, code, *script]
    for root in roots:
        files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix != ".pyc") if root.is_dir() else [root]
        for f in files:
            digest.update(f.as_posix().encode() + b"\0")
            with open(f, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(block)
    return digest.hexdigest()


def fit_folds_and_write(model: str, labels: pd.DataFrame, classes: Sequence[str], shared: Mapping[str, Any],
                       specific: Mapping[str, Any], build: Callable[[FoldPlan], FoldJob] | None, config: Mapping[str, Any],
                       paths: TrainingPaths, live: bool = True, recorded: Mapping[str, Any] | None = None,
                       train_fold: FoldTrainer | None = None,
                       evaluation: Mapping[str, Any] | None = None) -> tuple[dict, dict]:
    """Train every fold of `model`, write all its outputs; return (metrics, runtime).

    A network gives `build` (its fold inputs; the one `Trainer` fits them); any other model gives `train_fold` (e.g.
    `train.tfidf.tfidf_folds`) and gets the same folds, resume, outputs and metrics, without epochs or curves.
    `recorded`: the params the model depends on (`koemo.train.lineage.used_params` of the model's `used_keys`), kept in its config.json so
    `koemo predict` can refuse weights built with other params; default: the `train` and `train_<model>` sections.
    With `paths.resume_dir`, each fold is kept there as it completes (and the fold in progress checkpointed per
    epoch) under a key of params, inputs and code; a rerun after a crash reuses them, and the directory is removed
    once every output is written. Under several processes (`koemo.train.distributed`) every one trains and predicts
    its share; only the main one looks in and writes the resume directory and writes the outputs.
    `evaluation` (`koemo.train.evaluation.evaluation_params`): add the protocol, bootstrap
    intervals and per-group results of the test set to the metrics.
    """
    import shutil

    start = time.perf_counter()
    recorded = dict(recorded) if recorded is not None else {"train": dict(shared), f"train_{model}": dict(specific)}
    folds, valid_fraction = int(shared["folds"]), float(shared["valid_fraction"])
    plans = plan_folds(labels, folds, valid_fraction, int(shared["seed"]))
    trainer = None if train_fold is not None else Trainer(TrainConfig.from_params(shared, specific), len(classes))
    main_process = trainer is None or trainer.is_main_process
    if trainer is not None:
        train_fold = torch_folds(labels, build, trainer)
    else:
        valid_fraction = 0.0  # fitted on the whole training part of each fold: no early-stopping slice
    with ExitStack() as stack:
        if paths.resume_dir is not None:
            fold_store = Path(paths.resume_dir) / broadcast(resume_key(model, recorded, paths) if main_process else None)
            for stale in Path(paths.resume_dir).glob("*") if main_process else ():  # another key: params, inputs or code changed
                if stale != fold_store:
                    shutil.rmtree(stale, ignore_errors=True)
        else:
            fold_store = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"koemo-{model}-folds-")))
        result = cross_validate(labels, plans, train_fold, len(classes), out_dir=fold_store,
                                resume=paths.resume_dir is not None, progress=main_process and (trainer is None or trainer.config.progress),
                                saves=main_process, share=broadcast)
        metrics = {"model": model, **summarize(labels, result, classes, folds, valid_fraction), "params": dict(recorded)}
        if evaluation is not None:
            from koemo.train.evaluation import attach_groups, evaluate_test

            test_rows = labels["split"].to_numpy() == "test"
            metrics.update(evaluate_test(attach_groups(labels, paths.labels), result.test[test_rows].argmax(axis=1),
                                         classes, evaluation))
        runtime = runtime_figures(result, trainer, time.perf_counter() - start)
        # Under several processes only the main one writes; the others trained their slice of each batch and wait.
        if main_process:
            warn_near_collapse(model, metrics, float(shared.get("warn_min_recall", 0.2)))
            with atomic_dir(paths.model_dir) as tmp:
                for plan in plans:
                    (tmp / f"fold{plan.fold}").mkdir()
                    for f in kept_files(fold_store / f"fold{plan.fold}"):
                        shutil.copy2(f, tmp / f"fold{plan.fold}" / f.name)
                write_json(tmp / "config.json", {"model": model, "classes": list(classes), "folds": folds,
                                                 "params": recorded, **config})
            if live and trainer is not None:
                write_curves(paths.live, result)
            write_parquet(paths.predictions, predictions_frame(labels, result, classes))
            write_csv(paths.confusion, confusion_table(labels, result, classes))
            write_stage_metrics(paths, metrics, runtime)
    if trainer is not None and trainer.accelerator.num_processes > 1:
        import torch.distributed as dist

        trainer.accelerator.wait_for_everyone()
        dist.destroy_process_group()  # the stage's group ends with its outputs written
    if paths.resume_dir is not None and main_process:
        shutil.rmtree(paths.resume_dir, ignore_errors=True)
        try:
            Path(paths.resume_dir).parent.rmdir()  # data/.resume, once no other model waits there
        except OSError:
            pass
    return metrics, runtime


def write_stage_metrics(paths: TrainingPaths, report: Mapping[str, Any], runtime: Mapping[str, Any]) -> None:
    """A training stage's headline, report and runtime files (the one writer, `koemo.core.metrics.write_metrics`)."""
    write_metrics(paths.metrics, model_headline(report), paths.report, report, paths.runtime, runtime)


def warn_near_collapse(model: str, metrics: Mapping[str, Any], threshold: float) -> None:
    """A warning on stderr when a class is almost never recovered on the test set (its recall below `threshold`,
    `train.warn_min_recall`): the model may still beat the baseline while effectively ignoring that class."""
    import sys

    test = metrics["test"]
    if test.get("rows") and test["min_recall"] < threshold:
        print(f"train_{model}: WARNING: test recall of {test['min_recall_class']!r} is {test['min_recall']:.3f}, below "
              f"train.warn_min_recall={threshold} (predicted for {test['predicted_share'][test['min_recall_class']]:.1%} "
              f"of test rows): the model nearly ignores that class; see reports/train_{model}.json", file=sys.stderr)


def runtime_figures(result: CVResult, trainer: Trainer | None, seconds: float) -> dict:
    samples = sum(r.fit.train_samples for r in result.records)
    train_seconds = sum(r.fit.train_seconds for r in result.records)
    where = ({"device": describe_device(trainer.device), "precision": trainer.precision,
              "processes": trainer.accelerator.num_processes} if trainer is not None else
             {"device": "cpu", "precision": "fp64 (scikit-learn)", "processes": 1})
    return {"seconds": seconds, "train_seconds": train_seconds,
            "train_samples_per_second": samples / train_seconds if train_seconds > 0 else None, **where}


def headline(model: str, metrics: Mapping[str, Any], runtime: Mapping[str, Any]) -> str:
    from koemo.train.evaluation import ci_phrase, gap_phrase

    test, base = metrics["test"], metrics["baseline"]["test"]
    epochs = ", ".join(f"{f['epochs_run']}(best {f['best_epoch']})" for f in metrics["folds"])
    ci = f" {ci_phrase(metrics['test_ci'])}" if "test_ci" in metrics else ""
    groups = f"; {gap_phrase(metrics['per_group'])}" if "per_group" in metrics else ""
    return (f"train_{model}: test UA {test['ua']:.3f}{ci} / WA {test['accuracy']:.3f} / macro-F1 {test['macro_f1']:.3f} "
            f"vs majority baseline UA {base['ua']:.3f} ({base['class']}); OOF UA {metrics['oof'].get('ua', float('nan')):.3f}"
            f"{'; COLLAPSED' if metrics['collapsed'] else ''}{groups}; epochs {epochs}; "
            f"{format_rate(runtime['train_samples_per_second'])} samples/s on {runtime['device']} ({runtime['precision']}), "
            f"{runtime['seconds']:.0f} s")
