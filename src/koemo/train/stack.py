"""Stacking: a meta-learner on the base models' out-of-fold probabilities, evaluated on the test set.

The meta-learner only ever sees OOF probabilities of training rows (each from a fold model that did
not train on that row), and its regularisation is chosen by an inner CV over the same grouped folds
the base models used, so no sentence leaks between the meta-learner's fit and its validation.
A nested CV over those folds then decides between the stack and the best single base model, so the final
predictor does not lose to its own best member when the others carry no signal (`chosen` in the metrics).
The fitted learner is stored as plain JSON (coefficients and the choice), never as a pickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from koemo.core.errors import UserError
from koemo.core.metrics import classification_report, majority_baseline

LEARNERS = ("logistic", "mean")
STACK = "stack"  # MetaLearner.chosen when the combination, not one base model, predicts
_EPS = 1e-6


class StackError(UserError, ValueError):
    """`stack` params, or base predictions too few to fit a meta-learner on."""


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
    raise StackError(f"stack.features={kind!r}; choose log_proba or proba")


@dataclass
class MetaLearner:
    """Multinomial logistic regression (or the plain mean of the base probabilities) over base outputs.

    `chosen` is "stack" when that combination predicts, or the one base model that predicts alone because the
    nested CV found the combination no better than it (the fitted combination is kept for the record).
    """

    learner: str
    models: list[str]
    classes: list[str]
    features: str
    C: float | None = None
    coef: np.ndarray | None = None
    intercept: np.ndarray | None = None
    chosen: str = STACK

    @property
    def inputs(self) -> list[str]:
        """The base models whose probabilities a prediction needs."""
        return list(self.models) if self.chosen == STACK else [self.chosen]

    def combine(self, probs: dict[str, np.ndarray]) -> np.ndarray:
        """The combination's probabilities, whichever predictor was chosen."""
        if self.learner == "mean":
            return np.mean([probs[m] for m in self.models], axis=0)
        logits = meta_features(probs, self.models, self.features) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict_proba(self, probs: dict[str, np.ndarray]) -> np.ndarray:
        if self.chosen != STACK:
            return np.asarray(probs[self.chosen], dtype=np.float64)
        return self.combine(probs)

    def to_json(self) -> dict:
        return {"learner": self.learner, "models": self.models, "classes": self.classes, "features": self.features,
                "C": self.C, "coef": None if self.coef is None else self.coef.tolist(),
                "intercept": None if self.intercept is None else self.intercept.tolist(), "chosen": self.chosen}

    @classmethod
    def from_json(cls, data: dict) -> "MetaLearner":
        arrays = {k: None if data.get(k) is None else np.asarray(data[k], dtype=np.float64) for k in ("coef", "intercept")}
        return cls(data["learner"], list(data["models"]), list(data["classes"]), data["features"], data.get("C"), **arrays,
                   chosen=data.get("chosen", STACK))


def _fit_logistic(x: np.ndarray, y: np.ndarray, C: float, class_weighted: bool, seed: int) -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=5000, class_weight="balanced" if class_weighted else None,
                              random_state=seed).fit(x, y)


def _logistic_proba(fitted: LogisticRegression, x: np.ndarray, n_classes: int) -> np.ndarray:
    """[rows, n_classes] probabilities; a class absent from the fit rows gets 0."""
    out = np.zeros((len(x), n_classes))
    out[:, fitted.classes_] = fitted.predict_proba(x)
    return out


def _score(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str], select_by: str) -> float:
    return classification_report(y_true, proba.argmax(axis=1), classes)[select_by]


def _cv_scores(x: np.ndarray, y: np.ndarray, folds: np.ndarray, params: dict, classes: Sequence[str]) -> dict[str, float]:
    """`select_by` of each C in C_grid, every fold predicted by a fit on the other folds only."""
    scores = {}
    for C in params["C_grid"]:
        oof = np.zeros((len(y), len(classes)))
        for k in np.unique(folds):
            held = folds == k
            fitted = _fit_logistic(x[~held], y[~held], C, params["class_weighted"], params["seed"])
            oof[held] = _logistic_proba(fitted, x[held], len(classes))
        scores[str(C)] = _score(y, oof, classes, params["select_by"])
    return scores


def _best_C(grid: Sequence[float], scores: dict[str, float]) -> float:
    return max(grid, key=lambda c: (scores[str(c)], -c))  # ties → stronger regularisation


def _best_member(probs: dict[str, np.ndarray], models: Sequence[str], y: np.ndarray, classes: Sequence[str],
                 select_by: str) -> str:
    return max(models, key=lambda m: _score(y, probs[m], classes, select_by))  # ties → the first listed


