"""Speech recognition: CER/WER scoring, the tiny offline Whisper (deterministic, never a real model's name, text
the encoders can read), batched transcription (order and batching change nothing), the text.source switch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from koemo.asr.scoring import edit_distance, error_rates, normalise
from koemo.asr.text_source import apply_texts, build_texts
from koemo.core.errors import UserError

TEXTS = ["오늘 정말 화가 나요", "기분이 너무 좋아요", "그냥 그래요", "너무 슬퍼서 눈물이 나요", "왜 이렇게 늦었어"]
TINY = {"seed": 0, "vocab_size": 400, "d_model": 64, "layers": 1, "heads": 2, "n_mels": 80, "chunk_seconds": 4}


def test_edit_distance_and_rates():
    assert edit_distance("kitten", "sitting") == 3 and edit_distance("", "abc") == 3 and edit_distance("abc", "abc") == 0
    assert normalise("  정말,  화가 나요! ") == "정말 화가 나요"
    perfect = error_rates(["정말 화가 나요"], ["정말 화가 나요."])
    assert perfect["cer"] == 0 and perfect["wer"] == 0 and perfect["exact"] == 1
    spacing = error_rates(["정말 화가 나요"], ["정말화가 나요"])   # a spacing slip is no character error
    assert spacing["cer"] == 0 and spacing["wer"] == pytest.approx(2 / 3)
    one = error_rates(["정말 화가 나요", "좋아"], ["정말 화가 나와", "좋아"])
    assert one["cer"] == pytest.approx(1 / 8) and one["ref_chars"] == 8 and one["wer"] == pytest.approx(1 / 4)
    assert error_rates(["가"], ["가가가"])["cer"] == 2  # insertions: a rate above 1 is possible and kept


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    from koemo.tiny.whisper import build_tiny_whisper

    out = tmp_path_factory.mktemp("asr") / "tiny-whisper"
    info = build_tiny_whisper(TEXTS * 4, TINY, out)
    return out, info


def test_tiny_whisper_is_deterministic_and_labelled_local_tiny(tiny_whisper, tmp_path):
    from koemo.tiny.whisper import build_tiny_whisper

    out, info = tiny_whisper
    again = tmp_path / "again"
    build_tiny_whisper(list(reversed(TEXTS * 4)), TINY, again)
    for name in ("model.safetensors", "tokenizer.json", "generation_config.json", "preprocessor_config.json"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    assert json.loads((out / "koemo_encoder.json").read_text())["source"] == "local-tiny"
    assert "whisper-" not in json.dumps(info)  # never a real checkpoint's name (whisper-small, whisper-large-…)


def test_transcripts_are_readable_text_and_batching_changes_nothing(tiny_whisper):
    from koemo.asr.registry import load_asr
    from koemo.asr.transcribe import TranscribeStats, transcribe

    out, _ = tiny_whisper
    recognizer = load_asr("tiny-whisper", {"path": str(out), "language": "ko"})
    assert recognizer.source == "local-tiny" and recognizer.window_seconds == 4 and recognizer.sample_rate == 16000
    rng = np.random.default_rng(0)
    waves = [(rng.standard_normal(int(16000 * s)) * 0.1).astype(np.float32) for s in (0.5, 3.0, 1.2, 6.0, 2.0)]
    stats = TranscribeStats()
    batched = transcribe(recognizer, waves, batch_size=3, max_new_tokens=8, device=None, stats=stats)
    alone = [transcribe(recognizer, [w], batch_size=1, max_new_tokens=8)[0] for w in waves]
    assert batched == alone  # input order kept through the length sort, and a batch does not change a clip's text
    assert stats.clips == 5 and stats.cropped == 1 and stats.batches == 2  # the 6 s clip is heard for 4 s
    known = set("".join(TEXTS))
    assert all(t and set(t) <= known for t in batched), batched  # whole characters of the training text only


def test_unavailable_asr_names_the_stage_that_builds_it(tmp_path):
    from koemo.asr.registry import load_asr
    from koemo.core.hub import EncoderUnavailable

    with pytest.raises(EncoderUnavailable, match=r"dvc repro tiny_asr"):
        load_asr("tiny-whisper", {"path": str(tmp_path / "tiny-whisper")})


def test_text_source_switches_the_text_and_checks_rows():
    labels = pd.DataFrame({"wav_id": ["a", "b", "c"], "text": ["정말 화가 나요", "좋아요", "그래요"]})
    heard = pd.DataFrame({"wav_id": ["c", "a", "b"], "text": ["그래", "정말 화가", ""]})
    gold, metrics = build_texts(labels, "transcript", None, "tiny-whisper")
    assert gold["text"].tolist() == labels["text"].tolist() and metrics["rows_differing_from_transcript"] == 0
    asr, metrics = build_texts(labels, "asr", heard, "tiny-whisper")
    assert asr["text"].tolist() == ["정말 화가", "", "그래"] and asr["source"].iloc[0] == "asr:tiny-whisper"
    assert metrics["rows_differing_from_transcript"] == 3 and metrics["empty"] == 1
    with pytest.raises(UserError, match="transcribe@tiny-whisper"):
        build_texts(labels, "asr", heard.iloc[:2], "tiny-whisper")
    assert apply_texts(labels, None) is labels


def test_apply_texts_refuses_another_labels_table(tmp_path):
    labels = pd.DataFrame({"wav_id": ["a", "b"], "text": ["x", "y"], "label": ["angry", "sadness"]})
    path = tmp_path / "texts.parquet"
    pd.DataFrame({"wav_id": ["a", "b"], "text": ["들린 말", "다른 말"], "source": "asr:t"}).to_parquet(path)
    out = apply_texts(labels, path)
    assert out["text"].tolist() == ["들린 말", "다른 말"] and out["label"].tolist() == ["angry", "sadness"]
    pd.DataFrame({"wav_id": ["b", "a"], "text": ["1", "2"], "source": "asr:t"}).to_parquet(path)
    with pytest.raises(UserError, match="dvc repro text_source"):
        apply_texts(labels, path)


@pytest.mark.parametrize("override, message", [
    ({"text": {"source": "whisper"}}, "text.source"),
    ({"asr": {"models": ["tiny-whisper"], "model": "nosuch"}}, "asr.model = 'nosuch': must be one of asr_models"),
    ({"asr": {"models": ["whisper-small"], "model": "tiny-whisper"}}, "is not in asr.models"),
])
def test_params_refuse_a_bad_asr_choice(override, message):
    import yaml

    from koemo.core.params import InvalidParams, validate_params

    params = yaml.safe_load(open("params.yaml", encoding="utf-8"))
    for section, values in override.items():
        params[section].update(values)
    with pytest.raises(InvalidParams, match=message.replace("(", r"\(").replace(".", r"\.")):
        validate_params(params)


def test_the_schema_lists_the_text_sources_the_code_knows():
    from typing import get_args, get_type_hints

    from koemo.asr.text_source import TEXT_SOURCES
    from koemo.core.params import TextModels

    assert get_args(get_type_hints(TextModels)["source"]) == TEXT_SOURCES
