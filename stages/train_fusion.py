"""train_fusion stage: gated fusion of the text.model sentence embedding with ssl.model layer features, K-fold OOF."""

from pathlib import Path

from koemo.core.params import load_params
from koemo.core.runner import run_stage
from koemo.core.shards import ShardStore
from koemo.models.ssl_inputs import FusionInputs, SSLStore
from koemo.models.ssl_layer_weights import with_layer_weights
from koemo.train.distributed import run_in_processes
from koemo.train.evaluation import evaluation_params
from koemo.train.lineage import used_params
from koemo.train.runner import TrainingPaths, headline, read_labels, run_training_stage, training_parser


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__)
    parser.add_argument("--embeddings", type=Path, required=True, help="the text_embeddings output of text.model")
    parser.add_argument("--ssl", type=Path, required=True, help="the ssl_features cache of ssl.model")
    args = parser.parse_args(argv)
    paths = TrainingPaths.from_args(args)
    params = load_params()
    if run_in_processes("train_fusion", params.get("runtime"), __file__, argv):
        return  # runtime.processes workers ran the stage
    classes = params["labels"]["classes"]
    spec = params["train_fusion"]
    store = SSLStore(args.ssl)
    labels = read_labels(paths.labels, classes)
    wav_ids = labels["wav_id"].astype(str).tolist()
    embeddings = ShardStore(args.embeddings)
    text = embeddings.rows(embeddings.originals(wav_ids))
    inputs = FusionInputs(labels, text, store.aligned(wav_ids), len(classes), spec)
    config = {"text_model": params["text"]["model"], "text_dim": int(text.shape[1]), "ssl_encoder": store.encoder,
              "layers": store.layers, "dim": store.dim, "rows_without_audio": int(inputs.missing.sum())}
    metrics, runtime = run_training_stage("fusion", labels, classes, params["train"], spec, inputs, config, paths,
                                          recorded=used_params("fusion", params),
                                          evaluation=evaluation_params(params))
    metrics = with_layer_weights(paths, metrics, runtime, store.encoder, int(inputs.missing.sum()))
    print(headline("fusion", metrics, runtime))


if __name__ == "__main__":
    run_stage("train_fusion", main)
