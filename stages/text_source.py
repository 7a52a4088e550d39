"""text_source stage: the text every text model reads (text.source: transcript | asr), one row per labels row."""

import argparse
from pathlib import Path

import pandas as pd

from koemo.asr.text_source import build_texts
from koemo.core.io import write_parquet
from koemo.core.metrics import add_metrics_args, data_headline, write_metrics
from koemo.core.params import load_params
from koemo.core.runner import run_stage


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--labels", type=Path, required=True, help="the labels stage's table (parquet)")
    parser.add_argument("--transcripts", type=Path, required=True, help="the transcribe stage's output of asr.model")
    parser.add_argument("--out", type=Path, required=True, help="parquet: wav_id, text, source")
    add_metrics_args(parser)
    args = parser.parse_args(argv)
    params = load_params()
    source, asr = params["text"].get("source", "transcript"), params["asr"]["model"]
    labels = pd.read_parquet(args.labels, columns=["wav_id", "text"])
    transcripts = pd.read_parquet(args.transcripts, columns=["wav_id", "text"]) if source == "asr" else None
    frame, metrics = build_texts(labels, source, transcripts, asr)
    write_parquet(args.out, frame)
    write_metrics(args.metrics, data_headline("text_source", metrics), args.report, metrics)
    print(f"text_source: {metrics['rows']} rows from {metrics['source']} ({metrics['rows_differing_from_transcript']} "
          f"differ from the corpus transcript, {metrics['empty']} empty)")


if __name__ == "__main__":
    run_stage("text_source", main)
