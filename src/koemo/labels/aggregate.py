"""One label per utterance from five (emotion, intensity) annotations, and annotator agreement.

`weighted` is the reference project's rule: sum intensity per emotion, the highest sum wins, a tie goes
to the tied emotion named by more annotators, and a tie that survives that goes to the tied emotion
the earliest annotator named (deterministic, counted). In this dataset neutral is always rated with
intensity 0, so under `weighted` neutral wins only when no other emotion got any intensity; the
labels metrics report how the classes come out rather than changing the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from koemo.core.errors import UserError
from koemo.corpus.emotions import EMOTIONS
from koemo.corpus.manifest import N_ANNOTATORS

STRATEGIES = ("weighted", "majority", "situation")


class LabelError(UserError, ValueError):
    """`labels` params or a manifest that cannot give the requested classes."""


@dataclass
class Aggregation:
    label: np.ndarray          # emotion name per row (object array)
    scores: np.ndarray         # [rows, 7] summed intensity
    votes: np.ndarray          # [rows, 7] annotators naming each emotion
    primary_tie: np.ndarray    # bool: the primary criterion was tied
    broken_by_secondary: np.ndarray  # bool: the secondary criterion decided
    unresolved: np.ndarray     # bool: still tied, decided by annotator order


def annotation_matrices(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores, votes and the first annotator position naming each emotion (N_ANNOTATORS if none)."""
    index = {name: k for k, name in enumerate(EMOTIONS)}
    rows = len(frame)
    scores = np.zeros((rows, len(EMOTIONS)), dtype=np.int64)
    votes = np.zeros_like(scores)
    first = np.full_like(scores, N_ANNOTATORS)
    every_row = np.arange(rows)
    for position in range(N_ANNOTATORS):
        emotion = frame[f"emotion_{position + 1}"].map(index).to_numpy()
        if np.isnan(emotion.astype(float)).any():
            bad = frame.index[pd.isna(frame[f"emotion_{position + 1}"].map(index))][0]
            raise LabelError(f"manifest row {bad}: emotion_{position + 1} is not one of {EMOTIONS}; the manifest was not "
                             "written by this version's corpus stage: rerun it (dvc repro corpus)")
        emotion = emotion.astype(np.int64)
        np.add.at(scores, (every_row, emotion), frame[f"intensity_{position + 1}"].to_numpy(dtype=np.int64))
        np.add.at(votes, (every_row, emotion), 1)
        first[every_row, emotion] = np.minimum(first[every_row, emotion], position)
    return scores, votes, first


def _decide(primary: np.ndarray, secondary: np.ndarray, first: np.ndarray, named: np.ndarray) -> tuple[np.ndarray, ...]:
    """Lexicographic argmax over (primary, secondary, earliest annotator) among named emotions."""
    neg = np.iinfo(np.int64).min // 4
    p = np.where(named, primary, neg)
    top_p = p == p.max(axis=1, keepdims=True)
    s = np.where(top_p, secondary, neg)
    top_s = s == s.max(axis=1, keepdims=True)
    order = np.where(top_s, -first, neg)
    winner = order.argmax(axis=1)
    primary_tie = top_p.sum(axis=1) > 1
    unresolved = top_s.sum(axis=1) > 1
    return winner, primary_tie, primary_tie & ~unresolved, unresolved


def aggregate(frame: pd.DataFrame, strategy: str) -> Aggregation:
    if strategy not in STRATEGIES:
        raise LabelError(f"labels.strategy={strategy!r}; choose one of {STRATEGIES}")
    scores, votes, first = annotation_matrices(frame)
    named = votes > 0
    if strategy == "situation":
        label = frame["situation"].to_numpy(dtype=object)
        none = np.zeros(len(frame), dtype=bool)
        return Aggregation(label, scores, votes, none, none, none)
    primary, secondary = (scores, votes) if strategy == "weighted" else (votes, scores)
    winner, primary_tie, by_secondary, unresolved = _decide(primary, secondary, first, named)
    label = np.asarray(EMOTIONS, dtype=object)[winner]
    return Aggregation(label, scores, votes, primary_tie, by_secondary, unresolved)


def fleiss_kappa(votes: np.ndarray) -> float:
    """Fleiss' kappa for a [items, categories] count matrix with the same number of raters per item."""
    votes = np.asarray(votes, dtype=float)
    raters = votes.sum(axis=1)
    if len(votes) == 0 or not np.all(raters == raters[0]) or raters[0] < 2:
        raise ValueError("Fleiss' kappa needs at least one item and the same number (>= 2) of raters per item")
    n = raters[0]
    p_item = ((votes**2).sum(axis=1) - n) / (n * (n - 1))
    p_cat = votes.sum(axis=0) / votes.sum()
    p_expected = float((p_cat**2).sum())
    if p_expected == 1.0:
        return 1.0
    return float((p_item.mean() - p_expected) / (1 - p_expected))


