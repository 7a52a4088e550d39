"""text_source stage: the text every text model reads (text.source: transcript | asr), one row per labels row."""


import pandas as pd

from koemo.asr.text_source import build_texts
from koemo.core.io import write_parquet
from koemo.core.metrics import data_headline, write_metrics
from koemo.core.params import load_params
from koemo.core.runner import LABELS_HELP, run_stage, stage_parser


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, ("--labels", LABELS_HELP),
                          ("--transcripts", "the transcribe stage's output of asr.model"),
                          ("--out", "parquet: wav_id, text, source"))
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
