"""tiny_encoders stage: random-init tiny BERT/RoBERTa/ELECTRA + tokenizers trained on training-split text."""

from koemo.core.params import load_params
from koemo.core.runner import run_stage, stage_parser
from koemo.tiny.save import build_stage, training_texts
from koemo.tiny.text import build_tiny_encoders


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, ("--labels", "the labels stage's table (its training-split text)"),
                          ("--out", "directory of the tiny encoders, one per name"))
    args = parser.parse_args(argv)
    params = load_params()["tiny_encoders"]
    texts = training_texts(args.labels)
    built = build_stage("tiny_encoders", args, lambda tmp: build_tiny_encoders(texts, params, tmp))
    for name, info in built.items():
        print(f"tiny_encoders: {name} = local-tiny {info['architecture']}, vocab {info['vocab_size']}, "
              f"{info['parameters']:,} parameters (random init, not a pretrained model)")


if __name__ == "__main__":
    run_stage("tiny_encoders", main)
