import numpy as np
import pandas as pd
import pytest

from koemo.labels.aggregate import aggregate, build_label_table, fleiss_kappa
from koemo.labels.split import assign_split, check_no_leak, make_groups, normalize_sentence


def frame_of(*annotation_rows, situation=None):
    data = {}
    for i in range(5):
        data[f"emotion_{i + 1}"] = [row[i][0] for row in annotation_rows]
        data[f"intensity_{i + 1}"] = [row[i][1] for row in annotation_rows]
    data["situation"] = situation or ["neutral"] * len(annotation_rows)
    return pd.DataFrame(data)


# The reference project's worked examples.
SEED_EXAMPLES = [
    ([("angry", 2), ("surprise", 2), ("happiness", 2), ("happiness", 2), ("happiness", 2)], "happiness"),
    ([("happiness", 2), ("happiness", 1), ("sadness", 1), ("sadness", 1), ("sadness", 1)], "sadness"),
    ([("neutral", 0), ("happiness", 1), ("sadness", 1), ("sadness", 1), ("neutral", 0)], "sadness"),
]


@pytest.mark.parametrize("annotations, expected", SEED_EXAMPLES)
def test_weighted_rule_on_seed_examples(annotations, expected):
    assert aggregate(frame_of(annotations), "weighted").label[0] == expected


def test_weighted_tie_accounting():
    agg = aggregate(frame_of(*[a for a, _ in SEED_EXAMPLES],
                             [("angry", 1), ("sadness", 1), ("neutral", 0), ("neutral", 0), ("fear", 0)]), "weighted")
    # row 2: 3–3 broken by votes; row 4: angry 1 vs sadness 1, one vote each → earliest annotator (angry)
    assert list(agg.primary_tie) == [False, True, False, True]
    assert list(agg.broken_by_secondary) == [False, True, False, False]
    assert list(agg.unresolved) == [False, False, False, True]
    assert agg.label[3] == "angry"


def test_neutral_wins_weighted_only_without_intensity_elsewhere():
    agg = aggregate(frame_of([("neutral", 0)] * 3 + [("sadness", 0)] * 2,
                             [("neutral", 0)] * 4 + [("sadness", 1)]), "weighted")
    assert list(agg.label) == ["neutral", "sadness"]


def test_majority_and_situation_strategies():
    rows = frame_of([("neutral", 0)] * 3 + [("angry", 2)] * 2, situation=["angry"])
    assert aggregate(rows, "majority").label[0] == "neutral"
    assert aggregate(rows, "weighted").label[0] == "angry"
    assert aggregate(rows, "situation").label[0] == "angry"
    with pytest.raises(ValueError, match="labels.strategy"):
        aggregate(rows, "vote")


def test_fleiss_kappa_matches_reference_example():
    # Fleiss (1971) / Wikipedia worked example: 10 items, 14 raters, 5 categories → kappa 0.210
    table = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                      [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=1e-3)
    assert fleiss_kappa(np.array([[5, 0], [0, 5]])) == pytest.approx(1.0)


def test_normalize_sentence():
    assert normalize_sentence("괜찮아요.") == normalize_sentence(" 괜찮아 요! ") == "괜찮아요"


def _synthetic_manifest(rows=400, seed=0):
    rng = np.random.default_rng(seed)
    classes = np.array(["angry", "happiness", "neutral", "sadness", "fear"])
    label = classes[rng.integers(0, 5, rows)]
    sentence_id = rng.integers(0, 120, rows)  # heavy sentence repetition, as in the real data
    data = {"wav_id": [f"{i:024x}" for i in range(rows)], "text": [f"문장 {s}번 입니다." for s in sentence_id],
            "wav_path": "x.wav", "release": "demo", "age": pd.array(rng.integers(20, 60, rows), dtype="Int64"),
            "gender": rng.choice(["남성", "여성"], rows), "duration_s": 1.0, "situation": label}
    for i in range(5):
        data[f"emotion_{i + 1}"] = label
        data[f"intensity_{i + 1}"] = np.where(label == "neutral", 0, 1 + (i % 2))
    return pd.DataFrame(data)


