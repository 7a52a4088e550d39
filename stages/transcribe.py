"""transcribe@<asr> stage: a Whisper transcript of every labels clip, scored (CER/WER) against the corpus transcript."""

import sys

import pandas as pd

from koemo.asr.registry import load_asr, unknown_asr
from koemo.asr.transcribe import transcribe_labels
from koemo.core.device import resolve_device
from koemo.core.io import write_parquet
from koemo.core.metrics import data_headline, format_rate, write_metrics
from koemo.core.params import load_params
from koemo.core.runner import LABELS_HELP, run_stage, stage_parser


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, ("--labels", LABELS_HELP), ("--out", "parquet: wav_id, text (the transcript), asr_failure"))
    parser.add_argument("asr", help="a name from params.yaml `asr_models`")
    args = parser.parse_args(argv)
    params = load_params()
    if args.asr not in params.get("asr_models", {}):
        raise unknown_asr(args.asr, params.get("asr_models", {}))
    settings, audio = params["transcribe"], params["audio"]
    labels = pd.read_parquet(args.labels, columns=["wav_id", "wav_path", "text", "split"])
    recognizer = load_asr(args.asr, params["asr_models"][args.asr])
    frame, metrics, runtime = transcribe_labels(
        recognizer, labels, int(settings["batch_size"]), int(settings["max_new_tokens"]), int(settings.get("num_beams", 1)),
        device=resolve_device(settings.get("device", "auto")), workers=int(audio["workers"]),
        min_rms_dbfs=audio.get("min_rms_dbfs"))
    write_parquet(args.out, frame)
    headline = {**data_headline("transcribe", metrics), "test_cer": metrics["test"]["cer"], "test_wer": metrics["test"]["wer"]}
    write_metrics(args.metrics, headline, args.report, metrics, args.runtime, runtime)
    test = metrics["test"]
    print(f"transcribe@{args.asr}: {metrics['transcribed']}/{metrics['rows']} clips from {metrics['source']} "
          f"({metrics['failed']} failed); test CER {test['cer']:.3f}, WER {test['wer']:.3f} over {test['rows']} rows; "
          f"{format_rate(runtime['audio_hours_per_second'] * 3600)} audio-seconds per second on {runtime['device']}"
          + (f"\n  note: {metrics['note']}" if "note" in metrics else ""))


if __name__ == "__main__":
    run_stage(f"transcribe@{sys.argv[1]}" if len(sys.argv) > 1 else "transcribe", main)
