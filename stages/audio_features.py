"""audio_features@<kind> stage: mel / mfcc / melmean features of every labels clip (+ augmented training copies)."""

import sys

import pandas as pd

from koemo.audio.augment import AugmentSpec
from koemo.audio.extract import check_failures, extract_kind
from koemo.audio.features import KINDS, FeatureSpec
from koemo.errors import run_stage
from koemo.io import atomic_dir
from koemo.metrics import write_metrics
from koemo.params import load_params


def main(kind: str) -> None:
    if kind not in KINDS:
        raise SystemExit(f"audio_features: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    audio = load_params()["audio"]
    spec = FeatureSpec.from_params(kind, audio)
    augment = AugmentSpec.from_params(audio[kind].get("augment"))
    labels = pd.read_parquet("data/labels.parquet", columns=["wav_id", "wav_path", "split", "fold", "label", "label_id"])
    with atomic_dir(f"data/features/{kind}") as tmp:
        metrics, runtime = extract_kind(labels, spec, augment, tmp, int(audio["workers"]), int(audio["batch_size"]))
        check_failures(metrics, tmp, float(audio["max_failure_fraction"]))  # raising here leaves no output behind
    write_metrics(f"audio_features_{kind}", metrics, runtime)
    print(f"audio_features@{kind}: {metrics['clips']}/{metrics['clips_in']} clips + {metrics['augmented_rows']} augmented "
          f"rows → {metrics['rows']} × {metrics['feature_shape']} float32 in {metrics['shards']} shard(s); "
          f"{metrics['failed']} failed {metrics['failures_by_reason'] or ''}; {metrics['audio_seconds'] / 3600:.2f} h audio "
          f"at {runtime['x_real_time'] or 0:.0f}× real time on {runtime['device']} ({runtime['pool']} ×{runtime['workers']})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: python stages/audio_features.py <{'|'.join(KINDS)}>")
    run_stage(f"audio_features@{sys.argv[1]}", main, sys.argv[1])
