"""tiny_encoders stage: random-init tiny BERT/RoBERTa/ELECTRA + tokenizers trained on training-split text."""

import time

import pandas as pd

from koemo.core.io import atomic_dir
from koemo.core.metrics import data_headline, write_metrics
from koemo.core.params import load_params
from koemo.core.runner import run_stage, stage_parser
from koemo.tiny.text import build_tiny_encoders


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, ("--labels", "the labels stage's table (its training-split text)"),
                          ("--out", "directory of the tiny encoders, one per name"))
    args = parser.parse_args(argv)
    params = load_params()["tiny_encoders"]
    labels = pd.read_parquet(args.labels, columns=["text", "split"])
    texts = labels.loc[labels["split"] == "train", "text"].astype(str).tolist()
    start = time.perf_counter()
    with atomic_dir(args.out) as tmp:
        built = build_tiny_encoders(texts, params, tmp)
    write_metrics(args.metrics, data_headline("tiny_encoders", built), args.report, built, args.runtime,
                  {"seconds": time.perf_counter() - start})
    for name, info in built.items():
        print(f"tiny_encoders: {name} = local-tiny {info['architecture']}, vocab {info['vocab_size']}, "
              f"{info['parameters']:,} parameters (random init, not a pretrained model)")


if __name__ == "__main__":
    run_stage("tiny_encoders", main)
