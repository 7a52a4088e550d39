"""A strong Korean text model that needs no pretrained weights: TF-IDF over Kiwi morphemes and character n-grams,
then a multinomial logistic regression, trained with the K-fold out-of-fold protocol of `koemo.train.cv`.

Features are two blocks side by side, each L2-normalised on its own so neither block's column count drowns the other:
  * morphemes: Kiwi (`kiwipiepy`, a real Korean morphological analyser) splits each sentence into `form/tag`
    tokens (`화/NNG 가/JKS 나/VV …`); n-grams of those (`word_ngrams`) capture endings and particles that carry
    emotion in Korean (`-네요`, `-잖아`) which whitespace words glue onto their stems;
  * characters: sklearn's `char_wb` n-grams inside word boundaries (`char_ngrams`), robust to spelling variants
    and to Kiwi's mistakes.
TF-IDF uses sklearn's formula (smooth idf = ln((1 + n) / (1 + df)) + 1, optional sublinear tf = 1 + ln(tf)), but
the transform is computed here from the vocabulary and idf alone: the fitted and the loaded model run the same
code on the same numbers, so a loaded model's probabilities equal the fitted one's bit for bit, and the saved form
is JSON + safetensors (no pickle, no sklearn state).

Each fold model is fitted on its fold's training rows (`plan.fit ∪ plan.valid`: a linear model needs no early
stopping slice) and never sees its held-out fold or a test row. Its C is chosen by an inner StratifiedGroupKFold
over those training rows only, grouped by `group` (a sentence never sits on both sides); the vocabulary and idf
are refitted on each inner training part, so min_df and idf never see the inner validation rows. Ties go to the
smaller C (stronger regularisation).

Kiwi is built once per process (about 2-3 s) and every distinct sentence is tokenised once per process (the
corpus repeats its scripts heavily), in Kiwi's own threads. Kiwi's output for a sentence does not depend on the
batch or the thread it ran in, so features repeat across runs.
"""

from __future__ import annotations

import functools
import json
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import normalize

from koemo.core.metrics import classification_report
from koemo.core.progress import Progress
from koemo.train.cv import CVResult, FoldOutcome, FoldPlan, FoldRecord, FoldTrainer, cross_validate, save_arrays
from koemo.asr.text_source import TEXTS_ARG, apply_texts
from koemo.train.stage import Built
from koemo.train.trainer import FitResult

NAME = "tfidf"
ARGS = (TEXTS_ARG,)
DISTRIBUTED = False    # scikit-learn in one process: runtime.processes does not apply
NEEDS = ("text",)


def used_keys(params: Mapping[str, Any]) -> list[str]:
    """Dotted params keys the model reads."""
    return ["labels.classes", "train", "train_tfidf", "text.source"]


def inputs(args, params: Mapping[str, Any], labels: pd.DataFrame, classes: list[str]) -> Built:
    """Fold models fitted by scikit-learn (no Trainer): C chosen by an inner grouped CV per fold."""
    labels = apply_texts(labels, args.texts)
    folds = tfidf_folds(labels, TfidfParams.from_params(params["train_tfidf"]), len(classes), progress=True)
    config = {"features": "kiwi morphemes + char_wb n-grams, TF-IDF", "classifier": "multinomial logistic regression"}
    return Built(None, config, train_fold=folds, labels=labels)

SELECT_BY = ("ua", "macro_f1", "accuracy")
KIWI_MODEL = "cong"          # Kiwi's language model, fixed: its "fastest available" default could change under us
ABSENT_INTERCEPT = -1e9      # logit of a class missing from a fold's training rows: never predicted (as in koemo.train.stack)


