"""ssl_features@<audio encoder> stage: all hidden layers of a frozen SSL speech encoder, mean-pooled per clip."""

import sys

import pandas as pd

from koemo.clips.extraction import check_failures
from koemo.core.device import resolve_device
from koemo.core.io import atomic_dir
from koemo.core.metrics import data_headline, format_rate, write_metrics
from koemo.core.params import load_params
from koemo.core.runner import LABELS_HELP, run_stage, stage_parser
from koemo.ssl.cache import extract_features
from koemo.ssl.registry import load_audio_encoder, unknown_audio_encoder


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, ("--labels", LABELS_HELP),
                          ("--out", "directory: float16 shards + index.parquet + failures.csv"))
    parser.add_argument("encoder", help="a name from params.yaml `audio_encoders`")
    args = parser.parse_args(argv)
    params = load_params()
    if args.encoder not in params["audio_encoders"]:
        raise unknown_audio_encoder(args.encoder, params["audio_encoders"])
    settings, audio = params["ssl_features"], params["audio"]
    labels = pd.read_parquet(args.labels, columns=["wav_id", "wav_path"])
    encoder = load_audio_encoder(args.encoder, params["audio_encoders"][args.encoder])
    stage = f"ssl_features@{args.encoder}"
    with atomic_dir(args.out) as tmp:
        metrics, runtime = extract_features(encoder, labels, tmp, float(settings["chunk_seconds"]),
                                            float(settings["batch_seconds"]), int(settings["block_clips"]),
                                            workers=int(audio["workers"]), device=resolve_device(settings.get("device", "auto")),
                                            min_rms_dbfs=audio.get("min_rms_dbfs"))
        check_failures(metrics, tmp, float(audio["max_failure_fraction"]), stage=stage)  # raising leaves no output
    write_metrics(args.metrics, data_headline("ssl_features", metrics), args.report, metrics, args.runtime, runtime)
    reasons = metrics["failures_by_reason"]
    detail = f" ({', '.join(f'{k}: {v}' for k, v in reasons.items())}; see {args.out}/failures.csv)" if reasons else ""
    print(f"{stage}: {metrics['clips']}/{metrics['clips_in']} clips → [{metrics['clips']}, {metrics['layers']}, "
          f"{metrics['dim']}] float16 from {metrics['source']} ({metrics['audio_seconds'] / 3600:.2f} h audio, "
          f"{metrics['chunked_clips']} chunked), {metrics['failed']} failed{detail}; "
          f"{format_rate(runtime['x_real_time'])}× real time on {runtime['device']}")


if __name__ == "__main__":
    run_stage(f"ssl_features@{sys.argv[1]}" if len(sys.argv) > 1 else "ssl_features", main)
