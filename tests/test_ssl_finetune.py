"""`train_wav2vec2.mode: finetune`: the tiny wav2vec2 trained under the layer-weighted head, through the shared trainer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from koemo.core.errors import UserError
from koemo.models.layer_features import layer_weights
from koemo.models.wav2vec2 import check_mode
from koemo.models.wav2vec2_finetune import FineTuneInputs, SSLFineTuner, UndecodableClip, WaveRows, wave_collate
from koemo.ssl.registry import load_audio_encoder
from koemo.tiny.wav2vec2 import build_tiny_audio_encoders
from koemo.train.cv import plan_folds, run_cv
from koemo.train.data import Examples
from koemo.train.trainer import TrainConfig, Trainer, optimizer_params

from group_norm_wav2vec2 import write_group_norm_wav2vec2
from test_ssl_features import RATE, TINY, _waves
from test_train import CLASSES, FAST, synthetic_labels

SPEC = {"epochs": 1, "batch_size": 8, "lr": 1e-2, "weight_decay": 0.0, "schedule": "constant", "warmup_ratio": 0.0,
        "hidden": 16, "dropout": 0.0, "encoder_lr_scale": 0.1, "max_seconds": 0.5}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("audio_encoders")
    build_tiny_audio_encoders(TINY, root)
    return root / "tiny-wav2vec2"


@pytest.fixture(scope="module")
def load_tiny(tiny_dir):
    return lambda: load_audio_encoder("tiny-wav2vec2", {"path": str(tiny_dir)})


def _write_wavs(directory: Path, lengths, seed: int = 0) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, wave in enumerate(_waves(lengths, seed)):
        paths.append(str(directory / f"clip{i:03d}.wav"))
        sf.write(paths[-1], wave, RATE, subtype="PCM_16")
    return paths


def _examples(paths, labels, encoder, max_seconds: float = 1.0) -> Examples:
    rows = WaveRows(paths, labels, encoder.sample_rate, encoder.normalize, int(max_seconds * RATE), encoder.min_samples)
    return Examples(rows, labels, [Path(p).stem for p in paths], wave_collate)


def _trainer(**over) -> Trainer:
    return Trainer(TrainConfig.from_params(FAST, {**SPEC, **over}, progress=False), len(CLASSES))


def test_finetune_is_a_valid_mode_and_others_are_refused():
    assert check_mode({"mode": "finetune"}) == "finetune" and check_mode({}) == "frozen"
    with pytest.raises(UserError, match="expected one of"):
        check_mode({"mode": "full"})


def test_one_step_leaves_the_cnn_feature_encoder_untouched_and_moves_the_transformer(load_tiny, tmp_path):
    encoder = load_tiny()
    model = SSLFineTuner.from_params(encoder, len(CLASSES), SPEC)
    conv = model.encoder.feature_extractor
    assert not any(p.requires_grad for p in conv.parameters())
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith("encoder.feature_extractor."))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    paths = _write_wavs(tmp_path / "wavs", [8000] * 8)
    labels = np.arange(8) % len(CLASSES)
    _trainer().fit(model, _examples(paths, labels, encoder))          # 8 rows, batch 8: exactly one step
    after = model.state_dict()
    assert all(p.grad is None for p in conv.parameters())
    for key in before:
        changed = not torch.equal(before[key], after[key])
        if key.startswith("encoder.feature_extractor."):
            assert not changed, f"{key}: the frozen CNN feature encoder changed"
        elif key.startswith("encoder.encoder.layers.") and key.endswith("weight"):
            assert changed, f"{key}: a transformer weight did not move"
    assert not torch.equal(before["layer_weighting.logits"], after["layer_weighting.logits"])


def test_head_and_encoder_get_their_own_learning_rate_in_the_trainer(load_tiny, tmp_path, monkeypatch):
    encoder = load_tiny()
    model = SSLFineTuner.from_params(encoder, len(CLASSES), SPEC)
    head_lr, encoder_lr = SPEC["lr"], SPEC["lr"] * SPEC["encoder_lr_scale"]
    groups = model.param_groups(SPEC["lr"])
    assert [g["lr"] for g in groups] == [head_lr, encoder_lr]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    ids = [{id(p) for p in g["params"]} for g in groups]
    assert ids[0] | ids[1] == trainable and not ids[0] & ids[1]
    assert id(model.layer_weighting.logits) in ids[0] and id(model.encoder.encoder.layers[0].attention.q_proj.weight) in ids[1]
    # A model without `param_groups` still hands AdamW its plain parameters (the byte-identical path).
    plain = torch.nn.Linear(2, 2)
    assert [id(p) for p in optimizer_params(plain, 0.1)] == [id(p) for p in plain.parameters()]

    seen = []

    class RecordingAdamW(torch.optim.AdamW):
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)
            seen.append([(g["lr"], len(g["params"])) for g in self.param_groups])

    monkeypatch.setattr(torch.optim, "AdamW", RecordingAdamW)
    head_before = model.head[0].weight.detach().clone()
    attn_before = model.encoder.encoder.layers[0].attention.q_proj.weight.detach().clone()
    paths = _write_wavs(tmp_path / "wavs", [8000] * 8, seed=1)
    _trainer(grad_clip=None).fit(model, _examples(paths, np.arange(8) % len(CLASSES), encoder))  # one AdamW step
    assert seen == [[(head_lr, len(groups[0]["params"])), (encoder_lr, len(groups[1]["params"]))]]
    # Adam's first step moves every weight with a non-negligible gradient by about its group's lr.
    head_step = (model.head[0].weight.detach() - head_before).abs().max().item()
    attn_step = (model.encoder.encoder.layers[0].attention.q_proj.weight.detach() - attn_before).abs().max().item()
    assert head_step == pytest.approx(head_lr, rel=0.02) and attn_step == pytest.approx(encoder_lr, rel=0.02)


def test_logits_ignore_padding_when_the_encoder_takes_a_mask(load_tiny):
    encoder = load_tiny()
    assert encoder.uses_attention_mask
    model = SSLFineTuner.from_params(encoder, len(CLASSES), SPEC).eval()
    short, long_ = (w / np.abs(w).max() for w in _waves([7000, 24000], seed=4))
    with torch.no_grad():
        alone = model(**{k: v for k, v in wave_collate([(short, 0)]).items() if k != "labels"})
        batch = wave_collate([(short, 0), (long_, 1)])
        together = model(batch["input_values"], batch["attention_mask"])
        unmasked = model(batch["input_values"][:1])  # the short clip zero-padded, no mask: padding would count
    assert batch["input_values"].shape == (2, 24000)
    assert torch.allclose(together[0], alone[0], atol=1e-4)
    assert not torch.allclose(unmasked[0], alone[0], atol=1e-3)


def test_group_norm_encoders_get_no_attention_mask(tmp_path):
    write_group_norm_wav2vec2(tmp_path)
    model = SSLFineTuner.from_params(load_audio_encoder("group-norm", {"path": str(tmp_path)}), len(CLASSES), SPEC)
    seen = []
    handle = model.encoder.register_forward_pre_hook(lambda m, a, kw: seen.append(kw.get("attention_mask")), with_kwargs=True)
    batch = wave_collate([(w, 0) for w in _waves([4000, 9000], seed=6)])
    try:
        logits = model(batch["input_values"], batch["attention_mask"])
    finally:
        handle.remove()
    assert seen == [None] and logits.shape == (2, len(CLASSES))
    assert not any(p.requires_grad for p in model.encoder.feature_extractor.parameters())


def test_an_undecodable_or_missing_wav_is_a_clear_error_naming_the_file(load_tiny, tmp_path):
    encoder = load_tiny()
    bad = tmp_path / "broken_clip.wav"
    bad.write_bytes(b"RIFF not really a wav")
    good = _write_wavs(tmp_path / "wavs", [3000])  # shorter than max_seconds: kept whole
    rows = WaveRows([good[0], str(bad), str(tmp_path / "gone.wav")], np.zeros(3), RATE, True, RATE, encoder.min_samples)
    wave, label = rows[0]
    assert wave.dtype == np.float32 and len(wave) == 3000 and label == 0
    with pytest.raises(UndecodableClip, match=r"broken_clip\.wav: undecodable.*labels stage"):
        rows[1]
    with pytest.raises(UndecodableClip, match=r"gone\.wav: missing"):
        rows[2]


def test_folds_train_fresh_encoders_on_cropped_clips_and_save_layer_weights(load_tiny, tmp_path):
    labels = synthetic_labels(24, per_group=1)
    lengths = np.random.default_rng(2).integers(3000, 12000, len(labels))
    labels["wav_path"] = _write_wavs(tmp_path / "wavs", lengths, seed=2)
    inputs = FineTuneInputs(labels, load_tiny, len(CLASSES), SPEC)
    assert inputs.max_samples == int(SPEC["max_seconds"] * RATE)
    wave, _ = inputs.examples(np.array([int(np.argmax(lengths))])).dataset[0]
    assert len(wave) == inputs.max_samples  # the longest clip is cropped
    plans = plan_folds(labels, 2, 0.0, 0)  # no inner validation slice: one fixed epoch per fold
    key = "encoder.layers.0.attention.q_proj.weight"
    starts = []

    def build(plan):
        job = inputs(plan)
        starts.append(job.model.encoder.state_dict()[key].clone())
        return job

    result = run_cv(labels, plans, build, _trainer(), out_dir=tmp_path / "models")
    from safetensors.torch import load_file

    fresh = load_tiny().model.state_dict()
    saved = [load_file(str(tmp_path / "models" / f"fold{k}" / "model.safetensors")) for k in range(2)]
    # Every fold starts from the registry weights (not the previous fold's), fine-tunes them, keeps the CNN frozen.
    assert len(starts) == 2 and all(torch.equal(start, fresh[key]) for start in starts)
    assert all(not torch.equal(s["encoder." + key], fresh[key]) for s in saved)
    conv = "feature_extractor.conv_layers.0.conv.weight"
    assert all(torch.equal(s["encoder." + conv], fresh[conv]) for s in saved)
    weights = layer_weights(tmp_path / "models")
    assert len(weights) == 2 and all(len(w) == TINY["layers"] + 1 and abs(sum(w) - 1) < 1e-6 for w in weights)
    test = labels["split"].to_numpy() == "test"
    assert np.isfinite(result.test[test]).all() and np.allclose(result.test[test].sum(axis=1), 1, atol=1e-5)


def test_predict_uses_finetuned_folds_with_the_training_preprocessing(load_tiny, tiny_dir, tmp_path):
    """`koemo predict` on a fine-tuned wav2vec2 (stack `mean` over it alone): each fold's full encoder + head is
    loaded, and clips are cropped/normalised as in training, so its output is the fold mean computed by hand."""
    import json

    import yaml
    from safetensors.torch import save_model

    from koemo.predict.predictor import Predictor, Utterance
    from koemo.models.registry import recorded_params

    root = tmp_path / "project"
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text(encoding="utf-8"))
    params["audio_encoders"]["tiny-wav2vec2"] = {"path": str(tiny_dir)}
    params["ssl"]["model"] = "tiny-wav2vec2"
    params["train_wav2vec2"] = {**params["train_wav2vec2"], **SPEC, "mode": "finetune"}
    params["stack"] = {**params["stack"], "base_models": ["wav2vec2"], "learner": "mean"}
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    models = root / "data/models"
    max_samples = int(SPEC["max_seconds"] * RATE)
    folds = []
    for k in range(2):
        torch.manual_seed(k)
        model = SSLFineTuner.from_params(load_tiny(), len(CLASSES), params["train_wav2vec2"]).eval()
        (models / "wav2vec2" / f"fold{k}").mkdir(parents=True)
        save_model(model, str(models / "wav2vec2" / f"fold{k}" / "model.safetensors"))
        folds.append(model)
    (models / "wav2vec2/config.json").write_text(json.dumps({"folds": 2, "mode": "finetune", "max_samples": max_samples,
                                                              "params": recorded_params("wav2vec2", params)}))
    (models / "stack").mkdir()
    (models / "stack/meta.json").write_text(json.dumps({"learner": "mean", "models": ["wav2vec2"], "classes": CLASSES,
                                                          "features": "proba", "params": params["stack"]}))
    paths = _write_wavs(tmp_path / "wav", [RATE, RATE // 3])  # the first is longer than max_seconds: cropped
    probs = Predictor(root, device="cpu").predict([Utterance(p) for p in paths])

    encoder = load_tiny()
    batch = wave_collate([WaveRows(paths, np.zeros(2, dtype=np.int64), RATE, encoder.normalize, max_samples,
                                   encoder.min_samples)[i] for i in range(2)])
    batch.pop("labels")
    with torch.inference_mode():
        expected = torch.stack([torch.softmax(m(**batch), dim=-1) for m in folds]).mean(dim=0).numpy()
    np.testing.assert_allclose(probs["wav2vec2"], expected, atol=1e-5)
    np.testing.assert_allclose(probs["stack"], expected, atol=1e-5)
