"""Core rules stated as behaviour (values, rows used), each written to fail when its rule is broken. Every test here
was seen to fail under the mutation its docstring names (issue 20: mutations that survived the other non-e2e tests).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.model_selection import StratifiedGroupKFold
from torch import nn

from koemo.models import tfidf
from koemo.train.cv import FoldJob, FoldOutcome, FoldRecord, plan_folds, run_cv
from koemo.train.data import ArrayRows, Examples, stack_collate
from koemo.train.trainer import FitResult, TrainConfig, Trainer
from test_tfidf import CLASSES as TFIDF_CLASSES, PARAMS as TFIDF_PARAMS, korean_labels
from test_train import CLASSES, FAST, synthetic_labels

# ---------------------------------------------------------------- models/tfidf.py: what the vectorisers are fitted on


def _block_terms(texts, params: tfidf.TfidfParams) -> dict[str, set]:
    """The terms each TF-IDF block would know from `texts` alone (min_df 1, no cap)."""
    tfidf.prime(texts)
    return {name: set(CountVectorizer(**args).fit(texts).vocabulary_)
            for name, args in tfidf._counter_args(params).items()}


def test_a_tfidf_fold_learns_vocabulary_and_idf_from_its_training_rows_only(tmp_path):
    """Mutation: the fold's vocabulary and idf fitted on all rows, held-out and test included (a leak)."""
    labels = korean_labels(groups=80)
    params = tfidf.TfidfParams.from_params({**TFIDF_PARAMS, "C_grid": [1.0], "max_features": None})
    plan = plan_folds(labels, 3, 0.2, seed=0)[0]
    outcome = tfidf.tfidf_folds(labels, params, len(TFIDF_CLASSES))(plan, None)
    outcome.save(tmp_path)
    model = tfidf.TfidfModel.load(tmp_path)
    texts = labels["text"].to_numpy(dtype=object)
    rows = np.union1d(plan.fit, plan.valid)
    expected = _block_terms(texts[rows], params)
    assert {k: set(v) for k, v in model.features.vocabulary.items()} == expected
    unseen = _block_terms(texts[np.union1d(plan.holdout, plan.test)], params)
    assert any(unseen[k] - expected[k] for k in expected)  # the check has teeth: held-out rows bring new terms
    # smooth idf over the training rows: n = their count
    first = tfidf.TfidfFeatures.fit(texts[rows], params)
    np.testing.assert_array_equal(model.features.idf, first.idf)
    assert model.features.idf.max() == pytest.approx(np.log((1 + len(rows)) / 3) + 1)  # each sentence is read twice


def test_inner_cv_features_never_see_their_validation_rows(monkeypatch):
    """Mutation: the inner-CV vectoriser fitted on its training and validation rows together."""
    labels = korean_labels(groups=60)
    params = tfidf.TfidfParams.from_params(TFIDF_PARAMS)
    texts = labels["text"].to_numpy(dtype=object)
    y, groups = labels["label_id"].to_numpy(), labels["group"].to_numpy()
    fitted_on = []
    original = tfidf.TfidfFeatures.fit.__func__

    def spy(cls, fit_texts, fit_params):
        fitted_on.append(sorted(map(str, fit_texts)))
        return original(cls, fit_texts, fit_params)

    monkeypatch.setattr(tfidf.TfidfFeatures, "fit", classmethod(spy))
    tfidf.choose_C(texts, y, groups, params, len(TFIDF_CLASSES), seed=5)
    splitter = StratifiedGroupKFold(n_splits=params.inner_folds, shuffle=True, random_state=5)
    expected = [sorted(map(str, texts[fit])) for fit, _ in splitter.split(np.zeros(len(y)), y, groups)]
    assert fitted_on == expected


