"""K-fold out-of-fold (OOF) training on the one shared split, so stacking never sees a leaked prediction.

Fold k's model is fitted on the training rows outside CV fold k (CV fold = labels' split fold mod
`train.folds`, so a cheaper K still gives every training row exactly one OOF prediction), predicts fold k
(its OOF rows) and the test set; test probabilities are the mean over the fold models.

Early stopping needs data the model does not train on, and using the held-out fold for it would let the OOF
predictions pick their own best epoch. So each fold carves an inner validation slice out of its fitting rows,
grouped by the `group` column (a sentence never sits on both sides) and stratified by label.

With `train.folds: 1` there is one model: split fold 0 is its held-out validation slice (the only rows with an
OOF prediction; the others get NaN probabilities and fold -2), the rest is fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold
from tqdm import tqdm

from koemo.core.errors import UserError
from koemo.core.metrics import classification_report, confusion_rows, majority_baseline
from koemo.train.data import Examples
from koemo.train.trainer import FitResult, Trainer, seed_everything

NOT_HELD_OUT = -2  # prediction `fold` of a training row no model held out (train.folds == 1)


@dataclass
class FoldPlan:
    """Row positions (into labels) for one fold model."""

    fold: int
    fit: np.ndarray      # rows the model trains on (augmented copies of these may be added by the input builder)
    valid: np.ndarray    # inner early-stopping slice, from the training folds, disjoint groups from `fit`
    holdout: np.ndarray  # rows it predicts out-of-fold
    test: np.ndarray


class FoldPlanError(UserError, ValueError):
    """The split cannot give the folds or validation slices the training params ask for; the message names the fix."""


def cv_folds(labels: pd.DataFrame, folds: int) -> np.ndarray:
    """CV fold per labels row: split fold mod `folds`; -1 for test; with folds == 1, 0 for split fold 0 else -2."""
    split_fold = labels["fold"].to_numpy(dtype=np.int64)
    is_train = labels["split"].to_numpy() == "train"
    k_split = int(split_fold[is_train].max()) + 1 if is_train.any() else 0
    if folds < 1 or folds > k_split:
        raise FoldPlanError(f"train.folds={folds}: must be between 1 and the split's {k_split} folds (split.folds)")
    if folds == 1:
        out = np.where(split_fold == 0, 0, NOT_HELD_OUT)
    else:
        out = split_fold % folds
    return np.where(is_train, out, -1)


def inner_valid(labels: pd.DataFrame, rows: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split `rows` into (fit, valid) with ~`fraction` of groups in valid, grouped by `group`, stratified by label."""
    if fraction <= 0:
        return rows, rows[:0]
    n_splits = max(2, int(round(1 / fraction)))
    groups = labels["group"].to_numpy()[rows]
    if len(np.unique(groups)) < n_splits:
        raise FoldPlanError(f"train.valid_fraction={fraction}: a fold's training rows hold only {len(np.unique(groups))} "
                            f"split groups (split.group_by) to carve {n_splits} validation slices from: set "
                            "train.valid_fraction 0 (fixed epochs) or a group_by with more groups")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    keep, held = next(splitter.split(np.zeros(len(rows)), labels["label_id"].to_numpy()[rows], groups))
    return rows[keep], rows[held]


def plan_folds(labels: pd.DataFrame, folds: int, valid_fraction: float, seed: int) -> list[FoldPlan]:
    cv = cv_folds(labels, folds)
    test = np.flatnonzero(cv == -1)
    train_rows = np.flatnonzero(labels["split"].to_numpy() == "train")
    plans = []
    for k in range(folds):
        holdout = np.flatnonzero(cv == k)
        fit, valid = inner_valid(labels, np.setdiff1d(train_rows, holdout), valid_fraction, seed + k)
        plans.append(FoldPlan(k, fit, valid, holdout, test))
    return plans


@dataclass
class FoldJob:
    """What an input builder hands the CV loop for one fold: a fresh model, its example sets and files to keep.

    `absent`: labels rows (positions) the model has no input for — e.g. a clip whose features a stage could not
    compute (counted in its failures.csv). They are left out of `holdout`/`test` (and of training) and predicted as
    the fold's training class prior, the honest answer with nothing to go on.
    """

    model: Any
    train: Examples
    valid: Examples | None
    holdout: Examples
    test: Examples
    files: dict[str, Any] = field(default_factory=dict)  # name → JSON-able dict saved beside the weights
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # name → arrays saved as safetensors (exact)
    absent: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class FoldRecord:
    fold: int
    fit: FitResult
    trained_ids: set            # wav_ids behind every training example (augmented copies included)
    valid_ids: set
    holdout_ids: set
    holdout_report: dict


