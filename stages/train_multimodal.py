"""train_multimodal stage: the reference project's Conv1D over [text.model embedding ‖ mel means], K-fold OOF."""

from pathlib import Path

import numpy as np

from koemo.core.params import load_params
from koemo.core.runner import run_stage
from koemo.core.shards import ShardStore
from koemo.models.multimodal import MultimodalInputs
from koemo.train.distributed import run_in_processes
from koemo.train.evaluation import evaluation_params
from koemo.train.lineage import used_params
from koemo.train.runner import TrainingPaths, headline, read_labels, run_training_stage, training_parser


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__)
    parser.add_argument("--embeddings", type=Path, required=True, help="the text_embeddings output of text.model")
    parser.add_argument("--features", type=Path, required=True, help="the audio_features cache of train_multimodal.audio_features")
    args = parser.parse_args(argv)
    paths = TrainingPaths.from_args(args)
    params = load_params()
    if run_in_processes("train_multimodal", params.get("runtime"), __file__, argv):
        return  # runtime.processes workers ran the stage
    classes = params["labels"]["classes"]
    spec = params["train_multimodal"]
    labels = read_labels(paths.labels, classes)
    wav_ids = labels["wav_id"].astype(str).tolist()
    embeddings = ShardStore(args.embeddings)
    text = embeddings.rows(embeddings.originals(wav_ids))
    store = ShardStore(args.features)
    audio, absent = store.aligned_with_absent(wav_ids)  # absent: clips the features stage listed as failed
    audio = audio.astype(np.float32)
    build = MultimodalInputs(labels, text, audio, len(classes), spec, absent=absent)
    config = {"text_model": params["text"]["model"], "audio_features": spec["audio_features"], "text_dim": int(text.shape[1]),
              "audio_dim": int(audio.shape[1]), "scaler": "per fold, fit on its fitting rows: fold<k>/scaler.safetensors"}
    metrics, runtime = run_training_stage("multimodal", labels, classes, params["train"], spec, build, config, paths,
                                          recorded=used_params("multimodal", params),
                                          evaluation=evaluation_params(params))
    print(headline("multimodal", metrics, runtime))


if __name__ == "__main__":
    run_stage("train_multimodal", main)
