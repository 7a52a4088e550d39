"""tiny_audio_encoders stage: a random-init tiny wav2vec2 ("local-tiny") from params alone (no data, no text params)."""

from koemo.core.params import load_params
from koemo.core.runner import run_stage, stage_parser
from koemo.tiny.save import build_stage
from koemo.tiny.wav2vec2 import build_tiny_audio_encoders


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, ("--out", "directory of the tiny audio encoders, one per name"))
    args = parser.parse_args(argv)
    params = load_params()["tiny_audio_encoders"]
    built = build_stage("tiny_audio_encoders", args, lambda tmp: build_tiny_audio_encoders(params, tmp))
    for name, info in built.items():
        print(f"tiny_audio_encoders: {name} = local-tiny {info['architecture']}, {info['layers']} layers × "
              f"{info['hidden_size']}, {info['parameters']:,} parameters (random init, not a pretrained model)")


if __name__ == "__main__":
    run_stage("tiny_audio_encoders", main)
