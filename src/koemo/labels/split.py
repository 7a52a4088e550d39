"""The one leakage-safe split every model shares: a held-out test set plus K folds over the rest.

Rows are grouped so that the same normalised sentence (and, optionally, the same speaker proxy
나이+성별) never sits on two sides; within that constraint the split is stratified by label. A corpus that names its
recording sessions (ETRI KEMDy: one speaker pair per session) can be split by session: speaker-independent for real.

When to use which (measured by benchmarks/speaker_proxy.py on a release-shaped corpus): `sentence` is the default
and the only choice that keeps every class in a small test set; `speaker` (나이+성별) is only a proxy — two people of
the same age and gender are one "speaker", so it errs towards fewer, bigger groups (never a leak of a real speaker
it can see, but one large group can swallow a fifth of the corpus); `sentence+speaker` joins both and on the real
releases links most rows into one component (refused above 50 %).
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from koemo.core.errors import UserError

GROUP_BY = ("sentence", "speaker", "sentence+speaker", "session")
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


class SplitError(UserError, ValueError):
    """`split` params that cannot make a leakage-safe split of these rows."""


def normalize_sentence(text: str) -> str:
    """NFKC, lower-case, punctuation and spaces removed: `괜찮아요.` and `괜찮아 요!` are one sentence."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", str(text)).lower())


def _components(keys: list[np.ndarray]) -> np.ndarray:
    """Connected components of rows that share any key (union-find); returns a component id per row."""
    rows = len(keys[0])
    parent = np.arange(rows)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for key in keys:
        first_with: dict = {}
        for row, value in enumerate(key):
            if value in first_with:
                a, b = find(row), find(first_with[value])
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                first_with[value] = row
    roots = np.array([find(i) for i in range(rows)])
    _, component = np.unique(roots, return_inverse=True)
    return component


def make_groups(frame: pd.DataFrame, group_by: str) -> pd.Series:
    if group_by not in GROUP_BY:
        raise SplitError(f"split.group_by={group_by!r}; choose one of {GROUP_BY}")
    if group_by == "session":
        sessions = frame["session"].astype("string").fillna("") if "session" in frame else pd.Series([""] * len(frame))
        if (sessions == "").any():
            raise SplitError(f"split.group_by=session: {int((sessions == '').sum())} of {len(frame)} rows have no "
                             "recording session (only the KEMDy readers, data.source=kemdy20/kemdy19, record one). "
                             "Use split.group_by=sentence or speaker for this corpus.")
        return pd.Series(sessions.to_numpy(dtype=object), index=frame.index, name="group")
    sentence = frame["text"].map(normalize_sentence).to_numpy()
    speaker = (frame["age"].astype("string").fillna("?") + "|" + frame["gender"].astype("string").fillna("?")).to_numpy()
    if group_by == "sentence":
        return pd.Series(sentence, index=frame.index, name="group")
    if group_by == "speaker":
        return pd.Series(speaker, index=frame.index, name="group")
    component = _components([sentence, speaker])
    largest = np.bincount(component).max() / len(component)
    if largest > 0.5:
        raise SplitError(
            f"split.group_by=sentence+speaker joins {largest:.0%} of rows into one group (speaker proxies are shared "
            "across many sentences), so no test set can be held out. Use split.group_by=sentence or speaker."
        )
    return pd.Series([f"c{c}" for c in component], index=frame.index, name="group")


def assign_split(labels: pd.Series, groups: pd.Series, test_size: float, folds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (split, fold): 'test' rows get fold -1; train rows get 0..folds-1. Groups never straddle."""
    if not 0 < test_size < 1:
        raise SplitError(f"split.test_size must be in (0, 1) (e.g. 0.2), got {test_size}")
    if folds < 2:
        raise SplitError(f"split.folds must be >= 2 (e.g. 4), got {folds}")
    y = labels.to_numpy()
    g = groups.to_numpy()
    n_test_splits = max(2, int(round(1 / test_size)))
    outer = StratifiedGroupKFold(n_splits=n_test_splits, shuffle=True, random_state=seed)
    _check_groups(len(np.unique(g)), n_test_splits, f"a test share of {test_size}")
    train_idx, test_idx = next(outer.split(np.zeros(len(y)), y, g))
    _check_groups(len(np.unique(g[train_idx])), folds, f"{folds} folds of the training rows")
    split = np.full(len(y), "train", dtype=object)
    split[test_idx] = "test"
    fold = np.full(len(y), -1, dtype=np.int64)
    inner = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed + 1)
    for k, (_, held) in enumerate(inner.split(np.zeros(len(train_idx)), y[train_idx], g[train_idx])):
        fold[train_idx[held]] = k
    return split, fold


def _check_groups(groups: int, needed: int, purpose: str) -> None:
    """sklearn's own error ("n_splits > number of groups") names neither the param nor the fix."""
    if groups < needed:
        raise SplitError(f"only {groups} distinct groups (split.group_by) for {purpose}, which needs {needed}; "
                         "use more data, or lower split.folds / raise split.test_size")


def describe_groups(groups: pd.Series, labels: pd.Series, split: np.ndarray, classes) -> dict:
    """What a grouping does to the split: how many groups, the largest one's share of rows, and whether the test
    set still holds every class (a speaker proxy with few, big groups can leave one out)."""
    sizes = groups.value_counts()
    test_classes = set(labels[np.asarray(split) == "test"])
    return {"groups": int(len(sizes)), "largest_group_share": float(sizes.max() / len(groups)) if len(groups) else 0.0,
            "test_has_every_class": all(c in test_classes for c in classes),
            "test_classes_missing": [c for c in classes if c not in test_classes]}


def check_no_leak(frame: pd.DataFrame) -> None:
    """Raise if a group appears in more than one of {test, fold 0, ..., fold K-1}."""
    sides = frame.groupby("group")["fold"].nunique()
    leaking = sides[sides > 1]
    if len(leaking):
        raise AssertionError(f"{len(leaking)} group(s) straddle split sides, e.g. {leaking.index[0]!r}")
