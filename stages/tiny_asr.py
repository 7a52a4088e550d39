"""tiny_asr stage: a random-init tiny Whisper ("local-tiny", not a speech recognizer) with a tokenizer trained on training-split text."""

from koemo.core.params import load_params
from koemo.core.runner import run_stage, stage_parser
from koemo.tiny.save import build_stage, training_texts
from koemo.tiny.whisper import NAME, build_tiny_whisper


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, ("--labels", "the labels stage's table (its training-split text)"),
                          ("--out", f"directory of the tiny ASR models ({NAME}/)"))
    args = parser.parse_args(argv)
    params = load_params()["tiny_asr"]
    texts = training_texts(args.labels)
    info = build_stage("tiny_asr", args, lambda tmp: {NAME: build_tiny_whisper(texts, params, tmp / NAME)})[NAME]
    print(f"tiny_asr: {NAME} = local-tiny {info['architecture']}, vocab {info['vocab_size']}, {info['parameters']:,} "
          "parameters (random init: its transcripts are noise, not speech recognition)")


if __name__ == "__main__":
    run_stage("tiny_asr", main)