# ---------------------------------------------------------------- train/cv.py: seeds and which predictions go where
class Echo(nn.Module):
    """Logits = the first four input features, whatever training does: a prediction tells which row it came from."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.init = nn.Linear(2, 2)  # consumes the fold's RNG stream at construction

    def forward(self, features):
        return features[:, :4] * self.scale.detach() + 0.0 * self.scale


def _echo_run(labels, x, folds=3, seed=3, record=None):
    y, wav = labels["label_id"].to_numpy(), labels["wav_id"].to_numpy()

    def examples(rows):
        return Examples(ArrayRows(x[rows], y[rows]), y[rows], wav[rows], stack_collate)

    def build(plan):
        model = Echo()
        if record is not None:
            record.append(model.init.weight.detach().clone())
        return FoldJob(model, examples(plan.fit), examples(plan.valid), examples(plan.holdout), examples(plan.test))

    spec = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "weight_decay": 0.0, "schedule": "constant", "warmup_ratio": 0.0}
    trainer = Trainer(TrainConfig.from_params({**FAST, "folds": folds, "seed": seed}, spec, progress=False), len(CLASSES))
    plans = plan_folds(labels, folds, FAST["valid_fraction"], seed)
    return plans, run_cv(labels, plans, build, trainer)


def test_each_fold_model_starts_from_its_own_seed():
    """Mutation: every fold trained with the same seed (identical initial weights, dropout and batch order)."""
    labels = synthetic_labels(120)
    x = np.random.default_rng(0).standard_normal((len(labels), 4)).astype(np.float32)
    first, again = [], []
    _echo_run(labels, x, record=first)
    _echo_run(labels, x, record=again)
    assert all(torch.equal(a, b) for a, b in zip(first, again))          # a fold's seed repeats run to run
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[1], first[2])  # and differs per fold


def test_held_out_rows_get_their_own_predictions_even_when_the_test_set_is_larger():
    """Mutation: held-out rows given test-row predictions when the test set is at least as large."""
    labels = synthetic_labels(200)
    labels.loc[labels["group"].isin([f"g{g}" for g in range(0, 100, 2)]), ["split", "fold"]] = ["test", -1]
    x = np.random.default_rng(1).standard_normal((len(labels), 4)).astype(np.float32)
    plans, result = _echo_run(labels, x, folds=3)
    assert all(len(p.test) >= len(p.holdout) for p in plans)
    own = torch.softmax(torch.from_numpy(x), dim=1).numpy()
    train = np.flatnonzero(labels["split"].to_numpy() == "train")
    test = np.flatnonzero(labels["split"].to_numpy() == "test")
    np.testing.assert_allclose(result.oof[train], own[train], atol=1e-6)
    np.testing.assert_allclose(result.test[test], own[test], atol=1e-6)


# ---------------------------------------------------------------- stack.py: a tie goes to the simpler predictor
def test_a_nested_cv_tie_keeps_the_best_member():
    """Mutation: `>` → `>=` in the stack-or-member choice (a tie would keep the stack)."""
    from koemo.train.stack import fit_meta_learner

    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 300)
    probs = {"perfect": np.eye(4)[y] * 0.96 + 0.01, "noise": rng.dirichlet(np.ones(4), len(y))}
    params = {"learner": "logistic", "features": "log_proba", "C_grid": [0.1, 1.0], "class_weighted": True,
              "select_by": "ua", "seed": 0, "base_models": list(probs)}
    learner, info = fit_meta_learner(probs, y, rng.integers(0, 4, len(y)), params, ["a", "b", "c", "d"])
    nested = info["choice"]["nested_cv"]
    assert nested["stack"] == nested["best_member"] == 1.0   # the tie
    assert info["choice"]["chosen"] == "perfect" and learner.chosen == "perfect"


# ---------------------------------------------------------------- clips/decode.py: the silence gate's level
@pytest.mark.parametrize("amplitude, dbfs", [(1.0, -3.0103), (0.1, -23.0103), (0.001, -63.0103)])
def test_rms_level_is_db_full_scale(amplitude, dbfs):
    """Mutation: RMS computed as 20·log10(power) (the -60 dBFS gate would sit at about -30 dBFS)."""
    from koemo.clips.decode import rms_dbfs

    t = np.arange(16000) / 16000
    assert rms_dbfs(amplitude * np.sin(2 * np.pi * 100 * t).astype(np.float32)) == pytest.approx(dbfs, abs=1e-3)


def test_the_silence_gate_keeps_quiet_speech_and_drops_near_silence():
    from koemo.clips.decode import Decoded, reject_silent

    t = np.arange(16000) / 16000
    quiet = Decoded((0.01 * np.sin(2 * np.pi * 100 * t)).astype(np.float32))      # -43 dBFS: quiet, kept
    hiss = Decoded((0.0005 * np.sin(2 * np.pi * 100 * t)).astype(np.float32))     # -69 dBFS: dropped
    assert reject_silent(quiet, -60.0).wave is not None
    assert reject_silent(hiss, -60.0).reason == "silent"


# ---------------------------------------------------------------- text/embed.py: the unknown-token gate
def test_an_unknown_token_share_at_the_limit_passes_and_above_it_fails():
    """Mutation: the gate `>` → `>=` (a corpus exactly at text_embeddings.max_unknown_share refused)."""
    from types import SimpleNamespace

    from koemo.text.embed import TooManyUnknownTokens, check_unknown_share

    encoder = SimpleNamespace(unk_id=1, special_ids=frozenset({2, 3}), name="stub", source="test")
    at_limit = [[2] + [1] + [9] * 19 + [3]]              # 1 unknown of 20 text tokens: 5 %
    assert check_unknown_share(encoder, ["x"], at_limit, 0.05) == 0.05
    with pytest.raises(TooManyUnknownTokens):
        check_unknown_share(encoder, ["x"], [[2] + [1, 1] + [9] * 18 + [3]], 0.05)


# ---------------------------------------------------------------- train/data.py: rows reach the model as float32
@pytest.mark.parametrize("as_callable", [False, True])
def test_float16_feature_rows_reach_a_float32_model_as_float32(as_callable):
    """Mutation: float16 rows (audio.mel.dtype) passed on unconverted; a real train_audio then fails with
    "expected scalar type Half but found Float"."""
    stored = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float16)
    rows = ArrayRows((lambda i: stored[i]) if as_callable else stored, np.arange(6) % 2)
    batch = stack_collate([rows[i] for i in range(6)])
    assert batch["features"].dtype == torch.float32
    np.testing.assert_array_equal(batch["features"].numpy(), stored.astype(np.float32))
    nn.Linear(5, 2)(batch["features"])  # what the model does with it


# ---------------------------------------------------------------- train/runner.py: the near-collapse warning's threshold
def test_the_training_stage_warns_at_train_warn_min_recall(tmp_path, capsys):
    """Mutation: `warn_near_collapse` called with 0.0 instead of train.warn_min_recall (never warns)."""
    from koemo.train.runner import TrainingPaths, fit_folds_and_write

    labels = synthetic_labels(80)

    def always_first_class(plan, fold_dir):
        def save(directory):
            (directory / "weights.txt").write_text("none")
            return ["weights.txt"]

        held = np.tile(np.array([0.7, 0.1, 0.1, 0.1], np.float32), (len(plan.holdout), 1))
        test = np.tile(np.array([0.7, 0.1, 0.1, 0.1], np.float32), (len(plan.test), 1))
        fit = FitResult(epochs_run=1, best_epoch=1, best_valid_macro_f1=None, history=[], train_samples=1,
                        train_seconds=0.0)
        return FoldOutcome(FoldRecord(plan.fold, fit, set(), set(), set(), {}), held, test, save)

    def run(threshold, name):
        out = tmp_path / name
        paths = TrainingPaths(labels=out / "labels.parquet", model_dir=out / "model", predictions=out / "p.parquet",
                              confusion=out / "c.csv", live=out / "live", metrics=out / "m.json", runtime=out / "r.json",
                              report=out / "report.json")
        fit_folds_and_write("constant", labels, CLASSES, {**FAST, "warn_min_recall": threshold}, {}, None, {}, paths,
                           live=False, train_fold=always_first_class)
        return capsys.readouterr().err

    assert "below train.warn_min_recall=0.2" in run(0.2, "a")      # recall 0 for three classes
    assert "WARNING" not in run(0.0, "b")
