"""The one entry point of every `stages/train_<m>.py`: parse, params, processes, labels, the model's inputs, the
fold engine (`train.runner.fit_folds_and_write`), the headline. What differs per model is its `koemo.models.<m>`
module: NAME, ARGS (its input paths), DISTRIBUTED, used_keys(params) and inputs(args, params, labels, classes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping

import pandas as pd

from koemo.core.params import load_params
from koemo.train.cv import FoldTrainer
from koemo.train.distributed import run_in_processes
from koemo.train.evaluation import evaluation_params
from koemo.train.lineage import used_params
from koemo.train.runner import TrainingPaths, fit_folds_and_write, headline, read_labels, training_parser


@dataclass
class Built:
    """What a model's `inputs(...)` hands the fold engine."""

    inputs: Callable | None                 # the fold builder (FoldPlan → FoldJob); None when `train_fold` is given
    config: Mapping[str, Any]               # written to config.json after the recorded params (key order kept)
    train_fold: FoldTrainer | None = None   # a model fitted without the one Trainer (tfidf)
    labels: pd.DataFrame | None = None      # the table trained on, where the model changed it (text.source's text)
    finish: Callable[[TrainingPaths, dict, dict], dict] | None = None  # metrics → metrics, after the outputs
    notes: Callable[[dict], list[str]] | None = None                   # lines printed after the headline


def train_stage(model: ModuleType, doc: str, script: str, argv: list[str] | None = None) -> None:
    """Run stage `train_<model.NAME>`; `doc` is its --help text, `script` the file torchrun workers rerun."""
    parser = training_parser(doc)
    for flag, help_, *required in model.ARGS:  # (flag, help[, required]) input paths
        parser.add_argument(flag, type=Path, required=required[0] if required else True, help=help_)
    args = parser.parse_args(argv)
    paths = TrainingPaths.from_args(args)
    params = load_params()
    stage = f"train_{model.NAME}"
    if model.DISTRIBUTED and run_in_processes(stage, params.get("runtime"), script, argv):
        return  # runtime.processes workers ran the stage
    classes = params["labels"]["classes"]
    labels = read_labels(paths.labels, classes)
    built = model.inputs(args, params, labels, classes)
    labels = built.labels if built.labels is not None else labels
    metrics, runtime = fit_folds_and_write(model.NAME, labels, classes, params["train"], params[stage], built.inputs,
                                           built.config, paths, recorded=used_params(model.used_keys(params), params),
                                           train_fold=built.train_fold, evaluation=evaluation_params(params))
    if built.finish is not None:
        metrics = built.finish(paths, metrics, runtime)
    print(headline(model.NAME, metrics, runtime))
    for line in built.notes(metrics) if built.notes is not None else ():
        print(line)
