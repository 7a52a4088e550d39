"""train_tfidf stage: TF-IDF over Kiwi morphemes and character n-grams → logistic regression, K-fold out-of-fold."""

from koemo.asr.text_source import apply_texts, texts_argument
from koemo.core.params import load_params
from koemo.core.runner import run_stage
from koemo.models.tfidf import TfidfParams, tfidf_folds
from koemo.train.evaluation import evaluation_params
from koemo.train.lineage import used_params
from koemo.train.runner import TrainingPaths, headline, read_labels, run_training_stage, training_parser


def main(argv: list[str] | None = None) -> None:
    args = texts_argument(training_parser(__doc__)).parse_args(argv)
    paths = TrainingPaths.from_args(args)
    params = load_params()
    classes = params["labels"]["classes"]
    spec = params["train_tfidf"]
    labels = apply_texts(read_labels(paths.labels, classes), args.texts)
    folds = tfidf_folds(labels, TfidfParams.from_params(spec), len(classes), progress=True)  # per inner-CV fit
    config = {"features": "kiwi morphemes + char_wb n-grams, TF-IDF", "classifier": "multinomial logistic regression"}
    metrics, runtime = run_training_stage("tfidf", labels, classes, params["train"], spec, None, config, paths,
                                          recorded=used_params("tfidf", params), train_fold=folds,
                                          evaluation=evaluation_params(params))
    print(headline("tfidf", metrics, runtime))


if __name__ == "__main__":
    run_stage("train_tfidf", main)
