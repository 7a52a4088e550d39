"""audio_features@<kind> stage: mel / mfcc / melmean features of every labels clip (+ augmented training copies)."""

import argparse
import sys
from pathlib import Path

import pandas as pd

from koemo.errors import run_stage
from koemo.extraction import check_failures
from koemo.features.augment import AugmentSpec
from koemo.features.cache import extract_kind
from koemo.features.spectral import KINDS, FeatureSpec
from koemo.io import atomic_dir
from koemo.metrics import add_metrics_args, write_metrics
from koemo.params import load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--labels", type=Path, required=True, help="the labels stage's table (parquet)")
    parser.add_argument("--out", type=Path, required=True, help="directory: shards + index.parquet + failures.csv")
    add_metrics_args(parser)
    args = parser.parse_args(argv)
    audio = load_params()["audio"]
    spec = FeatureSpec.from_params(args.kind, audio)
    augment = AugmentSpec.from_params(audio[args.kind].get("augment"))
    labels = pd.read_parquet(args.labels, columns=["wav_id", "wav_path", "split", "fold", "label", "label_id"])
    with atomic_dir(args.out) as tmp:
        metrics, runtime = extract_kind(labels, spec, augment, tmp, int(audio["workers"]), int(audio["batch_size"]))
        # raising here leaves no output behind
        check_failures(metrics, tmp, float(audio["max_failure_fraction"]), stage=f"audio_features@{args.kind}")
    write_metrics(args.metrics, metrics, args.runtime, runtime)
    print(f"audio_features@{args.kind}: {metrics['clips']}/{metrics['clips_in']} clips + {metrics['augmented_rows']} augmented "
          f"rows → {metrics['rows']} × {metrics['feature_shape']} float32 in {metrics['shards']} shard(s); "
          f"{metrics['failed']} failed {metrics['failures_by_reason'] or ''}; {metrics['audio_seconds'] / 3600:.2f} h audio "
          f"at {runtime['x_real_time'] or 0:.0f}× real time on {runtime['device']} ({runtime['pool']} ×{runtime['workers']})")


if __name__ == "__main__":
    run_stage(f"audio_features@{sys.argv[1]}" if len(sys.argv) > 1 else "audio_features", main)