@dataclass(frozen=True)
class TfidfParams:
    """The `train_tfidf` section of params.yaml."""

    char_ngrams: tuple[int, int] = field(default=(2, 4), metadata={
        "help": "Character n-gram lengths [min, max] (sklearn `char_wb`: inside word boundaries, space-padded)."})
    word_ngrams: tuple[int, int] = field(default=(1, 2), metadata={
        "help": "Morpheme n-gram lengths [min, max] over Kiwi `form/tag` tokens."})
    min_df: int = field(default=2, metadata={
        "help": "Drop terms found in fewer training rows than this (per block)."})
    sublinear_tf: bool = field(default=True, metadata={"help": "Term frequency 1 + ln(tf) instead of tf."})
    max_features: int | None = field(default=200_000, metadata={
        "help": "Keep this many most frequent terms per block (null: all)."})
    C_grid: tuple[float, ...] = field(default=(0.1, 1.0, 10.0), metadata={
        "help": "Inverse L2 strengths tried by the inner CV; one value skips the inner CV."})
    class_weighted: bool = field(default=True, metadata={
        "help": "Weight classes by inverse training frequency (sklearn class_weight='balanced')."})
    select_by: str = field(default="ua", metadata={
        "help": "Inner-CV criterion: ua (mean per-class recall) | macro_f1 | accuracy."})
    inner_folds: int = field(default=3, metadata={
        "help": "Grouped, stratified inner folds over each fold's training rows that choose C."})
    seed: int = field(default=0, metadata={"help": "Inner-fold shuffling seed (fold k uses seed + k)."})
    max_iter: int = field(default=1000, metadata={"help": "lbfgs iterations per logistic-regression fit."})

    def __post_init__(self) -> None:
        if self.select_by not in SELECT_BY:
            raise ValueError(f"train_tfidf.select_by={self.select_by!r}: expected one of {SELECT_BY}")
        for name in ("char_ngrams", "word_ngrams"):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi:
                raise ValueError(f"train_tfidf.{name}={[lo, hi]}: expected [min, max] with 1 <= min <= max")
        if not self.C_grid or min(self.C_grid) <= 0:
            raise ValueError(f"train_tfidf.C_grid={list(self.C_grid)}: expected positive values")
        if self.inner_folds < 2 and len(self.C_grid) > 1:
            raise ValueError(f"train_tfidf.inner_folds={self.inner_folds}: at least 2 are needed to choose C")

    @classmethod
    def from_params(cls, section: Mapping[str, Any]) -> "TfidfParams":
        """From a params section; unknown keys are an error (a typo would otherwise be silently ignored)."""
        unknown = set(section) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"train_tfidf: unknown key(s) {sorted(unknown)}; known: {[f.name for f in fields(cls)]}")
        p = dict(section)
        for key in ("char_ngrams", "word_ngrams"):
            if key in p:
                p[key] = tuple(int(v) for v in p[key])
        if "C_grid" in p:  # YAML reads `1e-1` (no dot) as a string
            p["C_grid"] = tuple(float(v) for v in p["C_grid"])
        for key in ("min_df", "inner_folds", "seed", "max_iter"):
            if key in p:
                p[key] = int(p[key])
        if p.get("max_features") is not None:
            p["max_features"] = int(p["max_features"])
        return cls(**p)


# ---- Kiwi morphemes, one analyser and one tokenisation per distinct sentence per process ----------------------
_MORPHEMES: dict[str, tuple[str, ...]] = {}


@functools.cache
def kiwi():
    """The process's Kiwi (slow to build; its model loads on first use), using every core for batches."""
    from kiwipiepy import Kiwi

    return Kiwi(num_workers=-1, model_type=KIWI_MODEL)


def prime(texts: Iterable[str]) -> None:
    """Tokenise every distinct text not seen yet in this process, as one batch in Kiwi's threads."""
    todo = [t for t in dict.fromkeys(texts) if t not in _MORPHEMES]
    if todo:
        for text, tokens in zip(todo, kiwi().tokenize(todo)):
            _MORPHEMES[text] = tuple(f"{t.form}/{t.tag}" for t in tokens)


def morphemes(text: str) -> tuple[str, ...]:
    """`form/tag` tokens of one text (memoised)."""
    if text not in _MORPHEMES:
        prime([text])
    return _MORPHEMES[text]