def _nested_choice_scores(probs: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, folds: np.ndarray, params: dict,
                          classes: Sequence[str], fallback_C: float) -> dict[str, float]:
    """Nested CV of the two candidate predictors: each fold is predicted by the stack whose C was chosen by CV on
    the other folds, and by the member that scored best on the other folds, so neither score saw the rows it is
    measured on. With two folds there is no CV inside one fold: the stack then uses `fallback_C`."""
    models = list(params["base_models"])
    stack_oof, member_oof = np.zeros((len(y), len(classes))), np.zeros((len(y), len(classes)))
    for k in np.unique(folds):
        held, rest = folds == k, folds != k
        C = (_best_C(params["C_grid"], _cv_scores(x[rest], y[rest], folds[rest], params, classes))
             if len(np.unique(folds[rest])) >= 2 else fallback_C)
        fitted = _fit_logistic(x[rest], y[rest], C, params["class_weighted"], params["seed"])
        stack_oof[held] = _logistic_proba(fitted, x[held], len(classes))
        member = _best_member({m: probs[m][rest] for m in models}, models, y[rest], classes, params["select_by"])
        member_oof[held] = probs[member][held]
    return {STACK: _score(y, stack_oof, classes, params["select_by"]),
            "best_member": _score(y, member_oof, classes, params["select_by"])}


def fit_meta_learner(probs: dict[str, np.ndarray], y: np.ndarray, folds: np.ndarray, params: dict,
                     classes: Sequence[str]) -> tuple[MetaLearner, dict]:
    """Fit on OOF rows; pick C by inner CV over the base models' own folds, then keep the stack only if a nested CV
    says it beats the best single member (members carrying no signal only add noise to the meta-learner).
    Returns (learner, {"inner_cv": score per C, "choice": nested scores and each member's OOF score})."""
    models, learner = list(params["base_models"]), params["learner"]
    if learner not in LEARNERS:
        raise StackError(f"stack.learner={learner!r}; choose one of {LEARNERS}")
    if learner == "mean":  # a fixed combination (a baseline): taken as it is
        return MetaLearner("mean", models, list(classes), params["features"]), {"inner_cv": {}, "choice": {}}
    x = meta_features(probs, models, params["features"])
    with threadpool_limits(1):  # [rows, 4·models] fits: BLAS threads cost more than they save (5-20x here)
        cv_scores = _cv_scores(x, y, folds, params, classes)
        best_C = _best_C(params["C_grid"], cv_scores)
        final = _fit_logistic(x, y, best_C, params["class_weighted"], params["seed"])
        nested = _nested_choice_scores(probs, x, y, folds, params, classes, best_C)
    coef = np.zeros((len(classes), x.shape[1]))
    intercept = np.full(len(classes), -1e9)
    coef[final.classes_], intercept[final.classes_] = final.coef_, final.intercept_
    member = _best_member(probs, models, y, classes, params["select_by"])
    chosen = STACK if nested[STACK] > nested["best_member"] else member  # a tie goes to the simpler predictor
    choice = {"chosen": chosen, "nested_cv": nested, "best_member": member, "nested": len(np.unique(folds)) > 2,
              "member_oof": {m: _score(y, probs[m], classes, params["select_by"]) for m in models}}
    learner = MetaLearner("logistic", models, list(classes), params["features"], float(best_C), coef, intercept, chosen)
    return learner, {"inner_cv": cv_scores, "choice": choice}


def headline_metrics(report: dict) -> dict:
    return {k: report[k] for k in ("accuracy", "ua", "macro_f1")}


