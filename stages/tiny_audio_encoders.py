"""tiny_audio_encoders stage: a random-init tiny wav2vec2 ("local-tiny") from params alone (no data, no text params)."""

import time

from koemo.errors import run_stage
from koemo.io import atomic_dir
from koemo.metrics import write_metrics
from koemo.params import load_params
from koemo.speech.tiny import build_tiny_audio_encoders


def main() -> None:
    params = load_params()["tiny_audio_encoders"]
    start = time.perf_counter()
    with atomic_dir("data/audio_encoders") as tmp:
        built = build_tiny_audio_encoders(params, tmp)
    write_metrics("tiny_audio_encoders", built, {"seconds": time.perf_counter() - start})
    for name, info in built.items():
        print(f"tiny_audio_encoders: {name} = local-tiny {info['architecture']}, {info['layers']} layers × "
              f"{info['hidden_size']}, {info['parameters']:,} parameters (random init, not a pretrained model)")


if __name__ == "__main__":
    run_stage("tiny_audio_encoders", main)
