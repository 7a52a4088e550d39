"""train_fusion stage: gated fusion of the text.model sentence embedding with ssl.model layer features, K-fold OOF."""

import numpy as np
import pandas as pd

from koemo.errors import run_stage
from koemo.lineage import used_params
from koemo.params import load_params
from koemo.speech.inputs import FusionInputs, SSLStore
from koemo.speech.stage import with_layer_weights
from koemo.train.inputs import aligned_rows
from koemo.train.stage import headline, read_labels, run_training_stage


def main() -> None:
    params = load_params()
    classes = params["labels"]["classes"]
    spec = params["train_fusion"]
    text_model = params["text"]["model"]
    store = SSLStore(f"data/ssl/{params['ssl']['model']}")
    labels = read_labels("data/labels.parquet", classes)
    wav_ids = labels["wav_id"].astype(str).tolist()
    directory = f"data/embeddings/{text_model}"
    embeddings = np.load(f"{directory}/embeddings.npy", mmap_mode="r")
    text = np.asarray(embeddings[aligned_rows(pd.read_parquet(f"{directory}/index.parquet"), wav_ids, directory)])
    inputs = FusionInputs(labels, text, store.aligned(wav_ids), len(classes), spec)
    config = {"text_model": text_model, "text_dim": int(text.shape[1]), "ssl_encoder": store.encoder,
              "layers": store.layers, "dim": store.dim, "rows_without_audio": int(inputs.missing.sum())}
    metrics, runtime = run_training_stage("fusion", labels, classes, params["train"], spec, inputs, config,
                                          recorded=used_params("fusion", params))
    metrics = with_layer_weights("fusion", metrics, runtime, store.encoder, int(inputs.missing.sum()))
    print(headline("fusion", metrics, runtime))


if __name__ == "__main__":
    run_stage("train_fusion", main)
