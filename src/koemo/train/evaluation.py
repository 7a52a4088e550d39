"""Test-set results a reader can trust and compare: bootstrap intervals, paired differences, per-group results and
the protocol that produced them.

A point figure on one test split hides how much of it is chance (167 demo rows: about ±0.07 UA). So every training
stage and the stack add, from the same seeded resamples:

- `test_ci`: 95 % percentile intervals of test UA, WA and macro-F1. The resampling unit is the split's own group
  (labels' `group` column: a sentence, a speaker-proxy component or a session), drawn with replacement, every row of
  a drawn group taken: rows that share a sentence are not independent evidence, and resampling them one by one
  would give intervals that are too narrow.
- `paired` (stack stage): (a − b) on the SAME resamples, its interval and the share of resamples with a
  difference ≤ 0: how sure "the stack beats its best member" is. Pairing cancels the rows both models find easy
  or hard, so it is far tighter than comparing two separate intervals.
- `per_group`: test UA, WA and rows per 성별 and per 나이 band; a group with fewer than `min_group_rows` rows is
  reported as too small, never as a number.
- `protocol`: data source and split rule (`split.group_by`, test size, seed). `dvc metrics diff` then shows a
  protocol change next to the numbers it moved, instead of comparing two protocols silently.

Resamples depend only on the test rows' groups and `evaluation.seed`, so every model sees the same ones (common
random numbers) and the files are byte-identical on rerun.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

METRICS = ("ua", "accuracy", "macro_f1")
DEFAULTS = {"bootstrap": 1000, "seed": 0, "confidence": 0.95, "age_bands": [20, 30, 40, 50], "min_group_rows": 20}
# params a training stage declares for its metrics report (protocol, intervals, groups) although they do not shape the
# weights (`koemo.models.<m>.used_keys` lists those); the split reaches the weights through data/labels.parquet
REPORT_KEYS = ("evaluation", "split", "data.source")
SPEAKER_INDEPENDENT = {"sentence": False, "speaker": True, "sentence+speaker": True, "session": True}


def settings(evaluation: Mapping[str, Any] | None) -> dict:
    """`evaluation` params over the defaults."""
    return {**DEFAULTS, **dict(evaluation or {})}


def resample_weights(groups: np.ndarray, n: int, seed: int) -> np.ndarray:
    """[n, rows] how often each row is drawn in each resample: groups drawn with replacement (as many draws as
    there are groups), every row of a drawn group counted once per draw."""
    _, group_of_row = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    n_groups = int(group_of_row.max()) + 1 if len(group_of_row) else 0
    if n_groups == 0:
        return np.zeros((n, 0))
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n)  # [n, groups]
    return draws[:, group_of_row].astype(np.float64)


def weighted_scores(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """UA, WA and macro-F1 for each row of `weights` ([resamples, rows]), computed like `classification_report`
    (UA over the classes present in the resample; macro-F1 over every class, 0 where undefined)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    weights = np.atleast_2d(weights)
    is_true = np.eye(n_classes)[y_true]                  # [rows, C]
    is_pred = np.eye(n_classes)[y_pred]
    correct = (y_true == y_pred)[:, None] * is_true
    support, predicted, tp = weights @ is_true, weights @ is_pred, weights @ correct   # [B, C]
    total = weights.sum(axis=1)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=present)
    denominator = support + predicted
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"ua": (recall * present).sum(axis=1) / present.sum(axis=1),
                "accuracy": tp.sum(axis=1) / total,
                "macro_f1": f1.mean(axis=1)}


def interval(values: np.ndarray, confidence: float) -> dict:
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(values[np.isfinite(values)], [tail, 1 - tail])
    return {"lo": float(lo), "hi": float(hi)}


FEW_UNITS = 10  # below this many resampling units an interval is reported with a warning


def unit_note(groups) -> dict:
    """A warning when the test set has too few independent units for a bootstrap to measure its spread: with one
    (e.g. a single test speaker) every resample is the same set, and a zero-width interval would be a lie."""
    units = len(set(map(str, groups)))
    if units < 2:
        return {"note": f"{units} resampling unit in the test set: no interval can be estimated"}
    if units < FEW_UNITS:
        return {"note": f"only {units} resampling units in the test set: the interval understates the uncertainty"}
    return {}


