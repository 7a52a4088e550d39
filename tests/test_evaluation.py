"""Bootstrap intervals, paired differences, per-group results and the protocol record (koemo.train.evaluation)."""

import numpy as np
import pandas as pd
import pytest

from koemo.train.evaluation import (age_band, bootstrap_ci, evaluate_test, paired_difference, per_group, resample_weights,
                              weighted_scores)
from koemo.core.metrics import classification_report

CLASSES = ["angry", "happiness", "neutral", "sadness"]
FAST = {"bootstrap": 400, "seed": 3}


def sentences(n_groups=20, size=10, seed=0):
    """`n_groups` sentences of `size` rows; a model right on every row of half the sentences, wrong on the rest."""
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"s{g}" for g in range(n_groups)], size)
    y = rng.integers(0, 4, len(groups))
    right = np.repeat(np.arange(n_groups) % 2 == 0, size)
    return y, np.where(right, y, (y + 1) % 4), groups


def test_point_figures_equal_the_classification_report_even_with_an_absent_class():
    rng = np.random.default_rng(1)
    y, pred = rng.integers(0, 3, 300), rng.integers(0, 4, 300)   # class 3 never true, sometimes predicted
    report = classification_report(y, pred, CLASSES)
    ci = bootstrap_ci(y, pred, np.arange(300), 4, FAST)
    for metric in ("ua", "accuracy", "macro_f1"):
        assert ci[metric]["point"] == pytest.approx(report[metric])
        assert ci[metric]["lo"] <= ci[metric]["point"] <= ci[metric]["hi"]
    weights = resample_weights(np.arange(300), 5, 0)
    for b in range(5):  # each resample scored like the report on the rows repeated as drawn
        rows = np.repeat(np.arange(300), weights[b].astype(int))
        again = classification_report(y[rows], pred[rows], CLASSES)
        scores = weighted_scores(y, pred, weights[b:b + 1], 4)
        assert [scores[m][0] for m in ("ua", "accuracy", "macro_f1")] == pytest.approx(
            [again["ua"], again["accuracy"], again["macro_f1"]])


def test_resampling_draws_whole_groups_as_often_as_there_are_groups():
    groups = np.array(["a"] * 5 + ["b"] * 1 + ["c"] * 3 + ["d"] * 7)
    weights = resample_weights(groups, 200, 0)
    for g in "abcd":
        rows = np.flatnonzero(groups == g)
        assert (weights[:, rows] == weights[:, rows[:1]]).all(), "a group's rows must be drawn together"
    first = [np.flatnonzero(groups == g)[0] for g in "abcd"]
    assert (weights[:, first].sum(axis=1) == 4).all(), "each resample draws as many groups as there are"


def test_grouped_intervals_are_wider_than_row_intervals_when_sentences_repeat():
    y, pred, groups = sentences()
    grouped = bootstrap_ci(y, pred, groups, 4, FAST)["accuracy"]
    by_row = bootstrap_ci(y, pred, np.arange(len(y)), 4, FAST)["accuracy"]
    # 20 independent sentences at 50 %: ±1.96·sqrt(.25/20) ≈ ±0.22; 200 "independent" rows would give ±0.07
    assert grouped["hi"] - grouped["lo"] > 0.3
    assert by_row["hi"] - by_row["lo"] < 0.2


def test_intervals_are_deterministic_and_follow_the_seed():
    y, pred, groups = sentences(seed=2)
    assert bootstrap_ci(y, pred, groups, 4, FAST) == bootstrap_ci(y, pred, groups, 4, FAST)
    assert bootstrap_ci(y, pred, groups, 4, FAST) != bootstrap_ci(y, pred, groups, 4, {**FAST, "seed": 4})
    # group labels' spelling or row order of the groups does not matter, only which rows share one
    assert bootstrap_ci(y, pred, np.char.add("x", groups), 4, FAST) == bootstrap_ci(y, pred, groups, 4, FAST)


