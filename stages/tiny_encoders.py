"""tiny_encoders stage: random-init tiny BERT/RoBERTa/ELECTRA + tokenizers trained on training-split text."""

import time

import pandas as pd

from koemo.errors import run_stage
from koemo.io import atomic_dir
from koemo.metrics import write_metrics
from koemo.params import load_params
from koemo.text.tiny import build_tiny_encoders


def main() -> None:
    params = load_params()["tiny_encoders"]
    labels = pd.read_parquet("data/labels.parquet", columns=["text", "split"])
    texts = labels.loc[labels["split"] == "train", "text"].astype(str).tolist()
    start = time.perf_counter()
    with atomic_dir("data/encoders") as tmp:
        built = build_tiny_encoders(texts, params, tmp)
    write_metrics("tiny_encoders", built, {"seconds": time.perf_counter() - start})
    for name, info in built.items():
        print(f"tiny_encoders: {name} = local-tiny {info['architecture']}, vocab {info['vocab_size']}, "
              f"{info['parameters']:,} parameters (random init, not a pretrained model)")


if __name__ == "__main__":
    run_stage("tiny_encoders", main)