def bootstrap_ci(y_true, y_pred, groups, n_classes: int, evaluation: Mapping[str, Any] | None = None) -> dict:
    """Point figures and percentile intervals of UA, WA and macro-F1 over group resamples of the test rows (no
    interval, `lo`/`hi` null, when there is only one group)."""
    cfg = settings(evaluation)
    point = weighted_scores(y_true, y_pred, np.ones((1, len(y_true))), n_classes)
    note = unit_note(groups)
    if len(set(map(str, groups))) < 2:
        return {"level": cfg["confidence"], **note,
                **{m: {"point": float(point[m][0]), "lo": None, "hi": None} for m in METRICS}}
    boot = weighted_scores(y_true, y_pred, resample_weights(groups, cfg["bootstrap"], cfg["seed"]), n_classes)
    return {"level": cfg["confidence"], **note,
            **{m: {"point": float(point[m][0]), **interval(boot[m], cfg["confidence"])} for m in METRICS}}


def paired_difference(y_true, pred_a, pred_b, groups, n_classes: int, evaluation: Mapping[str, Any] | None = None,
                      metrics: Sequence[str] = ("ua", "macro_f1")) -> dict:
    """(a − b) per metric on the same group resamples: point, interval and `share_le_0`, the share of resamples where
    a does not beat b (a one-sided bootstrap p-value for "a > b")."""
    cfg = settings(evaluation)
    weights = resample_weights(groups, cfg["bootstrap"], cfg["seed"])
    a, b = weighted_scores(y_true, pred_a, weights, n_classes), weighted_scores(y_true, pred_b, weights, n_classes)
    one = np.ones((1, len(y_true)))
    pa, pb = weighted_scores(y_true, pred_a, one, n_classes), weighted_scores(y_true, pred_b, one, n_classes)
    out = dict(unit_note(groups))
    for m in metrics:
        if len(set(map(str, groups))) < 2:
            out[m] = {"point": float(pa[m][0] - pb[m][0]), "lo": None, "hi": None, "share_le_0": None}
            continue
        diff = a[m] - b[m]
        finite = diff[np.isfinite(diff)]
        out[m] = {"point": float(pa[m][0] - pb[m][0]), **interval(diff, cfg["confidence"]),
                  "share_le_0": float(np.mean(finite <= 0)) if len(finite) else None}
    return out


# ---- per-group results ------------------------------------------------------------------------------------------
def age_band(age, edges: Sequence[int]) -> str:
    """`20s`-style band for `edges` [20, 30, 40, 50]: <20, 20s, 30s, 40s, 50+; a band wider than ten years is
    written `20-34`; a missing age is `unknown`."""
    if age is None or pd.isna(age):
        return "unknown"
    age, edges = int(age), sorted(int(e) for e in edges)
    if age < edges[0]:
        return f"<{edges[0]}"
    for lo, hi in zip(edges, edges[1:]):
        if lo <= age < hi:
            return f"{lo}s" if hi - lo == 10 and lo % 10 == 0 else f"{lo}-{hi - 1}"
    return f"{edges[-1]}+"


def per_group(y_true, y_pred, attributes: Mapping[str, Sequence], classes: Sequence[str],
              evaluation: Mapping[str, Any] | None = None) -> dict:
    """{attribute: {group: {rows, ua, accuracy} or {rows, too_few_rows: true}}, "largest_gap": …}. The gap is the
    widest UA difference between two groups of one attribute that both have enough rows."""
    cfg = settings(evaluation)
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    out: dict[str, Any] = {"min_group_rows": int(cfg["min_group_rows"])}
    gaps = []
    for attribute, values in attributes.items():
        values = np.asarray([str(v) for v in values], dtype=object)
        table = {}
        for group in sorted(set(values)):
            rows = values == group
            if rows.sum() < cfg["min_group_rows"]:
                table[group] = {"rows": int(rows.sum()), "too_few_rows": True}
                continue
            score = weighted_scores(y_true[rows], y_pred[rows], np.ones((1, int(rows.sum()))), len(classes))
            table[group] = {"rows": int(rows.sum()), "ua": float(score["ua"][0]), "accuracy": float(score["accuracy"][0])}
        scored = [(g, r["ua"]) for g, r in table.items() if "ua" in r]
        if len(scored) >= 2:
            ranked = sorted(scored, key=lambda s: (s[1], s[0]))
            (low, ua_low), (high, ua_high) = ranked[0], ranked[-1]
            gaps.append({"attribute": attribute, "higher": high, "lower": low, "ua_gap": float(ua_high - ua_low)})
        out[attribute] = table
    out["largest_gap"] = max(gaps, key=lambda g: g["ua_gap"]) if gaps else None
    return out