def test_paired_difference_cancels_shared_rows_and_reports_the_share_at_or_below_zero():
    y, pred, groups = sentences(n_groups=40, seed=3)
    same = paired_difference(y, pred, pred, groups, 4, FAST)
    assert same["ua"] == {"point": 0.0, "lo": 0.0, "hi": 0.0, "share_le_0": 1.0}
    better = pred.copy()
    better[groups == "s1"] = y[groups == "s1"]   # fixes one wrong sentence, changes nothing else
    diff = paired_difference(y, better, pred, groups, 4, FAST)["ua"]
    assert diff["point"] > 0 and diff["lo"] >= 0 and diff["share_le_0"] < 0.5
    apart = [bootstrap_ci(y, p, groups, 4, FAST)["ua"] for p in (better, pred)]
    assert diff["hi"] - diff["lo"] < 0.5 * (apart[0]["hi"] - apart[0]["lo"]), "paired must be tighter than unpaired"
    worse = paired_difference(y, pred, better, groups, 4, FAST)["ua"]
    assert worse["share_le_0"] == 1.0 and worse["hi"] <= 0


def test_age_bands():
    edges = [20, 30, 40, 50]
    assert [age_band(a, edges) for a in (19, 20, 29, 30, 49, 50, 71)] == ["<20", "20s", "20s", "30s", "40s", "50+", "50+"]
    assert age_band(None, edges) == age_band(pd.NA, edges) == "unknown"
    assert age_band(33, [20, 35]) == "20-34"


def test_per_group_reports_small_groups_as_such_and_names_the_largest_gap():
    y = np.array([0, 1, 2, 3] * 10)
    pred = y.copy()
    gender = np.array(["여성"] * 20 + ["남성"] * 18 + ["?"] * 2)
    pred[20:38] = (y[20:38] + 1) % 4      # wrong on every 남성 row
    age = ["20s"] * 40
    result = per_group(y, pred, {"gender": gender, "age": age}, CLASSES, {"min_group_rows": 10})
    assert result["gender"]["?"] == {"rows": 2, "too_few_rows": True}
    assert result["gender"]["여성"]["ua"] == 1.0 and result["gender"]["남성"]["ua"] == 0.0
    assert result["largest_gap"] == {"attribute": "gender", "higher": "여성", "lower": "남성", "ua_gap": 1.0}
    assert result["age"]["20s"]["rows"] == 40


def test_evaluate_test_records_the_protocol_and_scores_test_rows_only():
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame({"label_id": rng.integers(0, 4, n), "split": np.where(np.arange(n) < 40, "test", "train"),
                          "group": [f"g{i // 2}" for i in range(n)], "gender": ["여성", "남성"] * 60,
                          "age": rng.integers(20, 60, n)})
    pred = frame["label_id"].to_numpy()[:40]
    out = evaluate_test(frame, pred, CLASSES, {**FAST, "data_source": "kemdy20",
                                                "split": {"group_by": "session", "test_size": 0.2, "seed": 13}})
    assert out["protocol"] == {"data_source": "kemdy20", "split_group_by": "session", "speaker_independent": True,
                               "test_size": 0.2, "split_seed": 13, "test_rows": 40, "test_resampling_units": 20}
    assert out["test_ci"]["ua"] == {"point": 1.0, "lo": 1.0, "hi": 1.0}
    assert out["per_group"]["gender"]["여성"]["rows"] == 20


def test_one_test_group_gives_no_interval_and_few_groups_a_warning():
    y, pred = np.array([0, 1, 2, 3, 0]), np.array([0, 1, 2, 0, 0])
    one = bootstrap_ci(y, pred, ["speaker"] * 5, 4, FAST)
    assert one["ua"]["lo"] is None and one["ua"]["hi"] is None and "no interval" in one["note"]
    assert paired_difference(y, pred, y, ["speaker"] * 5, 4, FAST)["ua"]["share_le_0"] is None
    few = bootstrap_ci(y, pred, ["a", "a", "b", "b", "c"], 4, FAST)
    assert few["ua"]["lo"] is not None and "understates" in few["note"]
    assert "note" not in bootstrap_ci(*sentences()[:2], sentences()[2], 4, FAST)
