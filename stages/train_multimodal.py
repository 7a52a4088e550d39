"""train_multimodal stage: the seed's Conv1D over [text.model embedding ‖ mel means], K-fold out-of-fold."""

import numpy as np
import pandas as pd

from koemo.errors import run_stage
from koemo.lineage import used_params
from koemo.params import load_params
from koemo.train.inputs import FeatureStore, MultimodalInputs, aligned_rows
from koemo.train.stage import headline, read_labels, run_training_stage


def main() -> None:
    params = load_params()
    classes = params["labels"]["classes"]
    encoder = params["text"]["model"]
    spec = params["train_multimodal"]
    labels = read_labels("data/labels.parquet", classes)
    wav_ids = labels["wav_id"].astype(str).tolist()
    directory = f"data/embeddings/{encoder}"
    embeddings = np.load(f"{directory}/embeddings.npy", mmap_mode="r")
    text = np.asarray(embeddings[aligned_rows(pd.read_parquet(f"{directory}/index.parquet"), wav_ids, directory)])
    store = FeatureStore(f"data/features/{spec['audio_features']}")
    audio = store.rows(store.originals(wav_ids))
    build = MultimodalInputs(labels, text, audio, len(classes), spec)
    config = {"text_model": encoder, "audio_features": spec["audio_features"], "text_dim": int(text.shape[1]),
              "audio_dim": int(audio.shape[1]), "scaler": "per fold, fit on its fitting rows: fold<k>/scaler.safetensors"}
    metrics, runtime = run_training_stage("multimodal", labels, classes, params["train"], spec, build, config,
                                          recorded=used_params("multimodal", params))
    print(headline("multimodal", metrics, runtime))


if __name__ == "__main__":
    run_stage("train_multimodal", main)
