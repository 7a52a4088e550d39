"""`koemo predict` without a pipeline run: params lineage, declarations in dvc.yaml, refusals.

The round trip on real demo artefacts (predict == the pipeline's own test probabilities) is in
test_pipeline_e2e.py, which has them.
"""

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from koemo.cli import main
from koemo.predict.predictor import PredictError, Predictor
from koemo.train.evaluation import REPORT_KEYS
from koemo.models.registry import BASE_MODELS, recorded_params, used_keys
from koemo.train.lineage import differences

REPO = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def resolved(value, params):
    """dvc.yaml's ${a.b} interpolation, for the params lists."""
    def sub(match):
        out = params
        for part in match.group(1).split("."):
            out = out[part]
        return str(out)
    return re.sub(r"\$\{([^}]+)\}", sub, value)


@pytest.mark.parametrize("model", BASE_MODELS)
def test_every_recorded_param_is_declared_by_the_training_stage(model):
    """What config.json records must be what DVC tracks, or a change could leave stale weights 'up to date'."""
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"][f"train_{model}"]
    declared = {resolved(p, PARAMS) for p in stage["params"]}
    assert set(used_keys(model, PARAMS)) | set(REPORT_KEYS) == declared  # + what only the metrics report reads


def test_used_params_follow_the_chosen_encoder_and_features():
    params = json.loads(json.dumps(PARAMS))
    params["text"]["model"] = "tiny-roberta"
    params["train_audio"]["features"] = "mfcc"
    assert "encoders.tiny-roberta" in recorded_params("text", params)
    assert recorded_params("audio", params)["audio.mfcc"]["n_mfcc"] == PARAMS["audio"]["mfcc"]["n_mfcc"]
    assert "encoders.tiny-roberta" not in recorded_params("audio", params)  # audio reads no text param


def test_differences_name_each_changed_leaf():
    recorded = recorded_params("audio", PARAMS)
    changed = json.loads(json.dumps(PARAMS))
    changed["train_audio"]["lr"] = 0.5
    changed["audio"]["augment"]["seed"] = 99
    lines = differences(recorded, recorded_params("audio", changed))
    assert lines == ["audio.augment.seed: 7 → 99", "train_audio.lr: 0.002 → 0.5"]
    assert differences(recorded, recorded_params("audio", PARAMS)) == []


def test_missing_artefacts_are_a_clear_error(tmp_path, capsys):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    with pytest.raises(PredictError, match=r"data/models/stack/meta.json is missing.*dvc repro"):
        Predictor(tmp_path)
    assert main(["predict", "--root", str(tmp_path), "--text", "화가 나요"]) == 2
    assert "dvc repro" in capsys.readouterr().err
    with pytest.raises(PredictError, match="no params.yaml"):
        Predictor(tmp_path / "elsewhere")


def test_a_missing_fold_or_model_config_is_named(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    models = tmp_path / "data/models"
    (models / "stack").mkdir(parents=True)
    (models / "stack/meta.json").write_text(json.dumps({
        "learner": "mean", "models": ["audio"], "classes": PARAMS["labels"]["classes"], "features": "proba",
        "params": PARAMS["stack"]}))
    with pytest.raises(PredictError, match=r"data/models/audio/config.json is missing"):
        Predictor(tmp_path)
    (models / "audio").mkdir()
    (models / "audio/config.json").write_text(json.dumps({"folds": 2, "params": recorded_params("audio", PARAMS)}))
    with pytest.raises(PredictError, match=r"fold0/model.safetensors is missing"):
        Predictor(tmp_path)


@pytest.fixture
def batch(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    path = tmp_path / "utts.csv"
    path.write_text("wav,text\n,정말 화가 나요\n", encoding="utf-8")
    return path


def test_out_never_replaces_the_input_csv_nor_an_existing_file_without_force(batch, capsys):
    """Measured on main: `--csv utts.csv --out utts.csv` replaced the utterances with predictions. Both refusals
    come before any model is loaded (there are none here: getting further would say meta.json is missing)."""
    root, before = batch.parent, batch.read_bytes()
    for out in (str(batch), str(root / "." / "utts.csv")):
        assert main(["predict", "--root", str(root), "--csv", str(batch), "--out", out, "--force"]) == 2
        assert "is the input CSV" in capsys.readouterr().err and batch.read_bytes() == before
    (root / "old.csv").write_text("keep me", encoding="utf-8")
    assert main(["predict", "--root", str(root), "--csv", str(batch), "--out", str(root / "old.csv")]) == 2
    assert "exists: pass --force" in capsys.readouterr().err and (root / "old.csv").read_text() == "keep me"
    assert main(["predict", "--root", str(root), "--text", "화나", "--out", str(root)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["predict", "--root", str(root), "--csv", str(batch), "--out", str(root / "old.csv"), "--force"]) == 2
    assert "meta.json is missing" in capsys.readouterr().err   # --force gets past the check
    assert (root / "old.csv").read_text() == "keep me"          # a failed run writes nothing


def test_folders_out_creates_are_named_first(tmp_path):
    from koemo.cli import _check_out

    assert _check_out(tmp_path / "a" / "b" / "p.csv", None, False) == [tmp_path / "a", tmp_path / "a" / "b"]
    assert not (tmp_path / "a").exists()  # only named here; created when the predictions are written
    assert _check_out(tmp_path / "p.csv", None, False) == []


class _Tokenizer:
    """Whitespace tokens plus [CLS]/[SEP], untruncated unless asked (as a Hugging Face tokenizer)."""

    def __call__(self, texts, add_special_tokens=True, truncation=False, max_length=None):
        ids = [[1] + [5] * len(t.split()) + [2] for t in texts]
        return {"input_ids": [row[:max_length] if truncation else row for row in ids]}


def _predictor_with(models, params=PARAMS):
    """A Predictor shell (no artefacts): enough for `input_notes`."""
    from types import SimpleNamespace

    predictor = Predictor.__new__(Predictor)
    predictor.params, predictor.models = params, list(models)
    predictor.configs = {m: {"mode": "frozen"} for m in models}
    predictor._cache = {"text_encoder": SimpleNamespace(tokenizer=_Tokenizer(), encode=None)}
    return predictor


def test_notes_say_what_the_models_did_not_read(tmp_path):
    """Measured on main: English-only text answered with confidence, a 5,000-character text cut to 64 tokens and a
    30-minute wav answered from its first 4 s / 20 s, all without a word."""
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "long.wav", np.zeros(16000 * 30, np.float32), 16000, subtype="PCM_16")
    sf.write(tmp_path / "short.wav", np.zeros(16000 * 2, np.float32), 16000, subtype="PCM_16")
    predictor = _predictor_with(["text", "audio", "multimodal", "tfidf", "egemaps", "fusion"])
    texts = ["I am so angry", "화가 " * 100, "정말 화가 나요", None]
    paths = [None, str(tmp_path / "short.wav"), str(tmp_path / "long.wav"), None]
    notes = predictor.input_notes(texts, paths)
    assert [[n.split(":")[0] for n in row] for row in notes] == [["no_hangul"], ["text_truncated"], ["audio_cropped"], []]
    assert notes[1][0] == ("text_truncated: 300 characters = 102 tokens; text, multimodal, fusion read the first 64 "
                           "(encoders.tiny-electra.max_length)")
    assert notes[2][0] == ("audio_cropped: the wav is 30.0 s; audio read its first 4.0 s, multimodal, egemaps read "
                           "its first 20.0 s")
    assert _predictor_with(["tfidf"]).input_notes(texts[:2], [None, None])[1] == []  # TF-IDF reads every word
