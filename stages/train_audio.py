"""train_audio stage: a ResNet on the cached mel spectrograms, K-fold out-of-fold (reads no text param)."""

from pathlib import Path

from koemo.core.params import load_params
from koemo.core.runner import run_stage
from koemo.core.shards import ShardStore
from koemo.models.audio import AudioInputs
from koemo.train.distributed import run_in_processes
from koemo.train.evaluation import evaluation_params
from koemo.train.lineage import used_params
from koemo.train.runner import TrainingPaths, headline, read_labels, run_training_stage, training_parser


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__)
    parser.add_argument("--features", type=Path, required=True, help="the audio_features cache of train_audio.features")
    args = parser.parse_args(argv)
    paths = TrainingPaths.from_args(args)
    params = load_params()
    if run_in_processes("train_audio", params.get("runtime"), __file__, argv):
        return  # runtime.processes workers ran the stage
    classes = params["labels"]["classes"]
    spec = params["train_audio"]
    labels = read_labels(paths.labels, classes)
    store = ShardStore(args.features)
    build = AudioInputs(labels, store, len(classes), spec)
    config = {"features": spec["features"], "input_shape": list(store.row_shape)}
    metrics, runtime = run_training_stage("audio", labels, classes, params["train"], spec, build, config, paths,
                                          recorded=used_params("audio", params),
                                          evaluation=evaluation_params(params))
    print(headline("audio", metrics, runtime))


if __name__ == "__main__":
    run_stage("train_audio", main)