def kiwi_version() -> str:
    from importlib.metadata import version

    return version("kiwipiepy")


# ---- features --------------------------------------------------------------------------------------------------
def _counter_args(params: TfidfParams) -> dict[str, dict[str, Any]]:
    """CountVectorizer settings of the two blocks (what turns a text into n-gram strings; no fitted state)."""
    return {"morphemes": dict(tokenizer=morphemes, token_pattern=None, lowercase=False, ngram_range=params.word_ngrams),
            "chars": dict(analyzer="char_wb", lowercase=True, ngram_range=params.char_ngrams)}


class TfidfFeatures:
    """[morpheme TF-IDF ‖ character TF-IDF] rows from a fixed vocabulary (term → column per block) and idf."""

    def __init__(self, params: TfidfParams, vocabulary: Mapping[str, Mapping[str, int]], idf: np.ndarray):
        self.params, self.vocabulary = params, {k: dict(v) for k, v in vocabulary.items()}
        self.idf = np.asarray(idf, dtype=np.float64)
        self.counters = {k: CountVectorizer(**args, vocabulary=self.vocabulary[k]) for k, args in _counter_args(params).items()}
        if len(self.idf) != self.width:
            raise ValueError(f"idf has {len(self.idf)} values for {self.width} vocabulary terms")

    @property
    def width(self) -> int:
        return sum(len(v) for v in self.vocabulary.values())

    @classmethod
    def fit(cls, texts: Sequence[str], params: TfidfParams) -> "TfidfFeatures":
        """Vocabulary (min_df, max_features per block) and smooth idf of `texts`."""
        prime(texts)
        vocabulary, df = {}, []
        for name, args in _counter_args(params).items():
            counter = CountVectorizer(**args, min_df=params.min_df, max_features=params.max_features)
            counts = sp.csr_array(counter.fit_transform(texts))
            vocabulary[name] = {term: int(col) for term, col in counter.vocabulary_.items()}
            df.append(np.bincount(counts.indices, minlength=counts.shape[1]))  # one stored entry per (row, term)
        idf = np.log((1.0 + len(texts)) / (1.0 + np.concatenate(df))) + 1.0
        return cls(params, vocabulary, idf)

    def transform(self, texts: Sequence[str]) -> sp.csr_array:
        prime(texts)
        blocks, offset = [], 0
        for name, counter in self.counters.items():
            x = sp.csr_array(counter.transform(texts), dtype=np.float64)
            if self.params.sublinear_tf:
                x.data = np.log(x.data) + 1.0
            x.data *= self.idf[offset + x.indices]
            blocks.append(normalize(x, norm="l2", copy=False))
            offset += len(self.vocabulary[name])
        return sp.csr_array(sp.hstack(blocks, format="csr"))


# ---- the model -------------------------------------------------------------------------------------------------
def _logistic(params: TfidfParams, C: float) -> LogisticRegression:
    """Multinomial (lbfgs) logistic regression: deterministic for the same rows in the same order."""
    return LogisticRegression(C=C, max_iter=params.max_iter, class_weight="balanced" if params.class_weighted else None,
                              random_state=params.seed)


