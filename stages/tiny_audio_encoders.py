"""tiny_audio_encoders stage: a random-init tiny wav2vec2 ("local-tiny") from params alone (no data, no text params)."""

import time

from koemo.core.io import atomic_dir
from koemo.core.metrics import data_headline, write_metrics
from koemo.core.params import load_params
from koemo.core.runner import run_stage, stage_parser
from koemo.tiny.wav2vec2 import build_tiny_audio_encoders


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, ("--out", "directory of the tiny audio encoders, one per name"))
    args = parser.parse_args(argv)
    params = load_params()["tiny_audio_encoders"]
    start = time.perf_counter()
    with atomic_dir(args.out) as tmp:
        built = build_tiny_audio_encoders(params, tmp)
    write_metrics(args.metrics, data_headline("tiny_audio_encoders", built), args.report, built, args.runtime,
                  {"seconds": time.perf_counter() - start})
    for name, info in built.items():
        print(f"tiny_audio_encoders: {name} = local-tiny {info['architecture']}, {info['layers']} layers × "
              f"{info['hidden_size']}, {info['parameters']:,} parameters (random init, not a pretrained model)")


if __name__ == "__main__":
    run_stage("tiny_audio_encoders", main)
