"""text_embeddings@<encoder> stage: one pooled vector per labels row, each distinct text embedded once."""

import sys

import pandas as pd

from koemo.errors import run_stage
from koemo.io import atomic_dir, save_npy, write_parquet
from koemo.metrics import write_metrics
from koemo.params import load_params
from koemo.text.embed import embed_labels, resolve_device
from koemo.text.registry import load_encoder


def main(name: str) -> None:
    params = load_params()
    if name not in params["encoders"]:
        raise SystemExit(f"text_embeddings: no encoders.{name} in params.yaml (known: {', '.join(params['encoders'])})")
    settings = params["text_embeddings"]
    labels = pd.read_parquet("data/labels.parquet", columns=["wav_id", "text"])
    encoder = load_encoder(name, params["encoders"][name])
    embeddings, index, metrics, runtime = embed_labels(labels, encoder, int(settings["batch_size"]),
                                                       device=resolve_device(settings.get("device", "auto")))
    with atomic_dir(f"data/embeddings/{name}") as tmp:
        save_npy(tmp / "embeddings.npy", embeddings)
        write_parquet(tmp / "index.parquet", index)
    write_metrics(f"text_embeddings_{name}", metrics, runtime)
    print(f"text_embeddings@{name}: {metrics['rows']} rows ({metrics['unique_texts']} distinct texts) → "
          f"[{metrics['rows']}, {metrics['dim']}] from {metrics['source']} ({metrics['pooling']} pooling), "
          f"{runtime['sentences_per_second'] or 0:.0f} sentences/s on {runtime['device']}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python stages/text_embeddings.py <encoder name from params.yaml encoders>")
    run_stage(f"text_embeddings@{sys.argv[1]}", main, sys.argv[1])
