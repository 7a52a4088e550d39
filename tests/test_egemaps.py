"""eGeMAPS functionals: 88 named finite values, repeatable, pitch-sensitive, usable from a spawned process pool."""

from __future__ import annotations


import numpy as np
import pytest
import soundfile as sf

from koemo.clips.decode import decode_clip
from koemo.features import egemaps
from koemo.features.egemaps import F0_MEAN, EgemapsError, egemaps_functionals

RATE = 16000


def voiced(f0: float, seconds: float = 2.0, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """A vowel-like tone: harmonics of f0 with falling amplitude, a slow loudness swell and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    wave *= 0.5 + 0.5 * np.sin(np.pi * t / seconds)
    return (0.2 * wave / np.abs(wave).max() + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def test_shape_finite_and_names():
    values = egemaps_functionals(voiced(150.0), RATE)
    assert values.dtype == np.float32 and values.shape == (88,) and np.isfinite(values).all()
    names = egemaps.FEATURE_NAMES
    assert len(names) == 88 == len(set(names)) and names[0] == F0_MEAN and names[-1] == "equivalentSoundLevel_dBp"


def test_same_clip_gives_the_same_vector():
    wave = voiced(180.0, seed=3)
    assert np.array_equal(egemaps_functionals(wave, RATE), egemaps_functionals(wave.copy(), RATE))


def test_pitch_orders_low_and_high_tones():
    f0 = egemaps.FEATURE_NAMES.index(F0_MEAN)
    low, high = (egemaps_functionals(voiced(hz), RATE)[f0] for hz in (120.0, 300.0))
    assert low < high
    # semitones above 27.5 Hz: 12·log2(f / 27.5)
    assert abs(low - 12 * np.log2(120 / 27.5)) < 1.0 and abs(high - 12 * np.log2(300 / 27.5)) < 1.0


def test_samples_beyond_full_scale_are_clipped_not_wrapped():
    """openSMILE casts to int16 itself, which would wrap a 1.6 peak to a large negative sample (doubling loudness)."""
    loud = voiced(150.0) * 8
    assert np.array_equal(egemaps_functionals(loud, RATE), egemaps_functionals(np.clip(loud, -1, 1), RATE))


@pytest.mark.parametrize("wave, reason", [(np.zeros(800, np.float32), "too_short"),
                                          (np.full(RATE, np.nan, np.float32), "non_finite")])
def test_unusable_clip_is_a_clear_value_error(wave, reason):
    with pytest.raises(ValueError, match="eGeMAPS") as info:
        egemaps_functionals(wave, RATE)
    assert isinstance(info.value, EgemapsError) and info.value.reason == reason


class NanSmile:
    """Stands in for openSMILE returning NaN functionals."""

    feature_names = ["f"] * 88

    def __call__(self, wave, rate):
        return np.full((1, 88, 1), np.nan, np.float32)


def test_non_finite_output_is_a_clear_value_error(monkeypatch):
    monkeypatch.setattr(egemaps, "smile", NanSmile)
    with pytest.raises(EgemapsError, match="88 of 88 values not finite") as info:
        egemaps_functionals(voiced(150.0), RATE)
    assert info.value.reason == "non_finite"


def test_the_cache_computes_rows_in_spawned_processes_equal_to_inline_and_lists_failures(tmp_path):
    import pandas as pd

    from koemo.core.shards import load_shards
    from koemo.features.egemaps import extract_egemaps

    rows = []
    for i, hz in enumerate((110.0, 220.0, 330.0)):
        path = tmp_path / f"tone{i}.wav"
        sf.write(path, voiced(hz, rate=48000, seed=i), 48000, subtype="PCM_16")
        rows.append((f"tone{i}", path))
    sf.write(tmp_path / "short.wav", voiced(200.0, seconds=0.03, rate=48000), 48000, subtype="PCM_16")
    sf.write(tmp_path / "silent.wav", np.zeros(48000, np.float32), 48000, subtype="PCM_16")
    rows += [("missing", tmp_path / "missing.wav"), ("short", tmp_path / "short.wav"), ("silent", tmp_path / "silent.wav")]
    labels = pd.DataFrame({"wav_id": [r[0] for r in rows], "wav_path": [str(r[1]) for r in rows], "split": "train",
                           "fold": 0, "label": "neutral", "label_id": 2})
    metrics, runtime = extract_egemaps(labels, tmp_path / "out", RATE, max_seconds=20, workers=2, batch_seconds=4,
                                       min_rms_dbfs=-60.0, progress=False)
    assert (metrics["clips_in"], metrics["clips"], metrics["failed"]) == (6, 3, 3)
    assert metrics["failures_by_reason"] == {"missing": 1, "silent": 1, "too_short": 1}
    index, values = load_shards(tmp_path / "out")
    assert index["wav_id"].tolist() == ["tone0", "tone1", "tone2"] and values.shape == (3, 88)
    for k in range(3):
        assert np.array_equal(values[k], egemaps_functionals(decode_clip(str(rows[k][1]), RATE).wave, RATE))
    assert runtime["workers"] == 2


def test_the_egemaps_model_learns_a_separable_set_and_its_saved_folds_give_the_same_probabilities(tmp_path):
    """The model side: standardised 88-dim vectors → MLP through the one trainer and K-fold loop; each saved fold
    (weights + its scaler, no pickle) rebuilt as `koemo predict` does reproduces the test probabilities."""
    import torch
    from safetensors.numpy import load_file
    from safetensors.torch import load_model

    from koemo.models.egemaps import EgemapsInputs, EgemapsMLP
    from koemo.train.cv import plan_folds, run_cv
    from koemo.train.trainer import TrainConfig, Trainer
    from test_train import CLASSES, FAST, separable_features, synthetic_labels

    labels = synthetic_labels(240)
    x = separable_features(labels, dim=88, seed=5) * 30 + 100  # raw functionals live on very different scales
    spec = {"epochs": 30, "batch_size": 32, "lr": 3e-3, "weight_decay": 1e-3, "schedule": "constant", "warmup_ratio": 0.0,
            "hidden": 16, "dropout": 0.1, "patience": 5}
    trainer = Trainer(TrainConfig.from_params({**FAST, "progress": False}, spec), len(CLASSES))
    plans = plan_folds(labels, 2, 0.2, 0)
    result = run_cv(labels, plans, EgemapsInputs(labels, x, len(CLASSES), spec), trainer, out_dir=tmp_path)
    test = (labels["split"] == "test").to_numpy()
    y = labels["label_id"].to_numpy()
    assert (result.test[test].argmax(axis=1) == y[test]).mean() > 0.9
    probs = []
    for plan in plans:
        fold = tmp_path / f"fold{plan.fold}"
        scaler = load_file(str(fold / "scaler.safetensors"))
        model = EgemapsMLP.from_params(88, len(CLASSES), spec)
        load_model(model, str(fold / "model.safetensors"))
        model.eval()
        with torch.no_grad():
            z = torch.from_numpy(((x[test] - scaler["mean"]) / scaler["scale"]).astype(np.float32))
            probs.append(torch.softmax(model(z), dim=-1).numpy())
    np.testing.assert_allclose(np.mean(probs, axis=0), result.test[test], atol=1e-6)
