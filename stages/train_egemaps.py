"""train_egemaps stage: a small MLP on the standardised eGeMAPS functionals of each clip, K-fold out-of-fold."""

from pathlib import Path

from koemo.core.params import load_params
from koemo.core.runner import run_stage
from koemo.core.shards import ShardStore
from koemo.models.egemaps import EgemapsInputs
from koemo.train.distributed import run_in_processes
from koemo.train.evaluation import evaluation_params
from koemo.train.lineage import used_params
from koemo.train.runner import TrainingPaths, headline, read_labels, run_training_stage, training_parser


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__)
    parser.add_argument("--features", type=Path, required=True, help="the egemaps_features cache")
    args = parser.parse_args(argv)
    paths = TrainingPaths.from_args(args)
    params = load_params()
    if run_in_processes("train_egemaps", params.get("runtime"), __file__, argv):
        return  # runtime.processes workers ran the stage
    classes = params["labels"]["classes"]
    spec = params["train_egemaps"]
    labels = read_labels(paths.labels, classes)
    wav_ids = labels["wav_id"].astype(str).tolist()
    store = ShardStore(args.features)
    x, absent = store.aligned_with_absent(wav_ids)  # absent: clips openSMILE or decoding failed on
    build = EgemapsInputs(labels, x, len(classes), spec, absent=absent)
    config = {"features": "egemaps", "input_dim": int(store.row_shape[0]), "rows_without_features": int(len(absent)),
              "scaler": "per fold, fit on its fitting rows: fold<k>/scaler.safetensors"}
    metrics, runtime = run_training_stage("egemaps", labels, classes, params["train"], spec, build, config, paths,
                                          recorded=used_params("egemaps", params),
                                          evaluation=evaluation_params(params))
    print(headline("egemaps", metrics, runtime))


if __name__ == "__main__":
    run_stage("train_egemaps", main)
