"""train_wav2vec2 stage: learned softmax weighting of the ssl.model layers → MLP, K-fold OOF.

`mode: frozen` trains the head on the cached SSL features; `mode: finetune` trains the registry encoder
audio_encoders.<ssl.model> under the same head from the labels' wavs (CNN feature encoder frozen, transformer at
lr × encoder_lr_scale; a GPU job for real encoders).
"""

from pathlib import Path

from koemo.core.params import load_params
from koemo.core.runner import run_stage
from koemo.models.ssl_inputs import SSLInputs, SSLStore
from koemo.models.ssl_layer_weights import check_mode, with_layer_weights
from koemo.train.distributed import run_in_processes
from koemo.train.evaluation import evaluation_params
from koemo.train.lineage import used_params
from koemo.train.runner import TrainingPaths, headline, read_labels, run_training_stage, training_parser


def finetune_inputs(params, labels, n_classes: int):
    """The fine-tune fold builder over labels' wav_path, loading audio_encoders.<ssl.model> afresh per fold."""
    from koemo.models.wav2vec2_finetune import FineTuneInputs
    from koemo.ssl.registry import load_audio_encoder, unknown_audio_encoder

    name = params["ssl"]["model"]
    if name not in params["audio_encoders"]:
        raise unknown_audio_encoder(name, params["audio_encoders"], key="ssl.model")
    spec = params["train_wav2vec2"]
    checkpointing = bool(spec.get("gradient_checkpointing", False))
    return FineTuneInputs(labels, lambda: load_audio_encoder(name, params["audio_encoders"][name],
                                                             gradient_checkpointing=checkpointing), n_classes, spec)


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__)
    parser.add_argument("--ssl", type=Path, required=True, help="the ssl_features cache of ssl.model (mode frozen)")
    args = parser.parse_args(argv)
    paths = TrainingPaths.from_args(args)
    params = load_params()
    if run_in_processes("train_wav2vec2", params.get("runtime"), __file__, argv):
        return  # runtime.processes workers ran the stage
    classes = params["labels"]["classes"]
    spec = params["train_wav2vec2"]
    mode = check_mode(spec)
    labels = read_labels(paths.labels, classes)
    if mode == "finetune":
        inputs = finetune_inputs(params, labels, len(classes))
        encoder, missing = inputs.description, 0
        config = {"mode": mode, "ssl_encoder": encoder, "layers": inputs.layers, "dim": inputs.dim,
                  "rows_without_audio": missing, "max_samples": inputs.max_samples, "sample_rate": inputs.sample_rate}
        source = "fine-tuned"
    else:
        store = SSLStore(args.ssl)
        inputs = SSLInputs(labels, store.aligned(labels["wav_id"].astype(str).tolist()), len(classes), spec)
        encoder, missing = store.encoder, int(inputs.missing.sum())
        config = {"ssl_encoder": encoder, "layers": store.layers, "dim": store.dim, "rows_without_audio": missing}
        source = "features of"
    metrics, runtime = run_training_stage("wav2vec2", labels, classes, params["train"], spec, inputs, config, paths,
                                          recorded=used_params("wav2vec2", params),
                                          evaluation=evaluation_params(params))
    metrics = with_layer_weights(paths, metrics, runtime, encoder, missing)
    print(headline("wav2vec2", metrics, runtime))
    print(f"train_wav2vec2: {source} {encoder['encoder']} ({encoder['source']}); mean layer weights "
          f"{metrics['layer_weights']['mean']}")


if __name__ == "__main__":
    run_stage("train_wav2vec2", main)
