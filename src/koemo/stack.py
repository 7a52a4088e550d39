"""Stacking: a meta-learner on the base models' out-of-fold probabilities, evaluated on the test set.

The meta-learner only ever sees OOF probabilities of training rows (each from a fold model that did
not train on that row), and its regularisation is chosen by an inner CV over the same grouped folds
the base models used, so no sentence leaks between the meta-learner's fit and its validation.
The fitted learner is stored as plain JSON (coefficients), never as a pickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from koemo.errors import UserError
from koemo.metrics import classification_report, majority_baseline

LEARNERS = ("logistic", "mean")
_EPS = 1e-6


class MissingBasePredictions(UserError, FileNotFoundError):
    """A model in stack.base_models has no predictions file."""


class StaleBasePredictions(UserError, ValueError):
    """A base model's predictions do not match data/labels.parquet (rows or split)."""


def prob_columns(classes: Sequence[str]) -> list[str]:
    return [f"prob_{c}" for c in classes]


def load_base_predictions(models: Sequence[str], classes: Sequence[str], labels: pd.DataFrame,
                          pred_dir: str | Path) -> dict[str, np.ndarray]:
    """{model: [rows, classes]} aligned to `labels` rows; errors name the file and the fix."""
    out = {}
    for model in models:
        path = Path(pred_dir) / f"{model}.parquet"
        if not path.exists():
            raise MissingBasePredictions(f"{path} is missing: stack.base_models lists {model!r}; run its training stage "
                                    f"(dvc repro train_{model}) or remove it from stack.base_models")
        frame = pd.read_parquet(path).set_index("wav_id")
        missing = labels.index.difference(frame.index)
        if len(missing):
            raise StaleBasePredictions(f"{path} has no prediction for {len(missing)} labels rows (e.g. {missing[0]}); "
                             f"rerun train_{model} after the labels stage")
        frame = frame.loc[labels.index]
        if (frame["split"].to_numpy() != labels["split"].to_numpy()).any():
            raise StaleBasePredictions(f"{path} was made on another split than data/labels.parquet; rerun train_{model}")
        out[model] = frame[prob_columns(classes)].to_numpy(dtype=np.float64)
    return out


def meta_features(probs: dict[str, np.ndarray], models: Sequence[str], kind: str) -> np.ndarray:
    stacked = np.concatenate([probs[m] for m in models], axis=1)
    if kind == "log_proba":
        return np.log(np.clip(stacked, _EPS, 1.0))
    if kind == "proba":
        return stacked
    raise ValueError(f"stack.features={kind!r}; choose log_proba or proba")


@dataclass
class MetaLearner:
    """Multinomial logistic regression (or the plain mean of the base probabilities) over base outputs."""

    learner: str
    models: list[str]
    classes: list[str]
    features: str
    C: float | None = None
    coef: np.ndarray | None = None
    intercept: np.ndarray | None = None

    def predict_proba(self, probs: dict[str, np.ndarray]) -> np.ndarray:
        if self.learner == "mean":
            return np.mean([probs[m] for m in self.models], axis=0)
        logits = meta_features(probs, self.models, self.features) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def to_json(self) -> dict:
        return {"learner": self.learner, "models": self.models, "classes": self.classes, "features": self.features,
                "C": self.C, "coef": None if self.coef is None else self.coef.tolist(),
                "intercept": None if self.intercept is None else self.intercept.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> "MetaLearner":
        arrays = {k: None if data.get(k) is None else np.asarray(data[k], dtype=np.float64) for k in ("coef", "intercept")}
        return cls(data["learner"], list(data["models"]), list(data["classes"]), data["features"], data.get("C"), **arrays)


def _fit_logistic(x: np.ndarray, y: np.ndarray, C: float, class_weighted: bool, seed: int) -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=5000, class_weight="balanced" if class_weighted else None,
                              random_state=seed).fit(x, y)


def _score(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str], select_by: str) -> float:
    return classification_report(y_true, proba.argmax(axis=1), classes)[select_by]