@dataclass
class CVResult:
    oof: np.ndarray            # [rows, classes] float32, NaN where no model held the row out
    test: np.ndarray           # [rows, classes] float32, mean over folds on test rows, NaN elsewhere
    cv_fold: np.ndarray        # prediction `fold` column
    records: list[FoldRecord]


def class_prior(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Add-one smoothed class frequencies: the prediction for a row with nothing to go on."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64) + 1.0
    return counts / counts.sum()


def without_absent(rows: np.ndarray, absent: np.ndarray) -> np.ndarray:
    """`rows` without the `absent` ones, order kept."""
    return rows[~np.isin(rows, absent)] if len(absent) else rows


def check_no_leak(job: FoldJob, plan: FoldPlan, wav_ids: np.ndarray) -> None:
    """Raise unless the model trains only on wav_ids of its fitting rows (never held-out, validation or test)."""
    trained = set(job.train.ids)
    allowed = set(wav_ids[plan.fit])
    for name, rows in (("held-out", plan.holdout), ("validation", plan.valid), ("test", plan.test)):
        leaked = trained & set(wav_ids[rows])
        if leaked:
            raise AssertionError(f"fold {plan.fold}: {len(leaked)} {name} wav_id(s) in training, e.g. {sorted(leaked)[0]}")
    if not trained <= allowed:
        raise AssertionError(f"fold {plan.fold}: trains on wav_ids outside its fitting rows")
    for name, examples, rows in (("holdout", job.holdout, plan.holdout), ("test", job.test, plan.test)):
        if list(examples.ids) != list(wav_ids[without_absent(rows, job.absent)]):
            raise AssertionError(f"fold {plan.fold}: {name} examples are not the planned rows in order")


# ---- one fold's results on disk: what a rerun after a crash reuses -------------------------------------------
RECORD = "fold_record.json"  # written last: its presence means the fold is complete
PROBABILITIES = "probabilities.safetensors"
CHECKPOINT = "checkpoint.pt"  # the fold in progress: its last finished epoch (Trainer.fit)


@dataclass
class FoldOutcome:
    """One trained fold model: its record, its held-out and test probabilities, and how it saves itself."""

    record: FoldRecord
    held: np.ndarray             # [len(plan.holdout), classes]
    test: np.ndarray             # [len(plan.test), classes]
    save: Callable[[Path], list[str]]  # writes the model's files into a fold directory, returns their names


#: (plan, the fold's directory for checkpoints or None) → the trained fold. `torch_folds` for the networks; any
#: other model (e.g. `train.tfidf`) plugs its own in and gets the same loop, resume and outputs.
FoldTrainer = Callable[[FoldPlan, "Path | None"], FoldOutcome]


def save_fold(fold_dir: Path, outcome: FoldOutcome) -> None:
    """The fold's model files, its probabilities and, written last, its record (the mark of a complete fold)."""
    import json

    from koemo.core.io import write_text

    fold_dir.mkdir(parents=True, exist_ok=True)
    kept = outcome.save(fold_dir)
    save_arrays(fold_dir / PROBABILITIES, {"holdout": outcome.held, "test": outcome.test})
    record, fit = outcome.record, outcome.record.fit
    # Unrounded (repr floats round-trip exactly), unlike koemo's metrics files: a reused fold must give the
    # same metrics and curves to the last bit.
    write_text(fold_dir / RECORD, json.dumps({
        "fold": record.fold, "kept": sorted(kept),
        "fit": {"epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch, "best_valid_macro_f1": fit.best_valid_macro_f1,
                "history": fit.history, "train_samples": fit.train_samples, "train_seconds": fit.train_seconds},
        "trained_ids": sorted(record.trained_ids), "valid_ids": sorted(record.valid_ids),
        "holdout_ids": sorted(record.holdout_ids), "holdout_report": record.holdout_report}, default=lambda value: value.item()))
    (fold_dir / CHECKPOINT).unlink(missing_ok=True)


def load_fold(fold_dir: Path) -> tuple[FoldRecord, np.ndarray, np.ndarray] | None:
    """A complete fold saved by `save_fold` (record, holdout and test probabilities), or None."""
    import json

    from safetensors.numpy import load_file

    if not (fold_dir / RECORD).is_file():
        return None
    data = json.loads((fold_dir / RECORD).read_text(encoding="utf-8"))
    probs = load_file(str(fold_dir / PROBABILITIES))
    record = FoldRecord(data["fold"], FitResult(**data["fit"]), set(data["trained_ids"]), set(data["valid_ids"]),
                        set(data["holdout_ids"]), data["holdout_report"])
    return record, probs["holdout"], probs["test"]


def kept_files(fold_dir: Path) -> list[Path]:
    """The files of a complete fold that belong in the model directory."""
    import json

    return [fold_dir / name for name in json.loads((fold_dir / RECORD).read_text(encoding="utf-8"))["kept"]]


def cross_validate(labels: pd.DataFrame, plans: Sequence[FoldPlan], train_fold: FoldTrainer, n_classes: int,
                   out_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
                   saves: bool = True, share: Callable[[Any], Any] = lambda found: found) -> CVResult:
    """The one K-fold loop: train one model per plan, collect OOF and fold-mean test probabilities, save each fold
    (model files, probabilities, record) in `out_dir/fold<k>/` as it completes. With `resume`, a fold complete
    there is reused instead of trained (a fold in progress may continue from its own checkpoint). Under several
    processes only the one that `saves` looks in `out_dir` and `share` hands what it found to the others, so they
    all skip or train the same folds."""
    n = len(labels)
    oof = np.full((n, n_classes), np.nan, dtype=np.float32)
    test_sum = np.zeros((n, n_classes), dtype=np.float64)
    cv_fold = np.full(n, -1, dtype=np.int64)
    cv_fold[labels["split"].to_numpy() == "train"] = NOT_HELD_OUT
    records = []
    for plan in tqdm(plans, desc="folds", unit="fold", disable=not progress):
        fold_dir = Path(out_dir) / f"fold{plan.fold}" if out_dir is not None else None
        done = share(load_fold(fold_dir) if resume and fold_dir is not None and saves else None)
        if done is not None:
            record, held, test = done
            print(f"fold {plan.fold}: reused (complete in {fold_dir})", flush=True)
        else:
            outcome = train_fold(plan, fold_dir)
            record, held, test = outcome.record, outcome.held, outcome.test
            if fold_dir is not None and saves:
                save_fold(fold_dir, outcome)
        if np.isfinite(oof[plan.holdout]).any():
            raise AssertionError(f"fold {plan.fold}: a row already has an OOF prediction")
        oof[plan.holdout] = held
        cv_fold[plan.holdout] = plan.fold
        test_sum[plan.test] += test
        records.append(record)
    test = np.full((n, n_classes), np.nan, dtype=np.float32)
    test_rows = plans[0].test if plans else np.array([], dtype=np.int64)
    test[test_rows] = (test_sum[test_rows] / max(len(plans), 1)).astype(np.float32)
    return CVResult(oof, test, cv_fold, records)


def torch_folds(labels: pd.DataFrame, build: Callable[[FoldPlan], FoldJob], trainer: Trainer) -> FoldTrainer:
    """Fold models trained by the one `Trainer`: seeded per fold, checked for leaks, checkpointed per epoch; rows the
    builder marks `absent` get the fold's training class prior."""
    wav_ids = labels["wav_id"].astype(str).to_numpy()
    y = labels["label_id"].to_numpy(dtype=np.int64)
    c = trainer.n_classes

    def train(plan: FoldPlan, fold_dir: Path | None) -> FoldOutcome:
        seed_everything(trainer.config.seed + plan.fold, trainer.device)  # model init + dropout + augmentation
        job = build(plan)  # the same inputs and initial weights in every process
        check_no_leak(job, plan, wav_ids)
        acc = trainer.accelerator
        if acc.num_processes > 1:
            import torch
  # each process its own dropout / augmentation draws for its slice of each batch
            torch.manual_seed(trainer.config.seed + plan.fold + 7919 * acc.process_index)
        checkpoint = fold_dir / CHECKPOINT if fold_dir is not None else None  # only the main process writes it
        fit = trainer.fit(job.model, job.train, job.valid, tag=f"fold{plan.fold}", checkpoint=checkpoint)
        prior = class_prior(y[without_absent(plan.fit, job.absent)], c).astype(np.float32)
        held = np.tile(prior, (len(plan.holdout), 1))
        held[np.isin(plan.holdout, job.absent, invert=True)] = trainer.predict(job.model, job.holdout)
        test = np.tile(prior, (len(plan.test), 1))
        test[np.isin(plan.test, job.absent, invert=True)] = trainer.predict(job.model, job.test)
        report = classification_report(y[plan.holdout], held.argmax(axis=1), list(map(str, range(c))))
        record = FoldRecord(plan.fold, fit, set(job.train.ids), set(job.valid.ids) if job.valid else set(),
                            set(wav_ids[plan.holdout]), report)

        def save(directory: Path) -> list[str]:
            from koemo.core.io import write_json

            save_model_weights(job.model, directory / "model.safetensors")
            for name, content in job.files.items():
                write_json(directory / name, content)
            for name, arrays in job.arrays.items():
                save_arrays(directory / name, arrays)
            return ["model.safetensors", *job.files, *job.arrays]

        return FoldOutcome(record, held, test, save)

    return train


def run_cv(labels: pd.DataFrame, plans: Sequence[FoldPlan], build: Callable[[FoldPlan], FoldJob], trainer: Trainer,
           out_dir: str | Path | None = None, resume: bool = False) -> CVResult:
    """`cross_validate` with `torch_folds`: the networks' K-fold OOF run."""
    from koemo.train.distributed import broadcast

    return cross_validate(labels, plans, torch_folds(labels, build, trainer), trainer.n_classes, out_dir, resume,
                          trainer.config.progress, saves=trainer.is_main_process, share=broadcast)


def save_model_weights(model, path: Path) -> None:
    """safetensors (no pickle); `save_model` copes with tied/shared tensors."""
    from safetensors.torch import save_model

    from koemo.core.io import atomic_path

    with atomic_path(path) as tmp:
        save_model(model, str(tmp))


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    from koemo.core.io import atomic_path

    with atomic_path(path) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp))