@dataclass
class TfidfModel:
    params: TfidfParams
    classes: list[str]
    features: TfidfFeatures
    coef: np.ndarray        # [classes, features] float64
    intercept: np.ndarray   # [classes] float64
    info: dict = field(default_factory=dict)  # chosen C, inner-CV scores, row counts (saved in model.json)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """[rows, classes] float64 softmax probabilities."""
        logits = np.asarray(self.features.transform(list(texts)) @ self.coef.T) + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def save(self, directory: str | Path) -> list[str]:
        """`model.json` (params, classes, C, inner CV, Kiwi version), `vocabulary.json` (term → column per block),
        `weights.safetensors` (idf, coef, intercept: float64, exact), each written atomically; returns their names."""
        from koemo.core.io import write_json

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_json(directory / "model.json", {"model": "tfidf", "params": asdict(self.params), "classes": self.classes,
                                              "kiwi": {"version": kiwi_version(), "model_type": KIWI_MODEL},
                                              "features": {k: len(v) for k, v in self.features.vocabulary.items()},
                                              **self.info})
        write_json(directory / "vocabulary.json", self.features.vocabulary)
        save_arrays(directory / "weights.safetensors", {"idf": self.features.idf, "coef": self.coef, "intercept": self.intercept})
        return ["model.json", "vocabulary.json", "weights.safetensors"]

    @classmethod
    def load(cls, directory: str | Path) -> "TfidfModel":
        from safetensors.numpy import load_file

        directory = Path(directory)
        meta = json.loads((directory / "model.json").read_text(encoding="utf-8"))
        saved = meta.get("kiwi", {})
        if saved.get("version") != kiwi_version() or saved.get("model_type") != KIWI_MODEL:
            warnings.warn(f"{directory}: saved with Kiwi {saved}, running {kiwi_version()} ({KIWI_MODEL}); "
                          f"morphemes and so probabilities may differ", stacklevel=2)
        params = TfidfParams.from_params(meta["params"])
        arrays = load_file(str(directory / "weights.safetensors"))
        vocabulary = json.loads((directory / "vocabulary.json").read_text(encoding="utf-8"))
        info = {k: v for k, v in meta.items() if k not in ("model", "params", "classes", "kiwi", "features")}
        return cls(params, list(meta["classes"]), TfidfFeatures(params, vocabulary, arrays["idf"]), arrays["coef"],
                   arrays["intercept"], info)


