"""train_text stage: fine-tune the `text.model` encoder (registry `encoders.<name>`) with a classification head."""

from koemo.asr.text_source import apply_texts, texts_argument
from koemo.core.params import load_params
from koemo.core.runner import run_stage
from koemo.models.text import TextInputs
from koemo.text.registry import load_encoder
from koemo.train.distributed import run_in_processes
from koemo.train.evaluation import evaluation_params
from koemo.train.lineage import used_params
from koemo.train.runner import TrainingPaths, headline, read_labels, run_training_stage, training_parser


def main(argv: list[str] | None = None) -> None:
    args = texts_argument(training_parser(__doc__)).parse_args(argv)
    paths = TrainingPaths.from_args(args)
    params = load_params()
    if run_in_processes("train_text", params.get("runtime"), __file__, argv):
        return  # runtime.processes workers ran the stage
    classes = params["labels"]["classes"]
    name = params["text"]["model"]
    encoder_params = params["encoders"][name]
    spec = params["train_text"]
    labels = apply_texts(read_labels(paths.labels, classes), args.texts)
    checkpointing = bool(spec.get("gradient_checkpointing", False))
    build = TextInputs(labels, lambda: load_encoder(name, encoder_params, gradient_checkpointing=checkpointing),
                       len(classes), spec)
    config = {"text_model": name, "encoder": dict(encoder_params), "encoder_source": build.source}
    metrics, runtime = run_training_stage("text", labels, classes, params["train"], spec, build, config, paths,
                                          recorded=used_params("text", params),
                                          evaluation=evaluation_params(params))
    print(headline("text", metrics, runtime))


if __name__ == "__main__":
    run_stage("train_text", main)
