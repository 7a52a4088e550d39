"""One params schema, validated by `load_params` before any stage work: types, ranges, allowed names, each bad key
named with its value and the valid choices; `koemo check` runs the same validation, with `-S` overrides."""

import copy
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from koemo.cli import main
from koemo.core.params import InvalidParams, load_params, validate_params
from pipeline_repo import stage_argv

REPO = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def changed(**edits):
    """PARAMS with `section__key=value` edits (section__key__sub for nested keys)."""
    params = copy.deepcopy(PARAMS)
    for dotted, value in edits.items():
        *parents, leaf = dotted.split("__")
        node = params
        for part in parents:
            node = node[part]
        node[leaf] = value
    return params


def test_the_repository_params_are_valid_and_returned_as_written():
    assert load_params(REPO / "params.yaml") == PARAMS


@pytest.mark.parametrize("edits, expected", [
    ({"train__folds": "two"}, "train.folds = 'two': Input should be a valid integer"),
    ({"train__folds": 9}, "train.folds = 9: must be 1..split.folds (4)"),
    ({"text__model": "nosuchmodel"}, "text.model = 'nosuchmodel': must be one of encoders ['klue-roberta', 'kobert', "
                                     "'koelectra', 'tiny-bert', 'tiny-electra', 'tiny-roberta']"),
    ({"ssl__model": "wav2vec2-xx"}, "ssl.model = 'wav2vec2-xx': must be one of audio_encoders"),
    ({"text__encoders": ["tiny-bert", "kobertt"]}, "text.encoders: 'kobertt' is not in encoders"),
    ({"labels__strategy": "majoritty"}, "labels.strategy = 'majoritty': Input should be 'weighted', 'majority' or 'situation'"),
    ({"labels__classes": ["angry", "joy"]}, "labels.classes[1] = 'joy': Input should be 'angry', 'disgust'"),
    ({"split__test_size": 1.5}, "split.test_size = 1.5: Input should be less than 1"),
    ({"runtime__threads": "many"}, "runtime.threads = 'many': Input should be 'auto' or a valid integer"),
    ({"runtime__jobs": 0}, "runtime.jobs = 0: Input should be greater than or equal to 1"),
    ({"train__foldz": 2}, "train.foldz: unknown key (known: ['class_weighted', 'device', 'folds'"),
    ({"audio__mel__dtype": "int8"}, "audio.mel.dtype = 'int8': Input should be 'float16' or 'float32'"),
    ({"train_tfidf__C_grid": [0.1, -1]}, "train_tfidf.C_grid[1] = -1: Input should be greater than 0"),
    ({"stack__base_models": ["text", "bert"]}, "stack.base_models[1] = 'bert': Input should be 'text', 'audio'"),
    ({"train_wav2vec2__mode": "fine-tune"}, "train_wav2vec2.mode = 'fine-tune': Input should be 'frozen' or 'finetune'"),
    ({"encoders__kobert__pooling": "max"}, "encoders.kobert.pooling = 'max': Input should be 'cls' or 'mean'"),
])
def test_each_bad_value_is_named_with_what_would_be_valid(edits, expected):
    with pytest.raises(InvalidParams) as caught:
        validate_params(changed(**edits))
    assert str(caught.value).startswith(f"params.yaml: {expected}"), str(caught.value)


def test_every_bad_key_is_listed_at_once():
    with pytest.raises(InvalidParams) as caught:
        validate_params(changed(train__folds="two", text__model="x", audio__workers=-1))
    lines = str(caught.value).splitlines()
    assert lines[0] == "params.yaml: 3 invalid values" and len(lines) == 5


def test_sections_and_keys_may_be_absent_but_not_wrong():
    validate_params({"data": {"source": "aihub", "dir": "x"}})   # a stage test's partial params.yaml
    validate_params({"audio": {"sample_rate": 16000, "min_rms_dbfs": None}})
    with pytest.raises(InvalidParams, match="data.source = 'aihubb'"):
        validate_params({"data": {"source": "aihubb"}})
    with pytest.raises(InvalidParams, match="expected a mapping of sections"):
        validate_params(["not", "a", "mapping"])


