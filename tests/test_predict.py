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
from koemo.lineage import BASE_MODELS, differences, used_keys, used_params
from koemo.predict import PredictError, Predictor

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
    assert set(used_keys(model, PARAMS)) == declared


def test_used_params_follow_the_chosen_encoder_and_features():
    params = json.loads(json.dumps(PARAMS))
    params["text"]["model"] = "tiny-roberta"
    params["train_audio"]["features"] = "mfcc"
    assert "encoders.tiny-roberta" in used_params("text", params)
    assert used_params("audio", params)["audio.mfcc"]["n_mfcc"] == PARAMS["audio"]["mfcc"]["n_mfcc"]
    assert "encoders.tiny-roberta" not in used_params("audio", params)  # audio reads no text param


def test_differences_name_each_changed_leaf():
    recorded = used_params("audio", PARAMS)
    changed = json.loads(json.dumps(PARAMS))
    changed["train_audio"]["lr"] = 0.5
    changed["audio"]["augment"]["seed"] = 99
    lines = differences(recorded, used_params("audio", changed))
    assert lines == ["audio.augment.seed: 7 → 99", "train_audio.lr: 0.002 → 0.5"]
    assert differences(recorded, used_params("audio", PARAMS)) == []


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
    (models / "audio/config.json").write_text(json.dumps({"folds": 2, "params": used_params("audio", PARAMS)}))
    with pytest.raises(PredictError, match=r"fold0/model.safetensors is missing"):
        Predictor(tmp_path)