def fit_meta_learner(probs: dict[str, np.ndarray], y: np.ndarray, folds: np.ndarray, params: dict,
                     classes: Sequence[str]) -> tuple[MetaLearner, dict]:
    """Fit on OOF rows; pick C by inner CV over the base models' own folds. Returns (learner, cv scores)."""
    models, learner = list(params["base_models"]), params["learner"]
    if learner not in LEARNERS:
        raise ValueError(f"stack.learner={learner!r}; choose one of {LEARNERS}")
    if learner == "mean":
        return MetaLearner("mean", models, list(classes), params["features"]), {}
    x = meta_features(probs, models, params["features"])
    cv_scores = {}
    for C in params["C_grid"]:
        oof = np.zeros((len(y), len(classes)))
        for k in np.unique(folds):
            held = folds == k
            fitted = _fit_logistic(x[~held], y[~held], C, params["class_weighted"], params["seed"])
            oof[np.ix_(held, fitted.classes_)] = fitted.predict_proba(x[held])
        cv_scores[str(C)] = _score(y, oof, classes, params["select_by"])
    best_C = max(params["C_grid"], key=lambda c: (cv_scores[str(c)], -c))  # ties → stronger regularisation
    final = _fit_logistic(x, y, best_C, params["class_weighted"], params["seed"])
    coef = np.zeros((len(classes), x.shape[1]))
    intercept = np.full(len(classes), -1e9)
    coef[final.classes_], intercept[final.classes_] = final.coef_, final.intercept_
    return MetaLearner("logistic", models, list(classes), params["features"], float(best_C), coef, intercept), cv_scores


def headline_metrics(report: dict) -> dict:
    return {k: report[k] for k in ("accuracy", "ua", "macro_f1")}


def run_stack(labels: pd.DataFrame, probs: dict[str, np.ndarray], params: dict, classes: Sequence[str]):
    """Fit on OOF train rows, evaluate on test. Returns (learner, test probabilities, metrics, per-class F1 rows)."""
    y = labels["label_id"].to_numpy(dtype=np.int64)
    train = (labels["split"] == "train").to_numpy()
    test = ~train
    has_oof = np.all([np.isfinite(probs[m]).all(axis=1) for m in params["base_models"]], axis=0)
    fit_rows = train & has_oof
    if fit_rows.sum() < len(classes) * 2:
        raise ValueError("too few training rows with out-of-fold predictions from every base model to fit the stack; "
                         "use train.folds >= 2 so every training row gets one")
    fit_probs = {m: p[fit_rows] for m, p in probs.items()}
    learner, cv_scores = fit_meta_learner(fit_probs, y[fit_rows], labels["fold"].to_numpy()[fit_rows], params, classes)
    test_proba = learner.predict_proba({m: p[test] for m, p in probs.items()})
    report = classification_report(y[test], test_proba.argmax(axis=1), classes)
    baseline = majority_baseline(y[train], y[test], classes)
    comparison = {"stack": headline_metrics(report), "majority_baseline": {k: baseline[k] for k in ("accuracy", "ua", "macro_f1")}}
    f1_rows = [{"model": "stack", "class": c, "f1": report["per_class"][c]["f1"]} for c in classes]
    for model in params["base_models"]:
        base_report = classification_report(y[test], probs[model][test].argmax(axis=1), classes)
        comparison[model] = headline_metrics(base_report)
        f1_rows += [{"model": model, "class": c, "f1": base_report["per_class"][c]["f1"]} for c in classes]
    best_base = max(params["base_models"], key=lambda m: comparison[m]["ua"])
    metrics = {
        "test": report, "baseline": baseline, "collapsed": report["collapsed"], "comparison_test": comparison,
        "best_base_model": best_base, "ua_gain_over_best_base": report["ua"] - comparison[best_base]["ua"],
        "learner": learner.learner, "features": learner.features, "C": learner.C, "inner_cv": cv_scores,
        "select_by": params["select_by"], "fit_rows": int(fit_rows.sum()), "train_rows_without_oof": int((train & ~has_oof).sum()),
    }
    f1_table = pd.DataFrame(f1_rows)
    f1_table.insert(0, "model_class", f1_table["model"] + " · " + f1_table["class"])
    return learner, test_proba, metrics, f1_table