def test_the_schema_choices_are_the_modules_own():
    """core/params.py spells the choices out (it imports no koemo module); they must stay what the code accepts."""
    from typing import get_args, get_type_hints

    from koemo.core import params as schema
    from koemo.corpus.emotions import EMOTIONS
    from koemo.features.mel.augment import METHODS
    from koemo.features.mel.spectral import KINDS
    from koemo.labels.aggregate import STRATEGIES
    from koemo.labels.split import GROUP_BY
    from koemo.models.wav2vec2 import MODES
    from koemo.models.tfidf import SELECT_BY
    from koemo.text.registry import POOLINGS, TOKENIZER_KINDS
    from koemo.models.registry import BASE_MODELS
    from koemo.train.stack import LEARNERS
    from koemo.train.trainer import DEVICES, PRECISIONS, SCHEDULES

    def choices(cls, key):
        hint = get_type_hints(cls, include_extras=True)[key]
        while get_args(hint) and not all(isinstance(a, str) for a in get_args(hint)):
            hint = next(a for a in get_args(hint) if a is not type(None))  # Annotated / list / Optional → inner
        return get_args(hint)

    assert choices(schema.Labels, "classes") == EMOTIONS and choices(schema.Labels, "strategy") == STRATEGIES
    assert choices(schema.Augment, "methods") == METHODS and choices(schema.Audio, "extra_features") == KINDS
    assert choices(schema.Stack, "base_models") == BASE_MODELS and choices(schema.Stack, "learner") == LEARNERS
    assert choices(schema.Split, "group_by") == GROUP_BY and choices(schema.TrainWav2vec2, "mode") == MODES
    assert choices(schema.TextEncoder, "pooling") == POOLINGS and choices(schema.TextEncoder, "tokenizer") == TOKENIZER_KINDS
    assert choices(schema.TrainTfidf, "select_by") == SELECT_BY == choices(schema.Stack, "select_by")
    assert choices(schema.Train, "device") == DEVICES and choices(schema.Train, "precision") == PRECISIONS
    assert choices(schema.TrainText, "schedule") == SCHEDULES
    from koemo.corpus.aihub import SOURCES

    assert choices(schema.Data, "source") == SOURCES


@pytest.mark.parametrize("stage, edits, expected", [
    ("train_tfidf", {"train__folds": "two"}, "train_tfidf: params.yaml: train.folds = 'two'"),
    ("train_text", {"text__model": "nosuchmodel"}, "train_text: params.yaml: text.model = 'nosuchmodel': must be one of encoders"),
])
def test_a_stage_stops_before_any_work_with_one_message(tmp_path, stage, edits, expected):
    """Measured on main: `train.folds: two` ended train_tfidf after 133 s with a ValueError traceback."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(changed(**edits), allow_unicode=True), encoding="utf-8")
    start = time.perf_counter()
    done = subprocess.run(stage_argv(stage), cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.startswith(expected), done.stderr
    assert "Traceback" not in done.stderr and time.perf_counter() - start < 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # nothing written


def test_koemo_check_validates_with_dvc_style_overrides(capsys, monkeypatch):
    """`dvc exp run -S text.model=nosuchmodel` fails inside DVC (dvc.yaml interpolates encoders.${text.model})
    before any stage runs; `koemo check -S …` gives the schema's message for the same override."""
    monkeypatch.chdir(REPO)
    assert main(["check"]) == 0 and "params.yaml is valid" in capsys.readouterr().out
    assert main(["check", "-S", "text.model=nosuchmodel"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("koemo check: params.yaml with -S text.model=nosuchmodel: text.model = 'nosuchmodel': "
                          "must be one of encoders ['klue-roberta'")
    assert main(["check", "-S", "train.folds=3"]) == 0
    assert main(["check", "-S", "train.folds"]) == 2 and "expected KEY=VALUE" in capsys.readouterr().err