def test_split_is_grouped_stratified_and_deterministic():
    manifest = _synthetic_manifest()
    params = {"test_size": 0.2, "folds": 4, "seed": 3, "group_by": "sentence"}
    table, metrics = build_label_table(manifest, "weighted", ["angry", "happiness", "neutral", "sadness"], params)
    assert metrics["dropped"]["label_not_in_classes"] == (manifest["situation"] == "fear").sum()
    assert metrics["rows_kept"] == len(table)
    check_no_leak(table)
    test_sentences = set(table.loc[table["split"] == "test", "text"])
    assert not test_sentences & set(table.loc[table["split"] == "train", "text"])
    assert 0.12 < (table["split"] == "test").mean() < 0.28
    assert set(table.loc[table["split"] == "train", "fold"]) == {0, 1, 2, 3}
    assert (table.loc[table["split"] == "test", "fold"] == -1).all()
    for c in ["angry", "happiness", "neutral", "sadness"]:
        assert metrics["class_counts"]["test"][c] > 0
    again, _ = build_label_table(manifest, "weighted", ["angry", "happiness", "neutral", "sadness"], params)
    pd.testing.assert_frame_equal(table, again)


def test_check_no_leak_detects_a_straddling_group():
    frame = pd.DataFrame({"group": ["a", "a", "b"], "fold": [0, -1, 1]})
    with pytest.raises(AssertionError, match="straddle"):
        check_no_leak(frame)


def test_speaker_proxy_grouping():
    manifest = _synthetic_manifest()
    groups = make_groups(manifest, "speaker")
    assert groups.nunique() <= manifest["age"].nunique() * 2
    with pytest.raises(ValueError, match="sentence\\+speaker joins"):
        make_groups(manifest, "sentence+speaker")


def test_normalize_sentence_folds_width_case_and_decomposed_hangul():
    """One sentence typed on another keyboard or saved by another OS must land in the same group."""
    import unicodedata

    assert normalize_sentence("ＯＫ 괜찮아요") == normalize_sentence("ok 괜찮아요") == "ok괜찮아요"  # NFKC: full width
    assert normalize_sentence("Hello, 친구") == normalize_sentence("hELLO 친구!")                   # case
    assert normalize_sentence(unicodedata.normalize("NFD", "괜찮아요.")) == "괜찮아요"              # NFKC: jamo composed
    frame = pd.DataFrame({"text": ["괜찮아요.", unicodedata.normalize("NFD", "괜찮아요"), "ＯＫ!", "ok"],
                          "age": [30] * 4, "gender": ["남성"] * 4})
    assert make_groups(frame, "sentence").nunique() == 2


def _joined(shared: int, alone: int) -> pd.DataFrame:
    """`shared` rows of one speaker (distinct sentences, so joined only through the speaker) + `alone` unrelated rows."""
    rows = shared + alone
    return pd.DataFrame({"text": [f"문장 {i}" for i in range(rows)],
                         "age": [30] * shared + list(range(40, 40 + alone)), "gender": ["남성"] * rows})


def test_sentence_speaker_join_is_refused_above_half_the_rows():
    assert make_groups(_joined(5, 5), "sentence+speaker").nunique() == 6   # 50 %: still a usable split
    with pytest.raises(ValueError, match="joins 60% of rows into one group"):
        make_groups(_joined(6, 4), "sentence+speaker")


def test_label_and_split_errors_are_user_errors():
    from koemo.core.errors import UserError

    manifest = _synthetic_manifest(rows=40)
    params = {"test_size": 0.2, "folds": 4, "seed": 3, "group_by": "sentence"}
    for classes, match in ((["angry", "joy"], "not among the rater emotions"), (["angry"], "at least two")):
        with pytest.raises(UserError, match=match):
            build_label_table(manifest, "weighted", classes, params)
    with pytest.raises(UserError, match="the manifest has no rows; rerun the corpus stage"):
        build_label_table(manifest.iloc[:0], "weighted", ["angry", "sadness"], params)
    with pytest.raises(UserError, match=r"only \d+ distinct groups"):
        assign_split(manifest["situation"], manifest["text"], 0.5, 30, 0)
