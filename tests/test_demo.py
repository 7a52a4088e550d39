"""The demo corpus: AI Hub format, reproducibility, realistic raters, and emotion in both text and audio."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from pipeline_repo import stage_argv

from koemo.corpus.emotions import EMOTIONS
from koemo.demo import build_demo_corpus
from koemo.demo.plan import plan_corpus
from koemo.demo.prosody import FEMALE_VARIANTS, MALE_VARIANTS, Prosody, emotion_prosody, make_speakers
from koemo.demo.sentences import AMBIGUOUS, make_sentence, subject, topic
from koemo.demo.tts import ESPEAK_RATE, speak

REPO = Path(__file__).resolve().parents[1]
HEADERS = ["wav_id", "발화문", "상황", "1번 감정", "1번 감정세기", "2번 감정", "2번 감정세기", "3번 감정", "3번 감정세기",
           "4번 감정", "4번 감정세기", "5번 감정", "5번 감정세기", "나이", "성별"]
RATER_NAMES = {"Angry", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"}
SIZE, SEED = 40, 5


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    first = build_demo_corpus(root / "a", size=SIZE, seed=SEED)
    build_demo_corpus(root / "b", size=SIZE, seed=SEED, workers=2)  # other process layout, same bytes
    build_demo_corpus(root / "c", size=SIZE, seed=SEED + 1)
    return root, first


def read_rows(directory: Path) -> tuple[list[str], list[list[str]]]:
    raw = (directory / "demo.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # really cp949, as the releases are
    rows = list(csv.reader(io.StringIO(raw.decode("cp949"))))
    return rows[0], rows[1:]


def tree_bytes(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_csv_is_an_aihub_release(corpora):
    root, summary = corpora
    header, rows = read_rows(root / "a")
    assert header == HEADERS
    assert len(rows) == SIZE == summary["utterances"]
    ids = [r[0] for r in rows]
    assert len(set(ids)) == SIZE and all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)
    for row in rows:
        assert row[1].strip() and row[2] in EMOTIONS  # 상황: lower-case 5차 names
        for k in range(5):
            emotion, intensity = row[3 + 2 * k], int(row[4 + 2 * k])
            assert emotion in RATER_NAMES
            assert intensity == 0 if emotion == "Neutral" else 0 <= intensity <= 2
        assert 20 <= int(row[13]) <= 60 and row[14] in {"남성", "여성"}
    # each speaker keeps one age/gender
    assert len({(r[13], r[14]) for r in rows}) <= summary["speakers"]


def test_every_wav_is_pcm16_mono_at_the_rate(corpora):
    root, summary = corpora
    _, rows = read_rows(root / "a")
    wavs = sorted((root / "a" / "wav").glob("*.wav"))
    assert sorted(p.stem for p in wavs) == sorted(r[0] for r in rows)
    total = 0.0
    for path in wavs:
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert 1.0 < info.duration < 15.0
        total += info.frames / info.samplerate
    assert total == pytest.approx(summary["total_audio_seconds"])


def test_same_seed_same_bytes_any_workers_other_seed_differs(corpora):
    root, _ = corpora
    a, b, c = (tree_bytes(root / name) for name in "abc")
    assert a == b
    assert a["demo.csv"] != c["demo.csv"]
    assert set(a) != set(c)  # different wav ids


def test_other_sample_rate_is_resampled(tmp_path):
    summary = build_demo_corpus(tmp_path / "d", size=3, seed=1, sample_rate=16000)
    for path in (tmp_path / "d" / "wav").glob("*.wav"):
        assert sf.info(str(path)).samplerate == 16000
    assert summary["sample_rate"] == 16000


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def test_prosody_depends_on_emotion():
    speaker = make_speakers(4, np.random.default_rng(0))[1]
    text = "어제 친구가 그 얘기를 처음으로 꺼냈어."
    audio = {e: speak(text, emotion_prosody(speaker, e)) for e in ("angry", "sadness", "neutral", "happiness", "surprise")}
    assert len(audio["sadness"]) > 1.3 * len(audio["angry"])
    assert len(audio["sadness"]) > len(audio["neutral"]) > len(audio["angry"])
    assert _rms(audio["angry"]) > 1.8 * _rms(audio["sadness"])
    # happiness and surprise are higher-pitched: more zero crossings than sadness
    zc = {e: np.mean(np.abs(np.diff(np.sign(a.astype(float)))) > 0) for e, a in audio.items()}
    assert zc["happiness"] > zc["sadness"] and zc["surprise"] > zc["sadness"]


def test_every_voice_variant_is_reproducible():
    """Variants with `breath` noise (f2, f3, f5) change when the clock's second changes: none may be used."""
    text = "안녕하세요, 반갑습니다."
    variants = FEMALE_VARIANTS + MALE_VARIANTS
    first = [speak(text, Prosody(f"ko+{v}", rate=260, pitch=50, range=60, volume=100, wordgap=0)) for v in variants]
    time.sleep(1.05)
    for variant, audio in zip(variants, first):
        again = speak(text, Prosody(f"ko+{variant}", rate=260, pitch=50, range=60, volume=100, wordgap=0))
        assert np.array_equal(audio, again), variant