def group_attributes(frame: pd.DataFrame, evaluation: Mapping[str, Any] | None = None) -> dict[str, list]:
    """성별 and 나이 band per row of a labels frame (columns `gender`, `age`); a missing value is `unknown`."""
    cfg = settings(evaluation)
    gender = frame["gender"].astype("string").fillna("").str.strip() if "gender" in frame else pd.Series([""] * len(frame))
    return {"gender": [g if g else "unknown" for g in gender],
            "age": [age_band(a, cfg["age_bands"]) for a in (frame["age"] if "age" in frame else [None] * len(frame))]}


def protocol(data_source: str | None, split: Mapping[str, Any], test_rows: int, test_units: int) -> dict:
    """What produced the numbers: numbers from two protocols must never be compared as if alike."""
    group_by = split.get("group_by", "sentence")
    return {"data_source": data_source, "split_group_by": group_by,
            "speaker_independent": SPEAKER_INDEPENDENT.get(group_by, False),
            "test_size": split.get("test_size"), "split_seed": split.get("seed"),
            "test_rows": int(test_rows), "test_resampling_units": int(test_units)}


def evaluate_test(frame: pd.DataFrame, y_pred: np.ndarray, classes: Sequence[str], evaluation: Mapping[str, Any]) -> dict:
    """`protocol`, `test_ci` and `per_group` for the test rows of `frame` (labels columns `label_id`, `group`,
    `split`, `gender`, `age`) predicted as `y_pred` (one class id per test row, in frame order).

    `evaluation` holds the `evaluation` params plus `data_source` and `split` (what the protocol records)."""
    test = frame[frame["split"].to_numpy() == "test"]
    y_true, groups = test["label_id"].to_numpy(dtype=np.int64), test["group"].to_numpy()
    cfg = settings({k: v for k, v in evaluation.items() if k not in ("data_source", "split")})
    method = f"{cfg['bootstrap']} resamples of the test set's split groups (split.group_by units), seed {cfg['seed']}"
    return {
        "protocol": protocol(evaluation.get("data_source"), evaluation.get("split") or {}, len(test), len(set(map(str, groups)))),
        "test_ci": {"method": method, **bootstrap_ci(y_true, y_pred, groups, len(classes), cfg)},
        "per_group": per_group(y_true, y_pred, group_attributes(test, cfg), classes, cfg),
    }


def evaluation_params(params: Mapping[str, Any]) -> dict:
    """What a stage passes to `evaluate_test`: the `evaluation` section plus the protocol keys it records."""
    return {**settings(params.get("evaluation")), "data_source": params.get("data", {}).get("source"),
            "split": dict(params.get("split", {}))}


def attach_groups(labels: pd.DataFrame, labels_path: str | Path) -> pd.DataFrame:
    """`labels` (read with the training columns only) plus `age` and `gender` from the same parquet, row for row (a
    table without them, e.g. a hand-made one, gets `unknown` groups)."""
    import pyarrow.parquet as pq

    present = [c for c in ("age", "gender") if c in pq.read_schema(labels_path).names]
    extra = pd.read_parquet(labels_path, columns=["wav_id", *present])
    if list(extra["wav_id"].astype(str)) != list(labels["wav_id"].astype(str)):
        raise ValueError(f"{labels_path}: rows changed while the stage ran; rerun it")
    return labels.assign(**{c: extra[c].to_numpy() if c in present else None for c in ("age", "gender")})


def gap_phrase(groups: Mapping[str, Any] | None) -> str:
    """`largest group gap: UA 0.12, 여성 over 남성 (gender)` for a stage's headline."""
    gap = (groups or {}).get("largest_gap")
    if not gap:
        return "per-group: too few rows for a gap"
    return f"largest group gap UA {gap['ua_gap']:.3f}: {gap['higher']} over {gap['lower']} ({gap['attribute']})"


def ci_phrase(ci: Mapping[str, Any], metric: str = "ua") -> str:
    """`[0.512, 0.640]`, `[no interval: one test group]`, or nothing when there is no interval section."""
    if metric not in ci:
        return ""
    if ci[metric]["lo"] is None:
        return "[no interval: one test group]"
    return f"[{ci[metric]['lo']:.3f}, {ci[metric]['hi']:.3f}]{' (few groups)' if 'note' in ci else ''}"
