"""The stack's guarantees, stated as behaviour: fit on out-of-fold training rows only, honest inner CV, ties to
stronger regularisation, class weighting that matters, and no loss to its own best member."""

import numpy as np
import pandas as pd
import pytest

from koemo.core.errors import UserError
from koemo.train.stack import STACK, MetaLearner, StackError, meta_features, run_stack

CLASSES = ["angry", "happiness", "neutral", "sadness"]
PARAMS = {"learner": "logistic", "features": "log_proba", "C_grid": [0.01, 0.1, 1.0, 10.0], "class_weighted": True,
          "select_by": "ua", "seed": 0}


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def labels_frame(y: np.ndarray, rng: np.random.Generator, test_share: float = 0.3, folds: int = 4) -> pd.DataFrame:
    rows = len(y)
    labels = pd.DataFrame({"label_id": y, "split": np.where(rng.random(rows) < test_share, "test", "train")},
                          index=pd.Index([f"{i:024x}" for i in range(rows)], name="wav_id"))
    labels["fold"] = np.where(labels["split"] == "train", rng.integers(0, folds, rows), -1)
    return labels


def informative(y: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    logits = rng.normal(0, 1, (len(y), 4))
    logits[np.arange(len(y)), y] += strength
    return softmax(logits)


def params_for(probs: dict, **changes) -> dict:
    return {**PARAMS, "base_models": list(probs), **changes}


def test_the_stack_is_fitted_on_training_rows_only():
    """A member whose test rows are 'perfect' for a permuted label (and noise elsewhere) carries nothing a stack fitted
    on training rows can use; a stack that also fitted on test rows would learn the permutation and score ~1."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 1200)
    labels = labels_frame(y, rng)
    test = (labels["split"] == "test").to_numpy()
    leaky = rng.dirichlet(np.ones(4), len(y))
    leaky[test] = np.eye(4)[(y[test] + 1) % 4] * 0.96 + 0.01
    probs = {"weak": informative(y, rng, 1.0), "leaky": leaky}
    _, _, metrics, _ = run_stack(labels, probs, params_for(probs), CLASSES)
    table = metrics["comparison_test"]
    assert table["leaky"]["ua"] == 0.0  # the permutation: right 'shape', wrong class
    assert table["stack"]["ua"] < table["weak"]["ua"] + 0.1 < 0.7
    assert metrics["fit_rows"] == int((~test).sum())


def test_inner_cv_scores_are_out_of_fold():
    """Members of pure noise: an honest inner CV scores every C near chance (UA 0.25); fitting on the rows it
    scores would report far more."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 240)
    probs = {f"noise{k}": rng.dirichlet(np.ones(4), len(y)) for k in range(8)}
    _, _, metrics, _ = run_stack(labels_frame(y, rng, test_share=0.2), probs, params_for(probs), CLASSES)
    assert set(metrics["inner_cv"]) == {str(c) for c in PARAMS["C_grid"]}
    assert max(metrics["inner_cv"].values()) < 0.4, metrics["inner_cv"]
    assert metrics["choice"]["nested_cv"]["stack"] < 0.4


def test_tied_C_goes_to_the_stronger_regularisation():
    """A member that separates the classes perfectly: every C scores UA 1, and the smallest C must win whatever the
    grid's order."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 400)
    probs = {"perfect": np.eye(4)[y] * 0.96 + 0.01, "noise": rng.dirichlet(np.ones(4), len(y))}
    _, _, metrics, _ = run_stack(labels_frame(y, rng), probs, params_for(probs, C_grid=[10.0, 1.0, 0.1, 0.01]), CLASSES)
    assert set(metrics["inner_cv"].values()) == {1.0}
    assert metrics["C"] == 0.01


def test_class_weighting_raises_ua_on_imbalanced_classes():
    """70 % angry: a calibrated member's argmax favours the majority; the balanced meta-learner trades accuracy for
    recall on the small classes, so UA must rise (and the two settings must differ at all)."""
    rng = np.random.default_rng(3)
    y = rng.choice(4, 1600, p=[0.7, 0.1, 0.1, 0.1])
    logits = rng.normal(0, 1, (len(y), 4))
    logits[np.arange(len(y)), y] += 1.2
    logits[:, 0] += np.log(7.0)  # the prior, as a calibrated model would carry it
    probs = {"calibrated": softmax(logits), "noise": rng.dirichlet(np.ones(4), len(y))}
    labels = labels_frame(y, rng)
    weighted = run_stack(labels, probs, params_for(probs, class_weighted=True), CLASSES)[2]["comparison_test"]["stack"]
    plain = run_stack(labels, probs, params_for(probs, class_weighted=False), CLASSES)[2]["comparison_test"]["stack"]
    assert weighted["ua"] > plain["ua"] + 0.05, (weighted, plain)


def test_the_final_predictor_does_not_lose_to_its_only_informative_member():
    """One informative member among six of noise, few rows: the logistic stack overfits the noise and loses to
    the member; the nested-CV choice must notice on the OOF rows and predict with the member alone."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    labels = labels_frame(y, rng)
    probs = {"informative": informative(y, rng, 2.0), **{f"noise{k}": rng.dirichlet(np.ones(4) * 0.5, len(y)) for k in range(6)}}
    learner, test_proba, metrics, _ = run_stack(labels, probs, params_for(probs), CLASSES)
    table = metrics["comparison_test"]
    assert metrics["test"]["ua"] >= table["informative"]["ua"] - 0.01
    assert table["stack"]["ua"] < table["informative"]["ua"] - 0.01  # what the choice saved
    choice = metrics["choice"]
    assert metrics["chosen"] == choice["chosen"] == learner.chosen == "informative" and choice["nested"]
    assert choice["nested_cv"]["best_member"] > choice["nested_cv"]["stack"]
    # predict's view: the stored learner needs only that member, and reproduces the stage's test probabilities
    again = MetaLearner.from_json(learner.to_json())
    test = (labels["split"] == "test").to_numpy()
    assert again.inputs == ["informative"]
    np.testing.assert_allclose(again.predict_proba({"informative": probs["informative"][test]}), test_proba)


def test_a_stack_that_helps_is_kept():
    """Two complementary members (each sees half the classes): the combination beats both and is chosen."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 1200)
    left, right = rng.normal(0, 1, (len(y), 4)), rng.normal(0, 1, (len(y), 4))
    left[np.arange(len(y)), y] += np.where(y < 2, 3.0, 0.0)
    right[np.arange(len(y)), y] += np.where(y >= 2, 3.0, 0.0)
    probs = {"left": softmax(left), "right": softmax(right)}
    learner, _, metrics, _ = run_stack(labels_frame(y, rng), probs, params_for(probs), CLASSES)
    assert learner.chosen == metrics["chosen"] == STACK and learner.inputs == ["left", "right"]
    assert metrics["test"]["ua"] > max(metrics["comparison_test"][m]["ua"] for m in probs) + 0.1


def test_stack_params_and_inputs_are_user_errors():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 80)
    labels = labels_frame(y, rng)
    probs = {"a": informative(y, rng, 1.0)}
    with pytest.raises(StackError, match=r"stack.learner='boosting'; choose one of"):
        run_stack(labels, probs, params_for(probs, learner="boosting"), CLASSES)
    with pytest.raises(StackError, match=r"stack.features='logits'; choose log_proba or proba"):
        meta_features(probs, ["a"], "logits")
    no_oof = {"a": np.where((labels["split"] == "train").to_numpy()[:, None], np.nan, probs["a"])}
    with pytest.raises(StackError, match=r"only 0 training rows have out-of-fold predictions.*train.folds >= 2"):
        run_stack(labels, no_oof, params_for(no_oof), CLASSES)
    assert issubclass(StackError, UserError) and issubclass(StackError, ValueError)