def test_refuses_when_espeak_is_already_loaded_elsewhere():
    code = (
        "import ctypes, espeakng_loader\n"
        "lib = ctypes.CDLL(espeakng_loader.get_library_path())\n"
        "from koemo.demo.tts import speak, EspeakError\n"
        "from koemo.demo.prosody import Prosody\n"
        "try:\n    speak('안녕', Prosody('ko', 175, 50, 50, 100, 0))\n"
        "except EspeakError as err:\n    print('refused' if 'workers=2' in str(err) else err)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "refused", result.stderr


def test_text_variety_and_repetition_at_default_size():
    plan = plan_corpus(1200, 20241124)
    texts = Counter(u.text for u in plan)
    assert len(texts) >= 800             # hundreds of distinct sentences ...
    assert max(texts.values()) >= 2      # ... and some repeated, so the grouped split matters
    cue = [u for u in plan if u.text_cue]
    assert 0.68 < len(cue) / len(plan) < 0.82
    for emotion in EMOTIONS:
        assert len({u.text for u in cue if u.intended == emotion}) >= 50
    # emotion-neutral wording is spoken with several different emotions
    ambiguous = Counter(u.intended for u in plan if not u.text_cue)
    assert len(ambiguous) == len(EMOTIONS)
    for _ in range(3):
        make_sentence(AMBIGUOUS, np.random.default_rng(1)).encode("cp949")


def test_raters_and_class_balance_after_the_four_class_filter():
    from koemo.labels.aggregate import aggregate

    plan = plan_corpus(1200, 20241124)
    frame = pd.DataFrame([
        {"situation": u.situation,
         **{f"emotion_{k + 1}": e for k, (e, _) in enumerate(u.ratings)},
         **{f"intensity_{k + 1}": i for k, (_, i) in enumerate(u.ratings)}}
        for u in plan
    ])
    weighted = pd.Series(aggregate(frame, "weighted").label)
    four = weighted[weighted.isin(["angry", "happiness", "neutral", "sadness"])].value_counts(normalize=True)
    assert len(four) == 4 and four.min() >= 0.12 and four.max() <= 0.45
    majority = aggregate(frame, "majority").label
    agreement = float(np.mean(frame["situation"].to_numpy() == majority))
    assert 0.6 < agreement < 0.78  # real release: ~68 %
    unanimous = np.mean([len({e for e, _ in u.ratings}) == 1 for u in plan])
    assert 0.1 < unanimous < 0.6   # raters disagree, but not at random


def test_korean_particles_follow_the_final_consonant():
    assert subject("친구") == "친구가" and subject("동생") == "동생이"
    assert topic("후배") == "후배는" and topic("그 사람") == "그 사람은"


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"annotator_noise": 1.5}, {"text_cue_strength": -0.1}, {"speakers": 0}])
def test_bad_params_are_clear_errors(kwargs):
    args = {"size": 5, "seed": 1, **kwargs}
    with pytest.raises(ValueError, match="demo"):
        plan_corpus(**args)


def _run_stage(tmp_path: Path, source: str) -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["data"].update(source=source, dir="data/raw/demo" if source == "demo" else "data/raw/aihub")
    params["demo"]["size"] = 6
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    subprocess.run(stage_argv("demo"), cwd=tmp_path, check=True, capture_output=True, timeout=120)
    return json.loads((tmp_path / "reports" / "demo.json").read_text(encoding="utf-8"))


def test_stage_synthesises_or_is_a_cheap_no_op(tmp_path):
    (tmp_path / "on").mkdir()
    on = _run_stage(tmp_path / "on", "demo")
    assert on["enabled"] and on["utterances"] == 6 and on["sample_rate"] == ESPEAK_RATE
    assert set(on["intended_counts"]) == set(EMOTIONS) and on["total_audio_seconds"] > 0
    assert len(list((tmp_path / "on" / "data" / "raw" / "demo" / "wav").glob("*.wav"))) == 6
    runtime = json.loads((tmp_path / "on" / "reports" / "runtime" / "demo.json").read_text(encoding="utf-8"))
    assert runtime["x_real_time"] > 0

    (tmp_path / "off").mkdir()
    off = _run_stage(tmp_path / "off", "aihub")
    assert off == {"enabled": False, "source": "aihub"}
    assert [p.name for p in (tmp_path / "off" / "data" / "raw" / "demo").iterdir()] == ["README.md"]
