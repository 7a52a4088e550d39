"""The SSL layer-weighted head and the gated text+audio fusion, trained through the shared trainer and CV loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from koemo.core.shards import ShardWriter
from koemo.models.fusion import FusionInputs, GatedFusion
from koemo.models.layer_features import LayerWeighting, SSLStore, Standardize, class_log_prior
from koemo.models.wav2vec2 import SSLClassifier, SSLInputs
from koemo.train.cv import plan_folds, predictions_frame, run_cv
from koemo.train.data import ArrayRows, Examples, stack_collate
from koemo.train.trainer import TrainConfig, Trainer, seed_everything
from test_train import CLASSES, FAST, synthetic_labels

LAYERS, DIM, TEXT_DIM = 4, 8, 6
SPEC = {"epochs": 12, "batch_size": 16, "lr": 1e-2, "weight_decay": 0.0, "schedule": "constant", "warmup_ratio": 0.0,
        "hidden": 16, "dropout": 0.0, "modality_dropout": 0.3}


def layered_audio(labels: pd.DataFrame, informative: int = 2, seed: int = 0, noise: float = 0.5) -> np.ndarray:
    """float16 `[rows, layers, dim]`: only layer `informative` carries the class; the others are pure noise."""
    rng = np.random.default_rng(seed)
    y = labels["label_id"].to_numpy()
    x = rng.standard_normal((len(labels), LAYERS, DIM)) * 2.0
    centers = rng.standard_normal((len(CLASSES), DIM)) * 2.0
    x[:, informative] = centers[y] + noise * rng.standard_normal((len(labels), DIM))
    return x.astype(np.float16)


def sentence_vectors(labels: pd.DataFrame, seed: int = 5, noise: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((len(CLASSES), TEXT_DIM)) * 2.0
    return (centers[labels["label_id"].to_numpy()] + noise * rng.standard_normal((len(labels), TEXT_DIM))).astype(np.float32)


def _trainer(**over) -> Trainer:
    return Trainer(TrainConfig.from_params(FAST, {**SPEC, **over}, progress=False), len(CLASSES))


def test_layer_weighting_starts_uniform_and_standardize_uses_only_given_present_rows():
    weighting = LayerWeighting(3)
    x = torch.randn(5, 3, 7)
    assert torch.allclose(weighting.weights(), torch.full((3,), 1 / 3))
    assert torch.allclose(weighting(x), x.mean(dim=1), atol=1e-6)
    rng = np.random.default_rng(0)
    rows = (rng.standard_normal((50, 3, 7)) * np.array([1.0, 100.0, 0.01])[None, :, None] + 5.0).astype(np.float16)
    rows[:, 0, 0] = 2.0  # a constant feature keeps scale 1
    rows[7] = 0          # a row without audio does not count
    norm = Standardize((3, 7)).fit(rows)
    kept = np.delete(rows, 7, axis=0).astype(np.float64)
    assert np.allclose(norm.mean.numpy(), kept.mean(axis=0), rtol=1e-5)
    assert norm.scale[0, 0] == 1.0 and np.allclose(norm.scale.numpy()[1:], kept.std(axis=0)[1:], rtol=1e-4)
    out = norm(torch.from_numpy(np.delete(rows, 7, axis=0))).numpy()
    assert np.allclose(out[:, 1:].mean(axis=0), 0, atol=1e-3) and np.allclose(out[:, 1:].std(axis=0), 1, atol=1e-3)


def test_layer_weights_are_learned_on_a_separable_toy_problem():
    labels = synthetic_labels(240)
    audio, y = layered_audio(labels), labels["label_id"].to_numpy()
    trainer = _trainer()
    seed_everything(0, trainer.device)
    model = SSLClassifier(LAYERS, DIM, len(CLASSES), hidden=16, dropout=0.0)
    model.norm.fit(audio[:160])
    examples = lambda rows: Examples(ArrayRows(audio[rows], y[rows]), y[rows], labels["wav_id"].to_numpy()[rows], stack_collate)
    trainer.fit(model, examples(np.arange(160)), examples(np.arange(160, 200)))
    probs = trainer.predict(model, examples(np.arange(200, 240)))
    assert (probs.argmax(axis=1) == y[200:]).mean() > 0.9
    weights = model.layer_weighting.weights().detach().numpy()
    assert weights.argmax() == 2 and weights[2] > 0.4 and weights.max() - weights.min() > 0.2, weights


def test_ssl_head_predicts_the_training_prior_for_rows_without_audio():
    model = SSLClassifier(LAYERS, DIM, len(CLASSES))
    prior = class_log_prior(np.array([0, 0, 0, 1, 2]), len(CLASSES))
    assert np.allclose(np.exp(prior), [4 / 9, 2 / 9, 2 / 9, 1 / 9])
    model.log_prior.copy_(torch.from_numpy(prior))
    model.eval()
    x = torch.randn(3, LAYERS, DIM)
    x[1] = 0
    logits = model(x)
    assert torch.allclose(logits[1], torch.from_numpy(prior)) and not torch.allclose(logits[0], logits[1])


def test_fusion_survives_a_missing_modality():
    labels = synthetic_labels(320)
    text, audio, y = sentence_vectors(labels), layered_audio(labels, noise=0.8), labels["label_id"].to_numpy()
    inputs = FusionInputs(labels, text, audio, len(CLASSES), SPEC)
    trainer = _trainer()
    seed_everything(0, trainer.device)
    model = inputs.model(np.arange(270))
    # No early stopping: validation F1 reaches 1.0 at once through text, while the audio path needs the epochs.
    trainer.fit(model, inputs.examples(np.arange(270)))
    test = np.arange(270, 320)

    def accuracy(text_rows, audio_rows) -> float:
        blank = FusionInputs(labels.iloc[test], text_rows, audio_rows, len(CLASSES), SPEC)
        return float((trainer.predict(model, blank.examples(np.arange(len(test)))).argmax(axis=1) == y[test]).mean())

    both = accuracy(text[test], audio[test])
    text_only = accuracy(text[test], np.zeros_like(audio[test]))
    audio_only = accuracy(np.zeros_like(text[test]), audio[test])
    assert both > 0.9 and text_only > 0.8 and audio_only > 0.8, (both, text_only, audio_only)
    model.eval()
    with torch.no_grad():
        t, a = torch.from_numpy(text[test]), torch.from_numpy(audio[test].astype(np.float32))
        gates_both = model.gate_values(t, a).mean().item()
        gates_text = model.gate_values(t, torch.zeros_like(a)).mean().item()
    assert gates_text > gates_both  # with audio missing the gate shifts toward text


def test_modality_dropout_blanks_one_modality_never_both():
    model = GatedFusion(TEXT_DIM, LAYERS, DIM, len(CLASSES), hidden=8, modality_dropout=0.5)
    model.train()
    torch.manual_seed(0)
    has_text, has_audio = model._drop_modalities(torch.ones(1000, dtype=torch.bool), torch.ones(1000, dtype=torch.bool))
    assert (has_text | has_audio).all()
    assert 400 < (~has_text).sum() < 600 and 400 < (~has_audio).sum() < 600
    model.eval()
    assert all(m.all() for m in model._drop_modalities(torch.ones(10, dtype=torch.bool), torch.ones(10, dtype=torch.bool)))
    with pytest.raises(ValueError, match="modality_dropout"):
        GatedFusion(TEXT_DIM, LAYERS, DIM, 4, modality_dropout=0.7)


@pytest.mark.parametrize("model_name", ["wav2vec2", "fusion"])
def test_oof_integrity_and_rows_without_audio(model_name, tmp_path):
    labels = synthetic_labels(200)
    audio = layered_audio(labels)
    no_audio = [3, int(np.flatnonzero(labels["split"] == "test")[0])]
    audio[no_audio] = 0
    if model_name == "wav2vec2":
        inputs = SSLInputs(labels, audio, len(CLASSES), SPEC)
    else:
        inputs = FusionInputs(labels, sentence_vectors(labels), audio, len(CLASSES), SPEC)
    shared = {**FAST, "folds": 3}
    trainer = Trainer(TrainConfig.from_params(shared, {**SPEC, "epochs": 3}, progress=False), len(CLASSES))
    plans = plan_folds(labels, 3, shared["valid_fraction"], shared["seed"])
    result = run_cv(labels, plans, inputs, trainer, out_dir=tmp_path)
    is_train = (labels["split"] == "train").to_numpy()
    wav = labels["wav_id"].to_numpy()
    assert np.isfinite(result.oof[is_train]).all() and not np.isfinite(result.oof[~is_train]).any()
    assert np.isfinite(result.test[~is_train]).all()
    for record, plan in zip(result.records, plans):
        assert record.holdout_ids == set(wav[plan.holdout])
        assert not record.trained_ids & (record.holdout_ids | record.valid_ids | set(wav[~is_train]))
        assert (tmp_path / f"fold{plan.fold}" / "model.safetensors").is_file()
    frame = predictions_frame(labels, result, CLASSES)
    assert frame["wav_id"].tolist() == wav.tolist() and frame.filter(like="prob_").notna().all().all()
    probs = frame.filter(like="prob_").to_numpy()
    if model_name == "wav2vec2":  # no audio → the fold's class prior (fold-mean of priors on test)
        plan = next(p for p in plans if 3 in p.holdout)
        assert np.allclose(probs[3], np.exp(class_log_prior(labels["label_id"].to_numpy()[plan.fit], 4)), atol=1e-5)
    else:  # no audio → a text-only prediction, still the right class on this separable toy
        assert (probs[no_audio].argmax(axis=1) == labels["label_id"].to_numpy()[no_audio]).all()


def test_ssl_store_aligns_rows_to_labels_order_with_zeros_for_missing(tmp_path):
    features = np.arange(3 * 2 * 4, dtype=np.float16).reshape(3, 2, 4) + 1
    writer = ShardWriter(tmp_path, (2, 4), {"wav_id": str}, dtype=np.float16, rows_per_shard=2)  # two shards
    writer.add(features, [{"wav_id": w} for w in ("a", "c", "d")])
    writer.close()
    (tmp_path / "encoder.json").write_text('{"encoder": "tiny-wav2vec2", "source": "local-tiny"}')
    store = SSLStore(tmp_path)
    assert store.encoder["source"] == "local-tiny"
    aligned = store.aligned(["d", "b", "a"])
    assert aligned.dtype == np.float16 and aligned.shape == (3, 2, 4) and (store.layers, store.dim) == (2, 4)
    assert np.array_equal(aligned[0], features[2]) and not aligned[1].any() and np.array_equal(aligned[2], features[0])
