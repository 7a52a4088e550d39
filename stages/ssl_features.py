"""ssl_features@<audio encoder> stage: all hidden layers of a frozen SSL speech encoder, mean-pooled per clip."""

import sys
from functools import partial

import pandas as pd

from koemo.audio.decode import decode_clips
from koemo.audio.extract import check_failures
from koemo.device import resolve_device
from koemo.errors import run_stage
from koemo.io import atomic_dir
from koemo.metrics import write_metrics
from koemo.params import load_params
from koemo.speech.extract import extract_features
from koemo.speech.registry import load_audio_encoder


def failed_detail(metrics: dict) -> str:
    reasons = metrics["failures_by_reason"]
    return f" ({', '.join(f'{k}: {v}' for k, v in reasons.items())}; see data/ssl/{metrics['encoder']}/failures.csv)" if reasons else ""


def main(name: str) -> None:
    params = load_params()
    if name not in params["audio_encoders"]:
        raise SystemExit(f"ssl_features: no audio_encoders.{name} in params.yaml (known: {', '.join(params['audio_encoders'])})")
    settings = params["ssl_features"]
    limit = float(params["audio"]["max_failure_fraction"])
    decode = partial(decode_clips, workers=int(params["audio"]["workers"]))  # audio_features' decoder: same rate conversion
    labels = pd.read_parquet("data/labels.parquet", columns=["wav_id", "wav_path"])
    encoder = load_audio_encoder(name, params["audio_encoders"][name])
    with atomic_dir(f"data/ssl/{name}") as tmp:
        metrics, runtime = extract_features(encoder, labels, decode, tmp, float(settings["chunk_seconds"]),
                                            float(settings["batch_seconds"]), int(settings["block_clips"]),
                                            device=resolve_device(settings.get("device", "auto")))
        check_failures(metrics, tmp, limit, stage=f"ssl_features@{name}")  # raising here leaves no output behind
    write_metrics(f"ssl_features_{name}", metrics, runtime)
    print(f"ssl_features@{name}: {metrics['clips']}/{metrics['clips_in']} clips → [{metrics['clips']}, {metrics['layers']}, "
          f"{metrics['dim']}] float16 from {metrics['source']} ({metrics['audio_seconds'] / 3600:.2f} h audio, "
          f"{metrics['chunked_clips']} chunked), {metrics['failed']} failed{failed_detail(metrics)}; "
          f"{runtime['x_real_time'] or 0:.0f}× real time on {runtime['device']}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python stages/ssl_features.py <encoder name from params.yaml audio_encoders>")
    run_stage(f"ssl_features@{sys.argv[1]}", main, sys.argv[1])