def run_stack(labels: pd.DataFrame, probs: dict[str, np.ndarray], params: dict, classes: Sequence[str],
              evaluation: dict | None = None):
    """Fit on OOF train rows, evaluate on test. Returns (learner, test probabilities of the chosen predictor, metrics,
    per-class F1 rows[, per-group UA rows when `evaluation` is given]). `comparison_test["stack"]` is the fitted
    combination even when a single member was chosen. `evaluation` (`koemo.train.evaluation.evaluation_params`) adds the
    protocol, intervals, paired differences and per-group results (`evaluate_stack`)."""
    y = labels["label_id"].to_numpy(dtype=np.int64)
    train = (labels["split"] == "train").to_numpy()
    test = ~train
    has_oof = np.all([np.isfinite(probs[m]).all(axis=1) for m in params["base_models"]], axis=0)
    fit_rows = train & has_oof
    if fit_rows.sum() < len(classes) * 2:
        raise StackError(f"only {int(fit_rows.sum())} training rows have out-of-fold predictions from every base model "
                         f"({', '.join(params['base_models'])}), too few to fit the stack; use train.folds >= 2 so every "
                         "training row gets one, and rerun the training stages")
    fit_probs = {m: p[fit_rows] for m, p in probs.items()}
    learner, fit_report = fit_meta_learner(fit_probs, y[fit_rows], labels["fold"].to_numpy()[fit_rows], params, classes)
    test_probs = {m: p[test] for m, p in probs.items()}
    test_proba = learner.predict_proba(test_probs)
    report = classification_report(y[test], test_proba.argmax(axis=1), classes)
    stack_report = report if learner.chosen == STACK else classification_report(
        y[test], learner.combine(test_probs).argmax(axis=1), classes)
    baseline = majority_baseline(y[train], y[test], classes)
    comparison = {"stack": headline_metrics(stack_report),
                  "majority_baseline": {k: baseline[k] for k in ("accuracy", "ua", "macro_f1")}}
    f1_rows = [{"model": "stack", "class": c, "f1": stack_report["per_class"][c]["f1"]} for c in classes]
    for model in params["base_models"]:
        base_report = classification_report(y[test], probs[model][test].argmax(axis=1), classes)
        comparison[model] = headline_metrics(base_report)
        f1_rows += [{"model": model, "class": c, "f1": base_report["per_class"][c]["f1"]} for c in classes]
    best_base = max(params["base_models"], key=lambda m: comparison[m]["ua"])
    metrics = {
        "test": report, "baseline": baseline, "collapsed": report["collapsed"], "comparison_test": comparison,
        "chosen": learner.chosen, "choice": fit_report["choice"],
        "best_base_model": best_base, "ua_gain_over_best_base": report["ua"] - comparison[best_base]["ua"],
        "learner": learner.learner, "features": learner.features, "C": learner.C, "inner_cv": fit_report["inner_cv"],
        "select_by": params["select_by"], "fit_rows": int(fit_rows.sum()), "train_rows_without_oof": int((train & ~has_oof).sum()),
    }
    f1_table = pd.DataFrame(f1_rows)
    f1_table.insert(0, "model_class", f1_table["model"] + " · " + f1_table["class"])
    if evaluation is None:
        return learner, test_proba, metrics, f1_table
    predictions = {"stack": learner.combine(test_probs).argmax(axis=1),
                   **{m: probs[m][test].argmax(axis=1) for m in params["base_models"]}}
    member = fit_report["choice"].get("best_member") or best_base
    extra, group_table = evaluate_stack(labels[test], test_proba.argmax(axis=1), predictions, member,
                                        list(classes).index(baseline["class"]), classes, evaluation)
    return learner, test_proba, {**metrics, **extra}, f1_table, group_table


def evaluate_stack(test: pd.DataFrame, chosen: np.ndarray, predictions: dict[str, np.ndarray], best_member: str,
                   majority: int, classes: Sequence[str], evaluation: dict) -> tuple[dict, pd.DataFrame]:
    """`test_ci`/`per_group` of the chosen predictor (`chosen`, the figures of `test`); intervals of every model and
    the stack (the fitted combination, `predictions["stack"]`), the paired (stack − best member) and
    (model − majority baseline) differences, per-group results of each, and the per-group plot's rows.

    The best member is the one the stack's own choice named on OOF rows (not the best on test: picking it on the
    rows it is then compared on would favour it)."""
    from koemo.train.evaluation import (bootstrap_ci, evaluate_test, group_attributes, paired_difference, per_group,
                                  settings)

    cfg = settings({k: v for k, v in evaluation.items() if k not in ("data_source", "split")})
    y, groups = test["label_id"].to_numpy(dtype=np.int64), test["group"].to_numpy()
    frame = test.reset_index()
    base = evaluate_test(frame, chosen, classes, evaluation)
    attributes = group_attributes(frame, cfg)
    constant = np.full(len(y), majority)
    ci = {name: bootstrap_ci(y, pred, groups, len(classes), cfg) for name, pred in predictions.items()}
    paired = {"stack_minus_best_member": {"best_member": best_member,
                                          **paired_difference(y, predictions["stack"], predictions[best_member], groups,
                                                              len(classes), cfg)},
              **{f"{name}_minus_majority": paired_difference(y, pred, constant, groups, len(classes), cfg)
                 for name, pred in predictions.items()}}
    groups_by_model = {name: per_group(y, pred, attributes, classes, cfg) for name, pred in predictions.items()}
    english = {"여성": "female (여성)", "남성": "male (남성)"}  # readable where the browser has no Hangul font
    rows = [{"model_group": f"{name} · {attribute} {english.get(group, group)}", "model": name, "attribute": attribute,
             "group": group,
             "ua": result["ua"], "rows": result["rows"]}
            for name, table in groups_by_model.items() for attribute in ("gender", "age")
            for group, result in table[attribute].items() if "ua" in result]
    extra = {"protocol": base["protocol"], "test_ci": base["test_ci"], "test_ci_by_model": ci, "paired": paired,
             "per_group": base["per_group"], "per_group_by_model": groups_by_model}
    return extra, pd.DataFrame(rows, columns=["model_group", "model", "attribute", "group", "ua", "rows"])