def build_label_table(manifest: pd.DataFrame, strategy: str, classes: list[str], split_params: dict) -> tuple[pd.DataFrame, dict]:
    """Aggregate, keep `classes`, split; return the labels table and the labels stage's metrics."""
    from koemo.labels.split import assign_split, check_no_leak, describe_groups, make_groups

    unknown = sorted(set(classes) - set(EMOTIONS))
    if unknown:
        raise LabelError(f"labels.classes has {unknown}, not among the rater emotions {EMOTIONS}; "
                         "list only those in params.yaml labels.classes")
    if len(set(classes)) < 2 or len(set(classes)) != len(classes):
        raise LabelError(f"labels.classes={list(classes)}: list at least two distinct emotions")
    if manifest.empty:
        raise LabelError("the manifest has no rows; rerun the corpus stage (dvc repro corpus) and read its message")
    agg = aggregate(manifest, strategy)
    columns = ["wav_id", "text", "wav_path", "release", "age", "gender", "duration_s", "situation"]
    table = manifest[columns + (["session"] if "session" in manifest else [])].copy()
    table["label"] = agg.label
    for k, emotion in enumerate(EMOTIONS):
        table[f"score_{emotion}"] = agg.scores[:, k]
        table[f"votes_{emotion}"] = agg.votes[:, k]
    table["tie_broken"] = agg.primary_tie

    no_label = table["label"].isna()
    out_of_classes = ~no_label & ~table["label"].isin(classes)
    kept = table[~no_label & ~out_of_classes].reset_index(drop=True)
    if kept["label"].nunique() < len(classes):
        missing = sorted(set(classes) - set(kept["label"]))
        found = {e: int((agg.label == e).sum()) for e in EMOTIONS if (agg.label == e).any()}
        raise LabelError(f"no rows labelled {missing} under labels.strategy={strategy} (of {len(manifest)} rows: {found}); "
                         "remove them from labels.classes, or try another labels.strategy")
    kept["label_id"] = kept["label"].map({c: i for i, c in enumerate(classes)}).astype("int64")
    kept["group"] = make_groups(kept, split_params["group_by"]).to_numpy()
    split, fold = assign_split(kept["label"], kept["group"], split_params["test_size"], split_params["folds"], split_params["seed"])
    kept["split"], kept["fold"] = split, fold
    check_no_leak(kept)
    kept = kept.sort_values("wav_id", kind="stable").reset_index(drop=True)

    def counts(frame: pd.DataFrame) -> dict:
        return {c: int((frame["label"] == c).sum()) for c in classes}

    train = kept[kept["split"] == "train"]
    metrics = {
        "strategy": strategy,
        "classes": list(classes),
        "rows_in": len(manifest),
        "rows_kept": len(kept),
        "dropped": {"label_not_in_classes": int(out_of_classes.sum()), "no_situation": int(no_label.sum())},
        "label_counts_before_filter": {e: int((agg.label == e).sum()) for e in EMOTIONS},
        "class_counts": {"train": counts(train), "test": counts(kept[kept["split"] == "test"]),
                         **{f"fold_{k}": counts(train[train["fold"] == k]) for k in range(split_params["folds"])}},
        "ties": {"primary_tied": int(agg.primary_tie.sum()), "broken_by_secondary": int(agg.broken_by_secondary.sum()),
                 "broken_by_annotator_order": int(agg.unresolved.sum())},
        # KEMDy rows carry one total evaluation, copied into the five annotator columns: agreement is not measurable
        "fleiss_kappa": fleiss_kappa(agg.votes) if len(manifest) and "session" not in manifest else None,
        "groups": int(kept["group"].nunique()),
        "protocol": {"split_group_by": split_params["group_by"],
                     "speaker_independent": split_params["group_by"] in ("speaker", "sentence+speaker", "session"),
                     **describe_groups(kept["group"], kept["label"], kept["split"].to_numpy(), classes)},
        "distinct_sentences": int(kept["text"].nunique()),
        "situation_agrees_with_label": float((kept["situation"] == kept["label"]).mean()) if len(kept) else None,
    }
    assert metrics["rows_kept"] + sum(metrics["dropped"].values()) == metrics["rows_in"]
    return kept, metrics
