"""The trainer, K-fold OOF integrity, the three models' inputs, and the metrics that expose collapse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from koemo.core.metrics import MODEL_HEADLINE, classification_report, is_collapsed, majority_baseline, model_headline
from koemo.core.shards import ShardStore as FeatureStore
from koemo.models.audio import AudioInputs, AudioResNet, SpecAugment
from koemo.models.multimodal import MultimodalConv1D, MultimodalInputs
from koemo.models.text import TextInputs
from koemo.train.cv import NOT_HELD_OUT, FoldJob, cv_folds, plan_folds, predictions_frame, run_cv
from koemo.train.data import ArrayRows, EpochBatchSampler, Examples, stack_collate
from koemo.train.runner import TrainingPaths, fit_folds_and_write
from koemo.train.trainer import TrainConfig, Trainer, class_weights, seed_everything

CLASSES = ["angry", "happiness", "neutral", "sadness"]
FAST = dict(seed=3, folds=2, valid_fraction=0.25, patience=2, class_weighted=True, grad_clip=1.0,
            precision="fp32", device="cpu")


# ---------------------------------------------------------------- synthetic corpus shaped like labels.parquet
def synthetic_labels(n: int = 160, folds: int = 5, seed: int = 0, per_group: int = 2) -> pd.DataFrame:
    """Rows in sentence groups of `per_group`; 20 % of groups test, the rest spread over `folds` folds."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n // per_group), per_group)
    group_label = rng.integers(0, len(CLASSES), n // per_group)
    label_id = group_label[groups]
    group_test = rng.random(n // per_group) < 0.2
    group_fold = rng.integers(0, folds, n // per_group)
    split = np.where(group_test[groups], "test", "train")
    fold = np.where(group_test[groups], -1, group_fold[groups])
    return pd.DataFrame({"wav_id": [f"w{i:04d}" for i in range(n)], "text": [f"문장 {g}" for g in groups],
                         "split": split, "fold": fold, "group": [f"g{g}" for g in groups],
                         "label": np.asarray(CLASSES, dtype=object)[label_id], "label_id": label_id})


def separable_features(labels: pd.DataFrame, dim: int = 12, noise: float = 0.3, seed: int = 1) -> np.ndarray:
    """Class means far apart: any working classifier separates them."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((len(CLASSES), dim)) * 2.0
    return (centers[labels["label_id"].to_numpy()] + noise * rng.standard_normal((len(labels), dim))).astype(np.float32)


def mm_spec(**over) -> dict:
    return {"epochs": 6, "batch_size": 16, "lr": 3e-3, "weight_decay": 0.0, "schedule": "constant", "warmup_ratio": 0.0,
            "channels": 8, "kernel_size": 5, "dropout": 0.1, "hidden": 16, **over}


def write_feature_store(root: Path, labels: pd.DataFrame, values: np.ndarray, aug_copies: int = 1,
                        shard_rows: int = 50) -> Path:
    """A `data/features/<kind>` directory per the contract: originals + augmented copies of training rows."""
    rows, arrays = [], []
    for i, r in labels.iterrows():
        entries = [("", 0)] + ([("noise", c) for c in range(aug_copies)] if r["split"] == "train" else [])
        for aug, copy in entries:
            rows.append({"wav_id": r["wav_id"], "aug": aug, "aug_copy": copy, "split": r["split"], "fold": r["fold"],
                         "label": r["label"], "label_id": r["label_id"]})
            arrays.append(values[i] + (0.05 * (copy + 1) if aug else 0.0))
    index = pd.DataFrame(rows)
    index["shard"] = np.arange(len(index)) // shard_rows
    index["row"] = np.arange(len(index)) % shard_rows
    root.mkdir(parents=True, exist_ok=True)
    stacked = np.stack(arrays).astype(np.float32)
    for k in range(int(index["shard"].max()) + 1):
        np.save(root / f"shard-{k:03d}.npy", stacked[index["shard"].to_numpy() == k])
    index.to_parquet(root / "index.parquet", index=False)
    return root


# ---------------------------------------------------------------- evaluate
def test_report_matches_hand_computed_wa_ua_f1():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 3])
    y_pred = np.array([0, 0, 0, 1, 1, 0, 2, 2])
    r = classification_report(y_true, y_pred, CLASSES)
    assert r["accuracy"] == pytest.approx(5 / 8)                        # WA
    assert r["ua"] == pytest.approx((3 / 4 + 1 / 2 + 1 + 0) / 4)         # mean per-class recall
    assert r["macro_f1"] == pytest.approx((0.75 + 0.5 + 2 / 3 + 0) / 4)
    assert r["weighted_f1"] == pytest.approx((4 * 0.75 + 2 * 0.5 + 2 / 3) / 8)
    assert r["per_class"]["happiness"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert r["per_class"]["neutral"]["precision"] == 0.5 and r["per_class"]["sadness"]["f1"] == 0.0
    assert r["confusion"]["matrix"] == [[3, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0]]
    assert not r["collapsed"]
    base = majority_baseline(np.array([0, 0, 2, 1]), y_true, CLASSES)
    assert base == {"class": "angry", "accuracy": 0.5, "ua": 0.25, "macro_f1": pytest.approx((2 / 3) / 4)}


def test_collapse_flags_a_constant_predictor_only():
    y_true = np.tile(np.arange(4), 25)
    constant = classification_report(y_true, np.full(100, 2), CLASSES)
    assert constant["collapsed"] and constant["accuracy"] == 0.25 and constant["ua"] == 0.25
    assert constant["predicted_share"]["neutral"] == 1.0
    assert is_collapsed(np.r_[np.zeros(91), np.ones(9)].astype(int), 4)
    assert not is_collapsed(np.r_[np.zeros(90), np.ones(10)].astype(int), 4)  # exactly 90 % is not "more than"
    assert not classification_report(y_true, y_true, CLASSES)["collapsed"]


# ---------------------------------------------------------------- batching and the trainer
def test_epoch_batches_cover_every_row_once_and_repeat_per_seed():
    lengths = np.random.default_rng(0).integers(3, 60, 203)
    sampler = EpochBatchSampler(203, 16, shuffle=True, seed=5, lengths=lengths)
    sampler.set_epoch(1)
    first = sampler.batches()
    assert sorted(np.concatenate(first).tolist()) == list(range(203))
    assert all(len(b) <= 16 for b in first)
    again = EpochBatchSampler(203, 16, shuffle=True, seed=5, lengths=lengths)
    again.set_epoch(1)
    assert [b.tolist() for b in again.batches()] == [b.tolist() for b in first]
    sampler.set_epoch(2)
    assert [b.tolist() for b in sampler.batches()] != [b.tolist() for b in first]
    # length grouping: far less padding than random batches of the same size
    padded = sum(len(b) * lengths[b].max() for b in first)
    random_batches = np.array_split(np.random.default_rng(1).permutation(203), len(first))
    assert padded < 0.8 * sum(len(b) * lengths[b].max() for b in random_batches)


def test_class_weights_balance_counts():
    w = class_weights(np.array([0, 0, 0, 1, 2, 2]), 4)
    assert w.tolist() == pytest.approx([6 / 9, 2.0, 1.0, 0.0])  # n / (present · count); absent class 0


def _examples(x, y, ids=None):
    ids = np.arange(len(y)).astype(str) if ids is None else ids
    return Examples(ArrayRows(x, y), y, ids, stack_collate)


def test_trainer_learns_a_separable_problem():
    labels = synthetic_labels(240)
    x, y = separable_features(labels), labels["label_id"].to_numpy()
    config = TrainConfig.from_params(FAST, mm_spec(epochs=8, lr="3e-3"), progress=False)
    trainer = Trainer(config, len(CLASSES))
    seed_everything(0, trainer.device)
    model = MultimodalConv1D(x.shape[1], len(CLASSES), channels=8, hidden=16)
    fit = trainer.fit(model, _examples(x[:160], y[:160]), _examples(x[160:200], y[160:200]))
    probs = trainer.predict(model, _examples(x[200:], y[200:]))
    assert probs.shape == (40, 4) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert (probs.argmax(axis=1) == y[200:]).mean() > 0.9
    assert fit.best_valid_macro_f1 > 0.9 and 1 <= fit.best_epoch <= fit.epochs_run <= 8
    assert [row["epoch"] for row in fit.history] == list(range(1, fit.epochs_run + 1))


def test_early_stopping_keeps_the_best_epoch_and_stops_after_patience():
    """Labels independent of the features: validation F1 wanders, so training stops early on patience."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 6)).astype(np.float32)
    y = rng.integers(0, 4, 120)
    config = TrainConfig(epochs=30, batch_size=16, lr=1e-2, patience=2, precision="fp32", device="cpu", progress=False)
    trainer = Trainer(config, 4)
    seed_everything(1, trainer.device)
    model = MultimodalConv1D(6, 4, channels=4, hidden=8)
    fit = trainer.fit(model, _examples(x[:80], y[:80]), _examples(x[80:], y[80:]))
    assert fit.epochs_run < 30 and fit.epochs_run - fit.best_epoch == 2
    best = max(row["valid_macro_f1"] for row in fit.history)
    assert fit.best_valid_macro_f1 == best == fit.history[fit.best_epoch - 1]["valid_macro_f1"]
    # the kept weights are the best epoch's: predicting validation again reproduces its macro-F1
    again = classification_report(y[80:], trainer.predict(model, _examples(x[80:], y[80:])).argmax(1), CLASSES)
    assert again["macro_f1"] == pytest.approx(best)


# ---------------------------------------------------------------- folds and OOF integrity
def test_cv_folds_merge_split_folds_and_validation_slice_mode():
    labels = synthetic_labels(200)
    split_fold = labels["fold"].to_numpy()
    for k in (2, 3, 5):
        cv = cv_folds(labels, k)
        train = split_fold >= 0
        assert (cv[train] == split_fold[train] % k).all() and (cv[~train] == -1).all()
    one = cv_folds(labels, 1)
    assert set(one[split_fold == 0]) == {0} and set(one[split_fold > 0]) == {NOT_HELD_OUT}
    with pytest.raises(ValueError, match="between 1 and"):
        cv_folds(labels, 6)


@pytest.mark.parametrize("folds", [1, 2, 3])
def test_plans_hold_out_every_training_row_once_with_grouped_inner_validation(folds):
    labels = synthetic_labels(300)
    plans = plan_folds(labels, folds, 0.2, seed=7)
    train = set(np.flatnonzero(labels["split"] == "train"))
    groups = labels["group"].to_numpy()
    held = np.concatenate([p.holdout for p in plans])
    assert len(held) == len(set(held))
    if folds > 1:
        assert set(held) == train
    for p in plans:
        assert set(p.fit) | set(p.valid) | set(p.holdout) == train
        assert not (set(p.fit) & set(p.valid)) and not (set(p.fit) & set(p.holdout))
        assert not (set(groups[p.fit]) & set(groups[p.valid]))       # no sentence on both sides
        assert not (set(groups[p.fit]) & set(groups[p.holdout]))
        assert 0.1 < len(p.valid) / (len(p.fit) + len(p.valid)) < 0.3
        assert set(p.test) == set(np.flatnonzero(labels["split"] == "test"))


def multimodal_run(labels, folds, tmp_path=None, **spec):
    text = separable_features(labels, dim=10, seed=1)
    audio = separable_features(labels, dim=4, seed=2) * 50 + 100   # a different scale: the scaler matters
    inputs = MultimodalInputs(labels, text, audio, len(CLASSES), mm_spec(**spec))
    shared = {**FAST, "folds": folds}
    trainer = Trainer(TrainConfig.from_params(shared, mm_spec(**spec), progress=False), len(CLASSES))
    plans = plan_folds(labels, folds, shared["valid_fraction"], shared["seed"])
    return inputs, plans, run_cv(labels, plans, inputs, trainer, out_dir=tmp_path)


@pytest.mark.parametrize("folds", [1, 3])
def test_oof_every_training_row_once_from_a_model_that_never_saw_it(folds, tmp_path):
    labels = synthetic_labels(200)
    inputs, plans, result = multimodal_run(labels, folds, tmp_path, epochs=2)
    is_train = (labels["split"] == "train").to_numpy()
    wav = labels["wav_id"].to_numpy()
    has_oof = np.isfinite(result.oof).all(axis=1)
    assert not has_oof[~is_train].any()                               # test rows never get an OOF prediction
    if folds > 1:
        assert has_oof[is_train].all()
    else:
        assert (has_oof == (labels["fold"].to_numpy() == 0)).all()    # the validation slice only
    for record, plan in zip(result.records, plans):
        assert record.holdout_ids == set(wav[plan.holdout])
        assert not record.trained_ids & record.holdout_ids
        assert not record.trained_ids & set(wav[~is_train])           # no test row ever trained on
        assert not record.trained_ids & record.valid_ids
    holdouts = [r.holdout_ids for r in result.records]
    assert sum(map(len, holdouts)) == len(set().union(*holdouts)) == has_oof.sum()
    assert np.isfinite(result.test[~is_train]).all() and not np.isfinite(result.test[is_train]).any()
    frame = predictions_frame(labels, result, CLASSES)
    assert list(frame.columns) == ["wav_id", "split", "fold"] + [f"prob_{c}" for c in CLASSES]
    assert (frame["fold"].to_numpy()[is_train & has_oof] == result.cv_fold[is_train & has_oof]).all()
    # the scaler is fit on the fold's fitting rows only and saved exactly
    from safetensors.numpy import load_file

    x = inputs.x.astype(np.float64)
    for plan in plans:
        saved = load_file(str(tmp_path / f"fold{plan.fold}" / "scaler.safetensors"))
        assert np.allclose(saved["mean"], x[plan.fit].mean(axis=0))
        assert not np.allclose(saved["mean"], x[is_train].mean(axis=0))
        assert (tmp_path / f"fold{plan.fold}" / "model.safetensors").is_file()


@pytest.mark.filterwarnings("ignore:The least populated class")
def test_a_builder_that_trains_on_held_out_rows_is_refused():
    labels = synthetic_labels(120)
    text, audio = separable_features(labels, 6), separable_features(labels, 2, seed=3)
    honest = MultimodalInputs(labels, text, audio, len(CLASSES), mm_spec(epochs=1))

    def leaky(plan):
        job = honest(plan)
        everything = np.r_[plan.fit, plan.holdout]
        return FoldJob(job.model, honest.examples(honest.x, everything), job.valid, job.holdout, job.test)

    trainer = Trainer(TrainConfig.from_params(FAST, mm_spec(epochs=1), progress=False), len(CLASSES))
    with pytest.raises(AssertionError, match="held-out wav_id"):
        run_cv(labels, plan_folds(labels, 2, 0.25, 0), leaky, trainer)


@pytest.mark.filterwarnings("ignore:The least populated class")
def test_audio_inputs_train_on_augmented_copies_of_fitting_rows_only(tmp_path):
    labels = synthetic_labels(120)
    values = np.repeat(separable_features(labels, dim=8)[:, :, None], 10, axis=2)   # [8 bands, 10 frames]
    store = FeatureStore(write_feature_store(tmp_path / "mel", labels, values, aug_copies=2))
    spec = {"width": 4, "blocks": [1, 1], "stem_stride": 1, "pool": [1, 1], "dropout": 0.0, "use_augmented": True,
            "spec_augment": {"freq_masks": 1, "freq_width": 2, "time_masks": 1, "time_width": 3}}
    inputs = AudioInputs(labels, store, len(CLASSES), spec)
    wav = labels["wav_id"].to_numpy()
    for plan in plan_folds(labels, 2, 0.25, 0):
        job = inputs(plan)
        assert len(job.train) == 3 * len(plan.fit)                     # original + 2 copies each
        assert set(job.train.ids) == set(wav[plan.fit])
        for name, examples, rows in (("valid", job.valid, plan.valid), ("holdout", job.holdout, plan.holdout),
                                     ("test", job.test, plan.test)):
            assert list(examples.ids) == list(wav[rows]), name
            x0, _ = examples.dataset[0]
            assert np.array_equal(x0, values[rows[0]]), f"{name} must read the original, not an augmented copy"
    spec_off = {**spec, "use_augmented": False}
    assert len(AudioInputs(labels, store, len(CLASSES), spec_off)(plan).train) == len(plan.fit)


def test_audio_resnet_and_specaugment_shapes():
    model = AudioResNet(4, width=4, blocks=[1, 1, 1], stem_stride=2, pool=[2, 2],
                        spec_augment={"freq_masks": 2, "freq_width": 8, "time_masks": 2, "time_width": 20})
    x = torch.randn(3, 128, 400)
    assert model(x).shape == (3, 4)
    aug = SpecAugment(2, 8, 2, 20)
    aug.train()
    torch.manual_seed(0)
    masked = aug(torch.ones(5, 128, 400))
    assert masked.shape == (5, 128, 400) and (masked == 0).any() and (masked == 1).mean(dtype=torch.float) > 0.5
    aug.eval()
    assert torch.equal(aug(x), x)


# ---------------------------------------------------------------- the stage runner: outputs, determinism, dvclive
def stage_run(root: Path, labels: pd.DataFrame, monkeypatch, live: bool) -> dict[str, bytes]:
    monkeypatch.chdir(root)
    text = separable_features(labels, dim=10, seed=1)
    audio = separable_features(labels, dim=4, seed=2)
    inputs = MultimodalInputs(labels, text, audio, len(CLASSES), mm_spec(epochs=3))
    paths = TrainingPaths(Path("data/labels.parquet"), Path("data/models/multimodal"),
                          Path("data/predictions/multimodal.parquet"), Path("plots/multimodal_confusion.csv"),
                          Path("dvclive/multimodal"), Path("metrics/train_multimodal.json"),
                          Path("reports/runtime/train_multimodal.json"), Path("reports/train_multimodal.json"))
    fit_folds_and_write("multimodal", labels, CLASSES, {**FAST, "folds": 2}, mm_spec(epochs=3), inputs, {"note": "test"},
                       paths, live=live)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "runtime" not in p.parts}


def test_stage_outputs_are_byte_identical_for_the_same_seed(tmp_path, monkeypatch):
    labels = synthetic_labels(160)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = stage_run(tmp_path / "a", labels, monkeypatch, live=True)
    second = stage_run(tmp_path / "b", labels, monkeypatch, live=True)
    assert first == second
    assert {"data/predictions/multimodal.parquet", "data/models/multimodal/config.json",
            "data/models/multimodal/fold0/model.safetensors", "data/models/multimodal/fold1/scaler.safetensors",
            "metrics/train_multimodal.json", "reports/train_multimodal.json", "plots/multimodal_confusion.csv"} <= set(first)
    assert "dvc.yaml" not in first and not any(name.endswith("dvc.yaml") for name in first)
    assert any(name.startswith("dvclive/multimodal/plots/metrics/fold1/valid_macro_f1") for name in first)
    curve = first["dvclive/multimodal/plots/metrics/fold0/train_loss.tsv"].decode()
    assert curve.splitlines()[0] == "step\ttrain_loss"                   # no wall-clock timestamp column
    headline = json.loads(first["metrics/train_multimodal.json"])
    assert set(headline) == set(MODEL_HEADLINE) and "dvclive/multimodal/metrics.json" not in first
    metrics = json.loads(first["reports/train_multimodal.json"])
    assert headline == model_headline(metrics) and headline["test_ua"] == metrics["test"]["ua"]
    assert headline["test_ua_lo"] is None and headline["baseline_ua"] == 0.25  # no evaluation section: no interval
    assert metrics["test"]["ua"] > 0.9 and metrics["oof"]["ua"] > 0.9 and not metrics["collapsed"]
    assert metrics["beats_baseline_ua"] and metrics["baseline"]["test"]["ua"] == 0.25
    assert metrics["cv"] == {**metrics["cv"], "mode": "k-fold", "folds": 2, "oof_missing": 0}
    runtime = json.loads((tmp_path / "b" / "reports/runtime/train_multimodal.json").read_text())
    assert runtime["device"] == "cpu" and runtime["train_samples_per_second"] > 0
    confusion = pd.read_csv(tmp_path / "a" / "plots/multimodal_confusion.csv")
    assert list(confusion.columns) == ["actual", "predicted"] and len(confusion) == (labels["split"] == "test").sum()

    # the saved folds (weights + scaler + config) reproduce the test probabilities: enough for a later `predict`
    from safetensors.numpy import load_file
    from safetensors.torch import load_model

    models = tmp_path / "a" / "data/models/multimodal"
    config = json.loads((models / "config.json").read_text())
    x = np.concatenate([separable_features(labels, dim=10, seed=1), separable_features(labels, dim=4, seed=2)], axis=1)
    test = (labels["split"] == "test").to_numpy()
    probs = []
    for k in range(config["folds"]):
        scaler = load_file(str(models / f"fold{k}" / "scaler.safetensors"))
        model = MultimodalConv1D.from_params(x.shape[1], len(config["classes"]), config["params"]["train_multimodal"])
        load_model(model, str(models / f"fold{k}" / "model.safetensors"))
        with torch.no_grad():
            features = torch.from_numpy(((x[test] - scaler["mean"]) / scaler["scale"]).astype(np.float32))
            probs.append(torch.softmax(model.eval()(features), dim=1).numpy())
    saved = pd.read_parquet(tmp_path / "a" / "data/predictions/multimodal.parquet")
    assert np.allclose(np.mean(probs, axis=0), saved.loc[test, [f"prob_{c}" for c in CLASSES]].to_numpy(), atol=1e-5)


def test_text_inputs_fine_tune_a_tiny_encoder(tmp_path):
    """A tiny ELECTRA built here (random init) + tokenizer learns keyword-marked emotions through the registry."""
    from koemo.text.registry import load_encoder
    from koemo.tiny.text import build_tiny_encoder

    cue = {0: "화가 났어요", 1: "행복해요", 2: "그냥 그래요", 3: "슬퍼요"}
    subjects = ["나는", "친구가", "엄마가", "동생이", "선생님이", "그 사람은", "우리 팀이", "옆집 아이가"]
    labels = synthetic_labels(192, per_group=1)
    labels["text"] = [f"{subjects[i % 8]} 오늘 {'정말 ' * (i % 3)}{cue[y]}" for i, y in enumerate(labels["label_id"])]
    build_tiny_encoder("tiny-electra", labels["text"].tolist(),
                       {"seed": 0, "vocab_size": 300, "hidden_size": 32, "layers": 1, "heads": 2}, tmp_path / "enc")
    spec = {"path": str(tmp_path / "enc"), "tokenizer": "auto", "pooling": "mean", "max_length": 32}
    text_spec = {"epochs": 8, "batch_size": 16, "lr": 2e-3, "weight_decay": 0.01, "schedule": "cosine",
                 "warmup_ratio": 0.1, "dropout": 0.1}
    inputs = TextInputs(labels, lambda: load_encoder("tiny-electra", spec), len(CLASSES), text_spec)
    trainer = Trainer(TrainConfig.from_params(FAST, text_spec, progress=False), len(CLASSES))
    plans = plan_folds(labels, 2, 0.25, 0)
    job = inputs(plans[0])
    first_batch = next(iter(torch.utils.data.DataLoader(job.train.dataset, batch_size=4, collate_fn=job.train.collate)))
    assert first_batch["input_ids"].shape[1] == max(len(inputs.ids[r]) for r in plans[0].fit[:4])   # dynamic padding
    result = run_cv(labels, plans, inputs, trainer)
    test = labels["split"].to_numpy() == "test"
    accuracy = (result.test[test].argmax(axis=1) == labels["label_id"].to_numpy()[test]).mean()
    assert accuracy > 0.9


def test_near_collapse_is_reported_before_collapse(capsys):
    """3.6 % of predictions for one class (recall 0.067) is not `collapsed` (> 90 % one class) but is flagged."""
    from koemo.train.runner import warn_near_collapse

    y_true = np.repeat([0, 1, 2, 3], 30)
    y_pred = y_true.copy()
    y_pred[y_true == 0] = np.r_[[0, 0], np.full(28, 2)]  # class 0 recovered twice in 30
    report = classification_report(y_true, y_pred, CLASSES)
    assert not report["collapsed"] and report["min_recall_class"] == "angry"
    assert report["min_recall"] == pytest.approx(2 / 30)
    warn_near_collapse("audio", {"test": report}, 0.2)
    assert "test recall of 'angry' is 0.067, below train.warn_min_recall=0.2" in capsys.readouterr().err
    warn_near_collapse("audio", {"test": report}, 0.05)
    assert capsys.readouterr().err == ""
