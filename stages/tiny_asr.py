"""tiny_asr stage: a random-init tiny Whisper ("local-tiny", not a speech recognizer) with a tokenizer trained on training-split text."""

import time
from pathlib import Path

import pandas as pd

from koemo.core.io import atomic_dir
from koemo.core.metrics import data_headline, write_metrics
from koemo.core.params import load_params
from koemo.core.runner import run_stage, stage_parser
from koemo.tiny.whisper import NAME, build_tiny_whisper


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, ("--labels", "the labels stage's table (its training-split text)"),
                          ("--out", f"directory of the tiny ASR models ({NAME}/)"))
    args = parser.parse_args(argv)
    params = load_params()["tiny_asr"]
    labels = pd.read_parquet(args.labels, columns=["text", "split"])
    texts = labels.loc[labels["split"] == "train", "text"].astype(str).tolist()
    start = time.perf_counter()
    with atomic_dir(args.out) as tmp:
        info = build_tiny_whisper(texts, params, Path(tmp) / NAME)
    write_metrics(args.metrics, data_headline("tiny_asr", {NAME: info}), args.report, {NAME: info}, args.runtime, {"seconds": time.perf_counter() - start})
    print(f"tiny_asr: {NAME} = local-tiny {info['architecture']}, vocab {info['vocab_size']}, {info['parameters']:,} "
          "parameters (random init: its transcripts are noise, not speech recognition)")


if __name__ == "__main__":
    run_stage("tiny_asr", main)