def full_coefficients(clf: LogisticRegression, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """[n_classes, features] coef and intercept: a binary fit's one row w becomes [-w/2, w/2] (softmax of that is
    sklearn's sigmoid), a class the fit never saw gets ABSENT_INTERCEPT."""
    w, b = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:
        w, b = np.vstack([-w / 2, w / 2]), np.array([-b[0] / 2, b[0] / 2])
    coef = np.zeros((n_classes, w.shape[1]))
    intercept = np.full(n_classes, ABSENT_INTERCEPT)
    coef[clf.classes_], intercept[clf.classes_] = w, b
    return coef, intercept


def inner_predictions(train_texts: np.ndarray, y_train: np.ndarray, valid_texts: np.ndarray, params: TfidfParams,
                      grid: Sequence[float]) -> dict[float, np.ndarray]:
    """Predicted labels of the inner validation rows per C, features fitted on the inner training rows only."""
    features = TfidfFeatures.fit(train_texts, params)
    x_train, x_valid = features.transform(train_texts), features.transform(valid_texts)
    return {C: _logistic(params, C).fit(x_train, y_train).predict(x_valid) for C in grid}


def choose_C(texts: np.ndarray, y: np.ndarray, groups: np.ndarray, params: TfidfParams, n_classes: int,
             seed: int, bar=None) -> tuple[float, dict[str, float]]:
    """The C of `params.C_grid` with the best `select_by` over inner out-of-fold predictions of these rows
    (grouped, stratified folds); ties → smaller C. Returns (C, {str(C): score})."""
    grid = sorted(set(params.C_grid))
    if len(grid) == 1:
        return grid[0], {}
    splitter = StratifiedGroupKFold(n_splits=params.inner_folds, shuffle=True, random_state=seed)
    predicted = {C: np.full(len(y), -1, dtype=np.int64) for C in grid}
    for inner_fit, inner_valid in splitter.split(np.zeros(len(y)), y, groups):
        for C, labels in inner_predictions(texts[inner_fit], y[inner_fit], texts[inner_valid], params, grid).items():
            predicted[C][inner_valid] = labels
        if bar is not None:  # a fold's inner CV is most of its minutes: the bar moves per inner fold's fits
            bar.update(len(grid))
    names = [str(k) for k in range(n_classes)]
    scores = {C: classification_report(y, predicted[C], names)[params.select_by] for C in grid}
    best = max(grid, key=lambda C: (scores[C], -C))
    return best, {str(C): s for C, s in scores.items()}


def fit_tfidf(texts: np.ndarray, y: np.ndarray, params: TfidfParams, C: float, classes: Sequence[str]) -> TfidfModel:
    """Features and a logistic regression with this C on all of these rows."""
    features = TfidfFeatures.fit(texts, params)
    clf = _logistic(params, C).fit(features.transform(texts), y)
    coef, intercept = full_coefficients(clf, len(classes))
    return TfidfModel(params, list(classes), features, coef, intercept,
                      {"C": float(C), "n_iter": int(np.max(clf.n_iter_)), "train_rows": int(len(texts))})


def class_names(labels: pd.DataFrame, n_classes: int) -> list[str]:
    """Class name per label_id, from the labels' own `label` column (str(id) for an id no row has)."""
    known = dict(zip(labels["label_id"].astype(int), labels["label"].astype(str)))
    return [known.get(k, str(k)) for k in range(n_classes)]


def tfidf_folds(labels: pd.DataFrame, params: Mapping[str, Any] | TfidfParams, n_classes: int,
                progress: bool = False) -> FoldTrainer:
    """Fold models for `koemo.train.cv.cross_validate`: each fitted on plan.fit ∪ plan.valid with C from an inner
    grouped CV over those rows, predicting its held-out fold and the test rows."""
    p = params if isinstance(params, TfidfParams) else TfidfParams.from_params(params)
    texts = labels["text"].astype(str).to_numpy(dtype=object)
    y = labels["label_id"].to_numpy(dtype=np.int64)
    groups = labels["group"].astype(str).to_numpy()
    wav_ids = labels["wav_id"].astype(str).to_numpy()
    classes = class_names(labels, n_classes)
    prime(texts)

    def train(plan: FoldPlan, fold_dir: Path | None) -> FoldOutcome:
        rows = np.union1d(plan.fit, plan.valid)
        if np.intersect1d(rows, np.union1d(plan.holdout, plan.test)).size:
            raise AssertionError(f"fold {plan.fold}: training rows overlap its held-out or test rows")
        start = time.perf_counter()
        fits = (p.inner_folds * len(set(p.C_grid)) if len(set(p.C_grid)) > 1 else 0) + 1
        with Progress(fits, f"train_tfidf fold {plan.fold}: inner CV + final fit", unit="fit",
                      disable=not progress) as bar:
            C, scores = choose_C(texts[rows], y[rows], groups[rows], p, n_classes, seed=p.seed + plan.fold, bar=bar)
            model = fit_tfidf(texts[rows], y[rows], p, C, classes)
            bar.update(1)
        model.info.update({"fold": plan.fold, "select_by": p.select_by, "inner_cv": scores})
        seconds = time.perf_counter() - start
        held = model.predict_proba(texts[plan.holdout])
        history = [{"C": float(c), f"inner_{p.select_by}": s} for c, s in scores.items()]
        fit = FitResult(epochs_run=1, best_epoch=1, best_valid_macro_f1=None, history=history,
                        train_samples=len(rows), train_seconds=seconds)
        report = classification_report(y[plan.holdout], held.argmax(axis=1), [str(k) for k in range(n_classes)])
        record = FoldRecord(plan.fold, fit, set(wav_ids[rows]), set(), set(wav_ids[plan.holdout]), report)
        return FoldOutcome(record, held, model.predict_proba(texts[plan.test]), model.save)

    return train


def run_tfidf_cv(labels: pd.DataFrame, plans: list[FoldPlan], params: Mapping[str, Any] | TfidfParams, n_classes: int,
                 out_dir: Path | None = None, progress: bool = True) -> CVResult:
    """`cross_validate` with `tfidf_folds`; each fold saved to `out_dir/fold<k>/`."""
    return cross_validate(labels, plans, tfidf_folds(labels, params, n_classes, progress), n_classes, out_dir,
                          progress=progress)
