"""The Kiwi + character TF-IDF text model: it learns, its saved form predicts identically, C is chosen on the fold's
training groups only, and reruns repeat bit for bit."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from koemo.models.tfidf import TfidfFeatures, TfidfModel, TfidfParams, morphemes, run_tfidf_cv
from koemo.models import tfidf
from koemo.train.cv import plan_folds, predictions_frame, summarize
from koemo.train.cv import kept_files

CLASSES = ["angry", "happiness", "sadness", "neutral"]
CUES = {0: ["화가 나요", "짜증 나", "열받아", "분노했어"], 1: ["행복해요", "기뻐", "신나요", "즐거웠어"],
        2: ["슬퍼요", "눈물이 나", "우울해", "외로워요"], 3: ["회의가 있어요", "출근해요", "일정이에요", "예정이에요"]}
FILLER = ["오늘", "정말", "그냥", "친구가", "집에서", "아침에", "너무", "우리", "어제", "회사에서", "진짜", "동생이"]
PARAMS = {"char_ngrams": [2, 3], "word_ngrams": [1, 2], "min_df": 1, "sublinear_tf": True, "max_features": 5000,
          "C_grid": [0.1, 1.0, 10.0], "class_weighted": True, "select_by": "ua", "inner_folds": 3, "seed": 0}


def korean_labels(groups: int = 90, per_group: int = 2, folds: int = 3, seed: int = 0) -> pd.DataFrame:
    """labels.parquet-shaped rows: each group one distinct sentence (a class cue among shared filler) read
    `per_group` times; ~20 % of groups test, the rest spread over `folds` split folds."""
    rng = np.random.default_rng(seed)
    rows, seen = [], set()
    for g in range(groups):
        label = g % len(CLASSES)
        while True:
            words = list(rng.choice(FILLER, 3, replace=False))
            words.insert(int(rng.integers(0, 4)), str(rng.choice(CUES[label])))
            text = " ".join(words) + "."
            if text not in seen:
                break
        seen.add(text)
        test, fold = rng.random() < 0.2, int(rng.integers(0, folds))
        for r in range(per_group):
            rows.append({"wav_id": f"w{g:03d}_{r}", "text": text, "split": "test" if test else "train",
                         "fold": -1 if test else fold, "group": f"g{g}",
                         "label": CLASSES[label], "label_id": label})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def labels() -> pd.DataFrame:
    return korean_labels()


@pytest.fixture(scope="module")
def plans(labels):
    return plan_folds(labels, folds=3, valid_fraction=0.2, seed=0)


@pytest.fixture(scope="module")
def fitted(labels, plans, tmp_path_factory):
    out = tmp_path_factory.mktemp("tfidf")
    return out, run_tfidf_cv(labels, plans, PARAMS, len(CLASSES), out_dir=out, progress=False)


def test_learns_separable_korean_and_fits_the_cv_contract(labels, fitted):
    _, result = fitted
    metrics = summarize(labels, result, CLASSES, folds=3, valid_fraction=0.0)
    assert metrics["oof"]["ua"] > 0.9 and metrics["test"]["ua"] > 0.9, (metrics["oof"]["ua"], metrics["test"]["ua"])
    assert metrics["cv"]["oof_missing"] == 0
    frame = predictions_frame(labels, result, CLASSES)
    probs = frame[[f"prob_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    for record in result.records:  # never trained on its held-out fold or a test row
        assert not record.trained_ids & record.holdout_ids
        assert not record.trained_ids & set(labels.loc[labels["split"] == "test", "wav_id"])
        assert record.fit.epochs_run == 1 and record.fit.best_valid_macro_f1 is None


def test_features_equal_sklearn_tfidf_per_block(labels):
    """The hand-rolled transform is sklearn's TfidfVectorizer (smooth idf, sublinear tf, l2) block by block."""
    texts = labels["text"].tolist()
    params = TfidfParams.from_params(PARAMS)
    features = TfidfFeatures.fit(texts, params)
    x = features.transform(texts).toarray()
    width = len(features.vocabulary["morphemes"])
    blocks = {"morphemes": (x[:, :width], dict(tokenizer=morphemes, token_pattern=None, lowercase=False, ngram_range=(1, 2))),
              "chars": (x[:, width:], dict(analyzer="char_wb", ngram_range=(2, 3)))}
    for name, (ours, args) in blocks.items():
        ref = TfidfVectorizer(**args, sublinear_tf=True, max_features=5000).fit(texts)
        cols = [features.vocabulary[name][t] for t in ref.get_feature_names_out()]
        np.testing.assert_allclose(ours[:, cols], ref.transform(texts).toarray(), rtol=1e-12, atol=1e-12)


