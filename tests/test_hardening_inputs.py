"""Bad inputs through the real entry points: each stage exactly as dvc.yaml runs it, and `python -m koemo predict`.

Each case asserts the exit status, the message (the file, line or row, and the fix) with no traceback, and that
nothing was written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from aihub_files import hex_id, make_row, write_release, write_wav
from pipeline_repo import stage_argv
from test_labels import _synthetic_manifest

REPO = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
ANGRY5 = [("Angry", 2)] * 5
CLASSES = ["angry", "happiness", "neutral", "sadness"]


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def run_stage(cwd: Path, stage: str, params: dict, item: str | None = None, env: dict | None = None):
    """Run `stage` in `cwd` with `params` as its params.yaml; returns (process, files it created)."""
    params_path = cwd / "params.yaml"
    params_path.write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")
    before = _files(cwd)
    done = subprocess.run(stage_argv(stage, item, params_path), cwd=cwd, capture_output=True, text=True, env=env)
    return done, _files(cwd) - before


def assert_user_error(done: subprocess.CompletedProcess, created: set[str], code: int, *fragments: str) -> None:
    """(A message that starts with a params key such as `labels.classes` gets no `labels: ` prefix from run_stage.)"""
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, (fragment, done.stderr)
    assert not created, f"left behind: {sorted(created)}"


# ---- corpus ------------------------------------------------------------------------------------------------------

AIHUB = {"data": {"source": "aihub", "dir": "raw"}}


def _release(tmp_path: Path, rows: list[list[str]], name: str = "5차년도.csv") -> Path:
    for row in rows:
        write_wav(tmp_path / "raw" / "wav" / f"{row[0]}.wav", seconds=0.1)
    return write_release(tmp_path / "raw" / name, rows)


def test_corpus_refuses_an_empty_csv(tmp_path):
    _release(tmp_path, [make_row(hex_id(1), "좋아요", ANGRY5)])
    (tmp_path / "raw" / "4차년도.csv").write_bytes(b"")
    done, created = run_stage(tmp_path, "corpus", AIHUB)
    assert_user_error(done, created, 1, "corpus: raw/4차년도.csv is empty (0 bytes)", "re-export")


def test_corpus_names_the_line_with_a_field_too_many(tmp_path):
    rows = [make_row(hex_id(i), f"문장 {i}", ANGRY5) for i in range(1, 45)]
    rows[40][1] = "아니, 정말요"  # line 42: a comma inside the unquoted text
    _release(tmp_path, rows)
    done, created = run_stage(tmp_path, "corpus", AIHUB)
    assert_user_error(done, created, 1, "corpus: raw/5차년도.csv, line 42 has 16 fields, but the header has 15",
                      "Quote that field", "remove the extra comma")


def test_corpus_refuses_a_header_only_release_before_labels_can_mislead(tmp_path):
    write_release(tmp_path / "raw" / "5차년도.csv", [])
    done, created = run_stage(tmp_path, "corpus", AIHUB)
    assert_user_error(done, created, 1, "corpus: no usable rows below raw: the CSVs read, raw/5차년도.csv (0 rows), have a "
                      "header but no data rows")


def test_corpus_with_every_row_dropped_lists_the_reasons(tmp_path):
    write_release(tmp_path / "raw" / "5차년도.csv", [make_row(hex_id(1), "wav 없음", ANGRY5),
                                                   make_row(hex_id(2), "세기 3", [("Angry", 3)] + ANGRY5[1:])])
    done, created = run_stage(tmp_path, "corpus", AIHUB)
    assert_user_error(done, created, 1, "corpus: no usable rows below raw: all 2 row(s) of raw/5차년도.csv (2 rows) were "
                      "dropped (", "missing_wav 1", "bad_intensity 1", "raw/5차년도.csv line 2: missing_wav",
                      "put <wav_id>.wav below raw")


def test_corpus_counts_a_short_row_as_too_few_fields(tmp_path):
    rows = [make_row(hex_id(1), "좋아요", ANGRY5), make_row(hex_id(2), "잘린 줄", ANGRY5)[:12]]
    _release(tmp_path, rows)
    done, created = run_stage(tmp_path, "corpus", AIHUB)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "reports/corpus.json").read_text(encoding="utf-8"))
    assert metrics["rows_read"] == 2 and metrics["rows_kept"] == 1
    assert metrics["dropped_by_reason"]["too_few_fields"] == 1 and metrics["dropped_by_reason"]["bad_intensity"] == 0
    dropped = pd.read_csv(tmp_path / "data/corpus_dropped.csv")
    assert dropped[["source_row", "reason", "detail"]].values.tolist() == [[3, "too_few_fields", "12 fields, the header has 15"]]


# ---- labels ------------------------------------------------------------------------------------------------------

def _labels_params(**changes) -> dict:
    labels = {"strategy": "weighted", "classes": CLASSES, **changes.pop("labels", {})}
    return {"labels": labels, "split": {"test_size": 0.2, "folds": 4, "seed": 13, "group_by": "sentence",
                                        **changes.pop("split", {})}}


@pytest.mark.parametrize("changes, message", [  # the first five: the params schema, before the stage reads anything
    ({"labels": {"classes": ["angry", "joy"]}}, "labels: params.yaml: labels.classes[1] = 'joy': Input should be 'angry', 'disgust', 'fear'"),
    ({"labels": {"classes": ["angry", "disgust"]}},
     "labels: no rows labelled ['disgust'] under labels.strategy=weighted (of 400 rows: {'angry': "),
    ({"labels": {"strategy": "vote"}}, "labels.strategy = 'vote': Input should be 'weighted', 'majority' or 'situation'"),
    ({"split": {"group_by": "room"}}, "labels: params.yaml: split.group_by = 'room': Input should be 'sentence', 'speaker', 'sentence+speaker' or 'session'"),
    ({"split": {"test_size": 1.5}}, "labels: params.yaml: split.test_size = 1.5: Input should be less than 1"),
    ({"split": {"folds": 1}}, "labels: params.yaml: split.folds = 1: Input should be greater than or equal to 2"),
    ({"split": {"group_by": "sentence+speaker"}}, "labels: split.group_by=sentence+speaker joins"),
    ({"split": {"folds": 200}}, "labels: only "),
])
def test_labels_params_that_cannot_work_are_user_errors(tmp_path, changes, message):
    (tmp_path / "data").mkdir()
    _synthetic_manifest().to_parquet(tmp_path / "data/manifest.parquet")
    done, created = run_stage(tmp_path, "labels", _labels_params(**changes))
    assert_user_error(done, created, 1, message)


# ---- stack -------------------------------------------------------------------------------------------------------

def _stack_inputs(root: Path, oof: bool = True) -> None:
    rng = np.random.default_rng(0)
    rows = 200
    y = rng.integers(0, 4, rows)
    split = np.where(rng.random(rows) < 0.25, "test", "train")
    labels = pd.DataFrame({"wav_id": [hex_id(i) for i in range(rows)], "label_id": y, "split": split,
                           "fold": np.where(split == "train", rng.integers(0, 4, rows), -1)})
    (root / "data/predictions").mkdir(parents=True)
    labels.to_parquet(root / "data/labels.parquet")
    probs = rng.dirichlet(np.ones(4), rows)
    if not oof:
        probs[split == "train"] = np.nan
    predictions = pd.DataFrame(probs, columns=[f"prob_{c}" for c in CLASSES])
    predictions.insert(0, "wav_id", labels["wav_id"])
    predictions.insert(1, "split", split)
    predictions.to_parquet(root / "data/predictions/text.parquet")


@pytest.mark.parametrize("changes, oof, message", [
    ({"learner": "boosting"}, True, "stack: params.yaml: stack.learner = 'boosting': Input should be 'logistic' or 'mean'"),
    ({"features": "logits"}, True, "stack: params.yaml: stack.features = 'logits': Input should be 'log_proba' or 'proba'"),
    ({}, False, "stack: only 0 training rows have out-of-fold predictions from every base model (text)"),
])
def test_stack_params_that_cannot_work_are_user_errors(tmp_path, changes, oof, message):
    _stack_inputs(tmp_path, oof)
    params = {"labels": {"classes": CLASSES}, "stack": {**PARAMS["stack"], "base_models": ["text"], **changes}}
    done, created = run_stage(tmp_path, "stack", params)
    assert_user_error(done, created, 1, message)


# ---- koemo predict -----------------------------------------------------------------------------------------------

def predict(root: Path, *args: str):
    """`python -m koemo predict --root root …` in root (no models built: validation must come first)."""
    before = _files(root)
    done = subprocess.run([sys.executable, "-m", "koemo", "predict", "--root", str(root), *args], cwd=root,
                          capture_output=True, text=True)
    return done, _files(root) - before


@pytest.fixture
def project(tmp_path) -> Path:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def _csv(root: Path, name: str, text: str, encoding: str = "utf-8") -> str:
    (root / name).write_bytes(text.encode(encoding))
    return name


@pytest.mark.parametrize("args, message", [
    ((), "koemo predict: give --wav and/or --text (one utterance) or --csv FILE (a batch)"),
    (("--text", ""), "koemo predict: --text is empty and no --wav is given: nothing to predict from"),
    (("--text", "   "), "koemo predict: --text is empty and no --wav is given"),
    (("--wav", "clips"), "koemo predict: --wav clips is a directory, not a wav file; give one wav file"),
    (("--csv", "batch.csv", "--wav", "a.wav"), "koemo predict: use either --csv or --wav/--text, not both"),
    (("--csv", "clips"), "koemo predict: clips: is a directory, not a CSV file"),
])
def test_predict_refuses_unusable_arguments_before_loading_anything(project, args, message):
    (project / "clips").mkdir()
    done, created = predict(project, *args, "--out", "out.csv") if "--csv" in args else predict(project, *args)
    assert_user_error(done, created, 2, message)


@pytest.mark.parametrize("name, content, encoding, message", [
    ("empty.csv", "", "utf-8", "empty.csv is empty (0 bytes)"),
    ("header.csv", "wav,text\n", "utf-8", "header.csv has a header but no rows: nothing to predict"),
    ("blank.csv", "wav,text\na.wav,화나요\n,\n", "cp949",
     "blank.csv: 1 row(s) cannot be used:\n  row 1 (line 3): neither a wav nor a text"),
    ("dir.csv", "wav,text\nclips,화나요\n", "utf-8-sig", "row 0 (line 2): "),
    ("long.csv", "wav,text\na.wav,아니, 정말요\n", "cp949", "long.csv, line 2 has 3 fields, but the header has 2"),
    ("columns.csv", "path,sentence\na.wav,화나요\n", "utf-8",
     "columns.csv: needs a `wav` (or `wav_path`) and/or a `text` column"),
])
def test_predict_refuses_a_csv_it_cannot_use_and_names_the_row(project, name, content, encoding, message):
    (project / "clips").mkdir()
    _csv(project, name, content, encoding)
    done, created = predict(project, "--csv", name, "--out", "out.csv")
    assert_user_error(done, created, 2, f"koemo predict: {message}" if message.startswith(name) else message)
    if name == "dir.csv":
        assert "clips is a directory, not a wav file" in done.stderr


def test_predict_reads_a_cp949_csv_and_accepts_an_empty_text_beside_a_wav(project):
    from koemo.cli import _read_batch

    write_wav(project / "clips" / "a.wav", seconds=0.1)
    _csv(project, "batch.csv", "wav,text\nclips/a.wav,정말 화가 나요\nclips/a.wav,\n,그냥 그래요\n", "cp949")
    utterances = _read_batch(project / "batch.csv")
    assert [(Path(u.wav).name if u.wav else None, u.text) for u in utterances] == [
        ("a.wav", "정말 화가 나요"), ("a.wav", None), (None, "그냥 그래요")]
    # past validation, the next thing missing is the models (not a decoding error)
    done, created = predict(project, "--csv", "batch.csv", "--out", "out.csv")
    assert_user_error(done, created, 2, "data/models/stack/meta.json is missing")
    done, created = predict(project, "--wav", "clips/a.wav", "--text", "")
    assert_user_error(done, created, 2, "data/models/stack/meta.json is missing")


def test_predict_reads_a_short_row_as_absent_cells(project):
    """Short rows (no trailing text cell) read as an absent text, as pandas read them."""
    from koemo.cli import _read_batch

    _csv(project, "short.csv", "text,wav\n화나요\n")
    assert [(u.wav, u.text) for u in _read_batch(project / "short.csv")] == [(None, "화나요")]
