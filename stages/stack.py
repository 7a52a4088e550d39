"""stack stage: meta-learner on the base models' out-of-fold probabilities; final test metrics and plots."""

import time

import pandas as pd

from koemo.core.io import write_csv, write_json, write_parquet
from koemo.core.metrics import confusion_rows, model_headline, write_metrics
from koemo.core.params import load_params
from koemo.core.runner import LABELS_HELP, run_stage, stage_parser
from koemo.train.evaluation import ci_phrase, evaluation_params, gap_phrase
from koemo.train.stack import load_base_predictions, prob_columns, run_stack


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, ("--labels", LABELS_HELP),
                          ("--base-predictions", "directory of <model>.parquet per base model"),
                          ("--predictions", "the stack's test probabilities (parquet)"),
                          ("--model-dir", "the fitted meta-learner (meta.json)"),
                          ("--confusion", "test confusion rows for dvc plots (CSV)"),
                          ("--per-class-f1", "test F1 per class of every model (CSV)"),
                          ("--groups", "test UA per 성별 / 나이 band of every model (CSV)"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    params = load_params()
    classes, stack_params = params["labels"]["classes"], params["stack"]
    labels = pd.read_parquet(args.labels).set_index("wav_id")
    probs = load_base_predictions(stack_params["base_models"], classes, labels, args.base_predictions)
    learner, test_proba, metrics, f1_rows, group_rows = run_stack(labels, probs, stack_params, classes,
                                                                  evaluation_params(params))

    test = labels[labels["split"] == "test"]
    predictions = pd.DataFrame(test_proba, columns=prob_columns(classes))
    predictions.insert(0, "wav_id", test.index.to_numpy())
    write_parquet(args.predictions, predictions)
    write_json(args.model_dir / "meta.json", {**learner.to_json(), "params": stack_params})
    write_csv(args.confusion, confusion_rows(test["label_id"].to_numpy(), test_proba.argmax(axis=1), classes))
    write_csv(args.per_class_f1, f1_rows)
    write_csv(args.groups, group_rows)
    write_metrics(args.metrics, model_headline(metrics), args.report, metrics, args.runtime,
                  {"seconds": time.perf_counter() - started})
    print(summary(learner, metrics))


def paired_phrase(diff: dict) -> str:
    if diff["lo"] is None:
        return "(no interval: one test group)"
    return f"[{diff['lo']:+.3f}, {diff['hi']:+.3f}], ≤ 0 in {diff['share_le_0']:.0%} of resamples"


def summary(learner, metrics: dict) -> str:
    """The stage's headline: every model's test figures with intervals, the paired stack − best member figure and
    the largest per-group gap."""
    ci = metrics["test_ci_by_model"]
    rows = "\n".join(f"  {name:<18} UA {m['ua']:.3f} {ci_phrase(ci.get(name, {}), 'ua')}  WA {m['accuracy']:.3f}  "
                     f"macro-F1 {m['macro_f1']:.3f} {ci_phrase(ci.get(name, {}), 'macro_f1')}"
                     for name, m in metrics["comparison_test"].items())
    pair = metrics["paired"]["stack_minus_best_member"]
    chosen = "" if learner.chosen == "stack" else f"; {learner.chosen} alone predicts: the nested CV found the stack no better"
    return (f"stack ({learner.learner}, C={learner.C}{chosen}) on test ({metrics['protocol']['split_group_by']} split, "
            f"{int(metrics['test_ci']['level'] * 100)} % bootstrap intervals):\n{rows}\n"
            f"  stack − {pair['best_member']} (best member): UA {pair['ua']['point']:+.3f} {paired_phrase(pair['ua'])}\n"
            f"  {gap_phrase(metrics['per_group'])}")


if __name__ == "__main__":
    run_stage("stack", main)