def test_saved_form_round_trips_to_identical_probabilities(labels, plans, fitted):
    out, result = fitted
    unseen = ["처음 보는 문장이에요.", "", "ABC 123 화가 나요!!"]
    test_sum = np.zeros((len(plans[0].test), len(CLASSES)))
    texts = labels["text"].to_numpy(dtype=object)
    for plan in plans:
        folder = out / f"fold{plan.fold}"
        # the model's own files, plus the CV loop's record of the fold (what a resumed run would reuse)
        assert sorted(p.name for p in kept_files(folder)) == ["model.json", "vocabulary.json", "weights.safetensors"]
        assert sorted(p.name for p in folder.iterdir()) == ["fold_record.json", "model.json", "probabilities.safetensors",
                                                            "vocabulary.json", "weights.safetensors"]
        loaded = TfidfModel.load(folder)
        assert np.array_equal(loaded.predict_proba(texts[plan.holdout]).astype(np.float32), result.oof[plan.holdout])
        test_sum += loaded.predict_proba(texts[plan.test])
        assert loaded.predict_proba(unseen).shape == (3, len(CLASSES))
    assert np.array_equal((test_sum / len(plans)).astype(np.float32), result.test[plans[0].test])

    model = tfidf.fit_tfidf(texts[plans[0].fit], labels["label_id"].to_numpy()[plans[0].fit],
                            TfidfParams.from_params(PARAMS), 1.0, CLASSES)
    model.save(out / "direct")
    again = TfidfModel.load(out / "direct")
    probe = list(texts) + unseen
    assert np.array_equal(model.predict_proba(probe), again.predict_proba(probe))  # float64, bit for bit


def test_C_is_chosen_on_the_folds_training_groups_only(labels, plans, monkeypatch, tmp_path):
    """Every inner fit and validation sees only the fold's training rows (plan.fit ∪ plan.valid), never its held-out
    fold or a test row; inner fit and validation never share a sentence group; every training group is validated
    once; and the C kept is the grid's best inner score (ties → smaller C)."""
    calls = []
    real = tfidf.inner_predictions

    def spy(train_texts, y_train, valid_texts, params, grid):
        calls.append((set(train_texts), set(valid_texts)))
        return real(train_texts, y_train, valid_texts, params, grid)

    monkeypatch.setattr(tfidf, "inner_predictions", spy)
    result = run_tfidf_cv(labels, plans, PARAMS, len(CLASSES), out_dir=tmp_path, progress=False)
    text = labels["text"].to_numpy(dtype=object)
    assert len(calls) == PARAMS["inner_folds"] * len(plans)
    for plan, record in zip(plans, result.records):
        training = set(text[np.union1d(plan.fit, plan.valid)])
        forbidden = set(text[np.union1d(plan.holdout, plan.test)])
        mine = calls[plan.fold * PARAMS["inner_folds"]:(plan.fold + 1) * PARAMS["inner_folds"]]
        for inner_fit, inner_valid in mine:
            assert inner_fit | inner_valid <= training
            assert not (inner_fit | inner_valid) & forbidden
            assert not inner_fit & inner_valid  # texts are per group here, so this is group-disjointness
        assert set().union(*(v for _, v in mine)) == training
        saved = TfidfModel.load(tmp_path / f"fold{plan.fold}").info
        scores = {float(c): s for c, s in saved["inner_cv"].items()}
        assert saved["C"] == max(sorted(scores), key=lambda c: (scores[c], -c))
        assert [h["C"] for h in record.fit.history] == sorted(scores)


def test_ties_go_to_the_smaller_C(labels, monkeypatch):
    monkeypatch.setattr(tfidf, "inner_predictions", lambda tr, y, va, p, grid: {C: np.zeros(len(va), int) for C in grid})
    rows = np.flatnonzero(labels["split"].to_numpy() == "train")
    C, scores = tfidf.choose_C(labels["text"].to_numpy(dtype=object)[rows], labels["label_id"].to_numpy()[rows],
                               labels["group"].to_numpy()[rows], TfidfParams.from_params(PARAMS), len(CLASSES), seed=0)
    assert C == 0.1 and len(set(scores.values())) == 1


def test_two_runs_are_identical(labels, plans, fitted, tmp_path):
    out, first = fitted
    second = run_tfidf_cv(labels, plans, PARAMS, len(CLASSES), out_dir=tmp_path, progress=False)
    assert np.array_equal(first.oof, second.oof, equal_nan=True) and np.array_equal(first.test, second.test, equal_nan=True)
    for plan in plans:
        for name in ("model.json", "vocabulary.json", "weights.safetensors"):
            a, b = (Path(d) / f"fold{plan.fold}" / name for d in (out, tmp_path))
            assert a.read_bytes() == b.read_bytes(), name


def test_kiwi_tokens_repeat_in_a_fresh_process(labels):
    """A fresh process (its own Kiwi, one sentence at a time) gives the tokens this one got in batches."""
    texts = sorted(set(labels["text"]))[:40]
    tfidf.prime(texts)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        fresh = list(pool.map(morphemes, texts))
    assert fresh == [morphemes(t) for t in texts]
    assert all(t and all("/" in m for m in t) for t in fresh)


def test_params_are_checked():
    with pytest.raises(ValueError, match="unknown key"):
        TfidfParams.from_params({**PARAMS, "C_gird": [1]})
    with pytest.raises(ValueError, match="select_by"):
        TfidfParams.from_params({**PARAMS, "select_by": "f1"})
    assert TfidfParams.from_params({"C_grid": ["1e-1", 1]}).C_grid == (0.1, 1.0)


def test_binary_fit_and_absent_class_keep_sklearn_probabilities():
    """A fold that saw only two classes: softmax of [-w/2, w/2] is sklearn's sigmoid; the unseen class gets 0."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 5)), np.repeat([1, 3], 20)
    clf = LogisticRegression().fit(x, y)
    coef, intercept = tfidf.full_coefficients(clf, 4)
    logits = x @ coef.T + intercept
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs[:, [1, 3]], clf.predict_proba(x), rtol=1e-10, atol=1e-12)
    assert (probs[:, [0, 2]] == 0).all()
