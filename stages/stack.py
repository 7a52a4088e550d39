"""stack stage: meta-learner on the base models' out-of-fold probabilities; final test metrics and plots."""

import time

import pandas as pd

from koemo.errors import run_stage
from koemo.io import write_csv, write_json, write_parquet
from koemo.metrics import write_metrics
from koemo.params import load_params
from koemo.stack import load_base_predictions, prob_columns, run_stack
from koemo.evaluate import confusion_rows


def main() -> None:
    started = time.perf_counter()
    params = load_params()
    classes, stack_params = params["labels"]["classes"], params["stack"]
    labels = pd.read_parquet("data/labels.parquet").set_index("wav_id")
    probs = load_base_predictions(stack_params["base_models"], classes, labels)
    learner, test_proba, metrics, f1_rows = run_stack(labels, probs, stack_params, classes)

    test = labels[labels["split"] == "test"]
    predictions = pd.DataFrame(test_proba, columns=prob_columns(classes))
    predictions.insert(0, "wav_id", test.index.to_numpy())
    write_parquet("data/stack/predictions.parquet", predictions)
    write_json("data/models/stack/meta.json", {**learner.to_json(), "params": stack_params})
    write_csv("plots/stack_confusion.csv", confusion_rows(test["label_id"].to_numpy(), test_proba.argmax(axis=1), classes))
    write_csv("plots/per_class_f1.csv", f1_rows)
    write_metrics("stack", metrics, runtime={"seconds": time.perf_counter() - started})
    rows = "\n".join(f"  {name:<18} UA {m['ua']:.3f}  WA {m['accuracy']:.3f}  macro-F1 {m['macro_f1']:.3f}"
                     for name, m in metrics["comparison_test"].items())
    print(f"stack ({learner.learner}, C={learner.C}) on test:\n{rows}")


if __name__ == "__main__":
    run_stage("stack", main)