def predictions_frame(labels: pd.DataFrame, result: CVResult, classes: Sequence[str]) -> pd.DataFrame:
    """`wav_id, split, fold, prob_<class>…` in labels order: OOF for train rows, fold-mean for test rows."""
    is_test = (labels["split"].to_numpy() == "test")[:, None]
    probs = np.where(is_test, result.test, result.oof)
    frame = pd.DataFrame({"wav_id": labels["wav_id"].astype(str).to_numpy(),
                          "split": labels["split"].astype(str).to_numpy(), "fold": result.cv_fold})
    for k, name in enumerate(classes):
        frame[f"prob_{name}"] = probs[:, k]
    return frame


def summarize(labels: pd.DataFrame, result: CVResult, classes: Sequence[str], folds: int, valid_fraction: float) -> dict:
    """Deterministic metrics: test and OOF reports, majority baselines, collapse flag, per-fold epochs."""
    y = labels["label_id"].to_numpy(dtype=np.int64)
    is_train = labels["split"].to_numpy() == "train"
    test_rows = np.flatnonzero(~is_train)
    oof_rows = np.flatnonzero(is_train & np.isfinite(result.oof).all(axis=1))
    y_train = y[is_train]
    test_report = classification_report(y[test_rows], result.test[test_rows].argmax(axis=1), classes)
    oof_report = classification_report(y[oof_rows], result.oof[oof_rows].argmax(axis=1), classes)
    test_baseline = majority_baseline(y_train, y[test_rows], classes)
    return {
        "cv": {
            "mode": "k-fold" if folds > 1 else "validation-slice",
            "folds": folds,
            "test_probabilities": f"mean over {len(result.records)} fold model(s)",
            "early_stopping_on": f"inner validation slice ({valid_fraction:.0%} of each fold's training groups)"
                                 if valid_fraction > 0 else "none (fixed epochs)",
            "oof_rows": int(len(oof_rows)),
            "oof_missing": int(is_train.sum() - len(oof_rows)),
        },
        "test": test_report,
        "oof": oof_report,
        "baseline": {"test": test_baseline, "oof": majority_baseline(y_train, y[oof_rows], classes)},
        "collapsed": bool(test_report.get("collapsed", False)),
        "beats_baseline_ua": bool(test_report.get("ua", 0.0) > (test_baseline.get("ua") or 0.0)),
        "folds": [{
            "fold": r.fold,
            "trained_wav_ids": int(len(r.trained_ids)),
            "valid_rows": int(len(r.valid_ids)),
            "holdout_rows": int(len(r.holdout_ids)),
            "epochs_run": r.fit.epochs_run,
            "best_epoch": r.fit.best_epoch,
            "best_valid_macro_f1": r.fit.best_valid_macro_f1,
            "holdout_macro_f1": r.holdout_report.get("macro_f1"),
            "holdout_ua": r.holdout_report.get("ua"),
        } for r in result.records],
    }


def confusion_table(labels: pd.DataFrame, result: CVResult, classes: Sequence[str]) -> pd.DataFrame:
    """actual,predicted per test row, for `dvc plots` (confusion template)."""
    rows = np.flatnonzero(labels["split"].to_numpy() == "test")
    return confusion_rows(labels["label_id"].to_numpy()[rows], result.test[rows].argmax(axis=1), classes)
