import numpy as np
import pandas as pd
import pytest

from koemo.train.stack import MetaLearner, load_base_predictions, run_stack

CLASSES = ["angry", "happiness", "neutral", "sadness"]
PARAMS = {"base_models": ["informative", "noise"], "learner": "logistic", "features": "log_proba",
          "C_grid": [0.01, 0.1, 1.0, 10.0], "class_weighted": True, "select_by": "ua", "seed": 0}


def synthetic(rows=1200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, rows)
    labels = pd.DataFrame({"label_id": y, "split": np.where(rng.random(rows) < 0.25, "test", "train")},
                          index=pd.Index([f"{i:024x}" for i in range(rows)], name="wav_id"))
    labels["fold"] = np.where(labels["split"] == "train", rng.integers(0, 5, rows), -1)
    # informative: right class gets most mass 70 % of the time; noise: random Dirichlet
    logits = rng.normal(0, 1, (rows, 4))
    logits[np.arange(rows), y] += np.where(rng.random(rows) < 0.7, 2.5, 0)
    informative = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    noise = rng.dirichlet(np.ones(4), rows)
    return labels, {"informative": informative, "noise": noise}


def test_stack_is_at_least_as_good_as_the_informative_model_and_ignores_noise():
    labels, probs = synthetic()
    learner, _, metrics, f1_rows = run_stack(labels, probs, PARAMS, CLASSES)
    table = metrics["comparison_test"]
    assert table["stack"]["ua"] >= table["informative"]["ua"] - 0.01
    assert table["informative"]["ua"] > table["noise"]["ua"] + 0.2
    weights = np.abs(learner.coef)
    assert weights[:, 4:].sum() < 0.2 * weights[:, :4].sum()  # noise model's columns carry little weight
    assert metrics["best_base_model"] == "informative" and not metrics["collapsed"]
    assert set(f1_rows["model"]) == {"stack", "informative", "noise"}


def test_meta_learner_json_round_trip_and_mean_learner():
    labels, probs = synthetic(400)
    learner, test_proba, _, _ = run_stack(labels, probs, PARAMS, CLASSES)
    again = MetaLearner.from_json(learner.to_json())
    test = (labels["split"] == "test").to_numpy()
    np.testing.assert_allclose(again.predict_proba({m: p[test] for m, p in probs.items()}), test_proba)
    mean = run_stack(labels, probs, {**PARAMS, "learner": "mean"}, CLASSES)[1]
    np.testing.assert_allclose(mean, (probs["informative"][test] + probs["noise"][test]) / 2)


def test_missing_or_mismatched_base_predictions_are_clear_errors(tmp_path):
    labels, probs = synthetic(40)
    with pytest.raises(FileNotFoundError, match=r"informative.parquet is missing.*stack.base_models"):
        load_base_predictions(["informative"], CLASSES, labels, tmp_path)
    frame = pd.DataFrame(probs["informative"], columns=[f"prob_{c}" for c in CLASSES])
    frame.insert(0, "wav_id", labels.index)
    frame.insert(1, "split", "train")
    frame.to_parquet(tmp_path / "informative.parquet")
    with pytest.raises(ValueError, match="another split"):
        load_base_predictions(["informative"], CLASSES, labels, tmp_path)


def test_stack_metrics_carry_intervals_paired_differences_and_per_group_results():
    labels, probs = synthetic(800)
    rng = np.random.default_rng(5)
    labels["group"] = [f"s{i // 3}" for i in range(len(labels))]
    labels["gender"] = rng.choice(["여성", "남성"], len(labels))
    labels["age"] = rng.integers(20, 60, len(labels))
    evaluation = {"bootstrap": 200, "seed": 0, "min_group_rows": 30, "data_source": "demo",
                  "split": {"group_by": "sentence", "test_size": 0.25, "seed": 1}}
    _, test_proba, metrics, _, groups = run_stack(labels, probs, PARAMS, CLASSES, evaluation)
    pair = metrics["paired"]
    assert pair["stack_minus_best_member"]["best_member"] == metrics["choice"]["best_member"] == "informative"
    assert pair["informative_minus_majority"]["ua"]["lo"] > 0 and pair["informative_minus_majority"]["ua"]["share_le_0"] == 0
    assert pair["noise_minus_majority"]["ua"]["share_le_0"] > 0.01            # noise is not surely better than a constant
    assert metrics["test_ci"]["ua"]["point"] == pytest.approx(metrics["test"]["ua"])   # the chosen predictor's figures
    assert set(metrics["test_ci_by_model"]) == {"stack", "informative", "noise"}
    assert metrics["protocol"]["split_group_by"] == "sentence" and not metrics["protocol"]["speaker_independent"]
    assert set(groups["model"]) == {"stack", "informative", "noise"} and set(groups["attribute"]) == {"gender", "age"}
    assert (groups["rows"] >= 30).all()
