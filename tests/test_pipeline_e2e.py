"""End-to-end: the DVC pipeline in a throwaway copy of the repo, on a small demo corpus and an AI Hub layout."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from aihub_files import hex_id, make_row, write_release, write_wav
from pipeline_repo import BIN, SMALL, PipelineRepo, ran

pytestmark = pytest.mark.e2e

MODELS = ("text", "audio", "multimodal", "wav2vec2", "fusion", "tfidf", "egemaps")
TEXT_STAGES = {"train_text", "train_multimodal", "train_fusion", "stack"}
AUDIO_STAGES = {"audio_features", "egemaps_features", "tiny_audio_encoders", "ssl_features@tiny-wav2vec2", "train_audio",
                "train_wav2vec2", "train_egemaps"}


def test_repro_on_demo_then_status_clean(demo_repo):
    assert demo_repo.status_is_clean()
    corpus = demo_repo.metrics("corpus")
    assert corpus["rows_read"] == SMALL["demo"]["size"] == corpus["rows_kept"] + corpus["rows_dropped"]
    labels = demo_repo.metrics("labels")
    for key in ("rows_in", "rows_kept", "dropped", "class_counts", "ties", "fleiss_kappa"):
        assert key in labels
    table = pd.read_parquet(demo_repo.root / "data/labels.parquet")
    assert set(table["label"]) == {"angry", "happiness", "neutral", "sadness"}
    assert set(table["split"]) == {"train", "test"}
    assert not ran(demo_repo.dvc("repro").stdout)  # a second repro does nothing


def test_every_model_writes_predictions_and_metrics(demo_repo):
    table = pd.read_parquet(demo_repo.root / "data/labels.parquet")
    for model in MODELS:
        predictions = pd.read_parquet(demo_repo.root / f"data/predictions/{model}.parquet")
        assert len(predictions) == len(table) and set(predictions["wav_id"]) == set(table["wav_id"])
        metrics = demo_repo.metrics(f"train_{model}")
        for key in ("test", "baseline", "collapsed", "oof", "test_ci", "per_group", "protocol"):
            assert key in metrics
        assert metrics["test_ci"]["ua"]["point"] == pytest.approx(metrics["test"]["ua"], abs=1e-5)
        assert metrics["protocol"]["split_group_by"] == demo_repo.params()["split"]["group_by"]
    stack = demo_repo.metrics("stack")
    assert set(stack["comparison_test"]) == {"stack", "majority_baseline", *MODELS}
    assert set(stack["test_ci_by_model"]) == {"stack", *MODELS}
    assert {"stack_minus_best_member", *(f"{m}_minus_majority" for m in MODELS)} <= set(stack["paired"])
    groups = pd.read_csv(demo_repo.root / "plots/groups.csv")
    assert set(groups["model"]) <= {"stack", *MODELS} and set(groups["attribute"]) <= {"gender", "age"}
    features = demo_repo.metrics("audio_features")
    assert features["clips"] == len(table) and features["kinds"] == ["mel", "melmean"]
    assert demo_repo.metrics("egemaps_features")["clips"] == len(table)




def test_predict_reproduces_the_pipelines_test_probabilities(demo_repo):
    """`koemo predict --csv` on test utterances == the fold-mean test probabilities the stages wrote."""
    labels = pd.read_parquet(demo_repo.root / "data/labels.parquet")
    test = labels[labels["split"] == "test"].head(12)
    pd.DataFrame({"wav": test["wav_path"], "text": test["text"]}).to_csv(demo_repo.root / "batch.csv", index=False)
    demo_repo.run("python", "-m", "koemo", "predict", "--csv", "batch.csv", "--out", "predicted.csv")
    predicted = pd.read_csv(demo_repo.root / "predicted.csv", keep_default_na=False)
    assert len(predicted) == len(test)
    classes = ["angry", "happiness", "neutral", "sadness"]
    expected = {m: pd.read_parquet(demo_repo.root / f"data/predictions/{m}.parquet").set_index("wav_id") for m in MODELS}
    expected["stack"] = pd.read_parquet(demo_repo.root / "data/stack/predictions.parquet").set_index("wav_id")
    for model, frame in expected.items():
        want = frame.loc[test["wav_id"], [f"prob_{c}" for c in classes]].to_numpy()
        got = predicted[[f"{model}_prob_{c}" for c in classes]].to_numpy(dtype=float)
        np.testing.assert_allclose(got, want, atol=2e-4, err_msg=model)
    # in chunks (as a long CSV is read), the same numbers
    from koemo.cli import predict_in_chunks
    from koemo.predict import Predictor, Utterance

    chunked, _ = predict_in_chunks(Predictor(demo_repo.root, device="cpu"),
                                [Utterance(str(demo_repo.root / w), t) for w, t in zip(test["wav_path"], test["text"])], chunk=5)
    for model, probs in chunked.items():
        np.testing.assert_allclose(probs, predicted[[f"{model}_prob_{c}" for c in classes]].to_numpy(dtype=float),
                                   atol=1e-5, err_msg=model)
    (demo_repo.root / "batch.csv").unlink()
    (demo_repo.root / "predicted.csv").unlink()


def test_predict_flags_what_the_models_cannot_read_and_loses_no_file(demo_repo):
    """On the real demo models: a truncated wav is refused; English-only, over-long text and a long wav are answered
    with notes saying so; --out never replaces the input CSV, nor an existing file without --force."""
    import soundfile as sf

    row = pd.read_parquet(demo_repo.root / "data/labels.parquet").iloc[0]
    wave, rate = sf.read(demo_repo.root / row["wav_path"], dtype="float32")
    sf.write(demo_repo.root / "long.wav", np.tile(wave, int(np.ceil(30 / (len(wave) / rate)))), rate, subtype="PCM_16")
    raw = (demo_repo.root / row["wav_path"]).read_bytes()
    (demo_repo.root / "cut.wav").write_bytes(raw[:44 + (len(raw) - 44) // 2])
    cut = demo_repo.run("koemo", "predict", "--wav", "cut.wav", check=False)
    assert cut.returncode == 2 and "truncated" in cut.stderr and "cut short" in cut.stderr
    english = demo_repo.run("koemo", "predict", "--text", "I am so angry", "--json")
    assert any(n.startswith("no_hangul") for n in json.loads(english.stdout)["notes"]) and "no_hangul" in english.stderr
    long = json.loads(demo_repo.run("koemo", "predict", "--text", row["text"] * 400, "--wav", "long.wav", "--json").stdout)
    assert [n.split(":")[0] for n in long["notes"]] == ["text_truncated", "audio_cropped"], long["notes"]
    assert "read the first 64" in long["notes"][0] and "audio read its first 4.0 s" in long["notes"][1]
    batch = demo_repo.root / "mine.csv"
    batch.write_text(f"wav,text\nlong.wav,{row['text']}\n", encoding="utf-8")
    before = batch.read_bytes()
    same = demo_repo.run("koemo", "predict", "--csv", "mine.csv", "--out", "./mine.csv", "--force", check=False)
    assert same.returncode == 2 and "is the input CSV" in same.stderr and batch.read_bytes() == before
    done = demo_repo.run("koemo", "predict", "--csv", "mine.csv", "--out", "out/new/p.csv")
    assert "created" in done.stdout and "out/new" in done.stdout
    assert pd.read_csv(demo_repo.root / "out/new/p.csv")["notes"].str.startswith("audio_cropped").all()
    again = demo_repo.run("koemo", "predict", "--csv", "mine.csv", "--out", "out/new/p.csv", check=False)
    assert again.returncode == 2 and "--force" in again.stderr
    assert demo_repo.run("koemo", "predict", "--csv", "mine.csv", "--out", "out/new/p.csv", "--force").returncode == 0
    for name in ("long.wav", "cut.wav", "mine.csv"):
        (demo_repo.root / name).unlink()
    shutil.rmtree(demo_repo.root / "out")


def test_predict_one_utterance_and_missing_modality(demo_repo):
    row = pd.read_parquet(demo_repo.root / "data/labels.parquet").iloc[0]
    out = json.loads(demo_repo.run("koemo", "predict", "--wav", row["wav_path"], "--text", row["text"], "--json").stdout)
    assert set(out["models"]) == {*MODELS, "stack"}
    assert abs(sum(out["models"]["stack"]["probabilities"].values()) - 1) < 1e-5
    text_only = json.loads(demo_repo.run("koemo", "predict", "--text", row["text"], "--json").stdout)["models"]
    assert text_only["audio"] is None and text_only["egemaps"] is None      # need the wav
    assert text_only["text"] == out["models"]["text"] and text_only["fusion"] is not None  # fusion survives it
    assert text_only["tfidf"] == out["models"]["tfidf"]
    table = demo_repo.run("koemo", "predict", "--wav", row["wav_path"]).stdout
    assert "audio" in table and "skipped" in table
    broken = demo_repo.root / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav")
    done = demo_repo.run("koemo", "predict", "--wav", str(broken), "--text", row["text"], check=False)
    broken.unlink()
    assert done.returncode == 2 and "row 0: " in done.stderr and "broken.wav: undecodable" in done.stderr, done.stderr


def test_predict_refuses_stale_or_missing_artefacts(demo_repo):
    demo_repo.set_params(train_audio={"lr": 0.5}, audio={"sample_rate": 8000})
    try:
        done = demo_repo.run("koemo", "predict", "--text", "화가 나요", check=False)
        assert done.returncode == 2
        assert "data/models/audio: train_audio.lr: 0.002 → 0.5" in done.stderr, done.stderr
        assert "data/models/multimodal: audio.sample_rate: 16000 → 8000" in done.stderr and "dvc repro" in done.stderr
    finally:
        demo_repo.git("checkout", "-q", "--", "params.yaml")
    models = demo_repo.root / "data/models"
    (models / "wav2vec2").rename(models / "wav2vec2.away")
    try:
        done = demo_repo.run("koemo", "predict", "--text", "화가 나요", check=False)
        assert done.returncode == 2 and "data/models/wav2vec2/config.json is missing" in done.stderr, done.stderr
    finally:
        (models / "wav2vec2.away").rename(models / "wav2vec2")
    assert demo_repo.status_is_clean()


def _kill_when(repo, command: list[str], ready, timeout: float = 300):
    """Start `command` in the repo, SIGKILL it (and its children) as soon as `ready()` holds; returns once dead."""
    import os
    import signal
    import subprocess
    import time

    run = subprocess.Popen(command, cwd=repo.root, env=repo.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    deadline = time.time() + timeout
    while not ready():
        assert run.poll() is None and time.time() < deadline, f"{command} ended before the moment to kill it"
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()


def test_kill_9_mid_stage_then_repro_leaves_nothing_stray(demo_repo):
    """kill -9 while audio_features writes its shards and while train_audio is between folds: `dvc repro` then
    finishes, reuses train_audio's finished fold, and leaves no temp sibling, an intact dvclive and a clean status."""
    root, dvc = demo_repo.root, str(BIN / "dvc")
    _kill_when(demo_repo, [dvc, "repro", "-f", "-s", "train_audio"],
               lambda: list((root / "data/.resume/audio").glob("*/fold0/fold_record.json")))
    _kill_when(demo_repo, [dvc, "repro", "-f", "-s", "audio_features"],
               lambda: any(p.name.startswith(".mel.") for p in (root / "data/features").iterdir()))
    assert any(p.name.startswith((".mel.", ".melmean.")) for p in (root / "data/features").iterdir())  # what kill left
    out = demo_repo.dvc("repro").stdout
    assert "train_audio" in ran(out) and "fold 0: reused" in out, out
    # audio_features reran, or came back from DVC's run cache (the same params and inputs ran before)
    assert "audio_features" in ran(out) or "Stage 'audio_features' is cached" in out, out
    stray = [p for p in root.rglob(".*") if p.name.endswith((".tmp", ".old")) and ".dvc" not in p.parts and ".git" not in p.parts]
    assert not stray, stray
    assert not (root / "data/.resume").exists()
    assert {p.name for p in (root / "dvclive/audio/plots/metrics").iterdir()} == {"fold0", "fold1"}
    assert (root / "dvclive/audio/metrics.json").is_file()
    assert demo_repo.status_is_clean()


def test_switching_text_model_reruns_text_stages_only(demo_repo):
    out = demo_repo.dvc("exp", "run", "-S", "text.model=tiny-roberta").stdout
    assert TEXT_STAGES <= ran(out), out
    assert not ran(out) & AUDIO_STAGES, out
    assert not any(s.startswith("text_embeddings@") for s in ran(out)), "embeddings of a listed encoder are cached"
    demo_repo.git("checkout", "-q", "--", ".")  # back to the committed main workspace
    demo_repo.dvc("checkout", "--force")
    assert demo_repo.status_is_clean()


def test_metrics_diff_against_a_branch_with_one_changed_param(demo_repo):
    demo_repo.git("checkout", "-q", "-b", "fixed-c")
    demo_repo.set_params(stack={"C_grid": [0.5]})  # outside the default grid, so the chosen C must change
    out = demo_repo.dvc("repro").stdout
    assert ran(out) == {"stack"}, out
    demo_repo.commit("fixed C")
    diff = json.loads(demo_repo.dvc("metrics", "diff", "main", "--json").stdout)
    assert diff["metrics/stack.json"]["C"]["new"] == 0.5 and diff["metrics/stack.json"]["C"]["old"] != 0.5, diff
    params_diff = json.loads(demo_repo.dvc("params", "diff", "main", "--json").stdout)
    assert params_diff["params.yaml"]["stack.C_grid"]["new"] in ([0.5], "[0.5]")  # dvc renders lists as text
    demo_repo.git("checkout", "-q", "main")


def test_aihub_source_on_a_release_shaped_directory(tmp_path_factory):
    repo = PipelineRepo.copy_of_this_repo(tmp_path_factory.mktemp("koemo-aihub"))
    raw = repo.root / "data/raw/aihub"
    emotions = [("Angry", 2), ("Happiness", 2), ("Neutral", 0), ("Sadness", 1)]
    rows = {"4차_14606.csv": [], "5차년도.csv": [], "5차년도_2차_19374.csv": []}
    releases = list(rows)
    for i in range(120):
        emotion = emotions[i % 4]
        ann = [emotion] * 4 + [("Surprise", 0)]  # neutral rows: 0–0 tie broken by votes
        rows[releases[i % 3]].append(make_row(hex_id(i), f"문장 {i % 40}번", ann, situation=emotion[0].lower()))
        if i != 7:  # one row (in 5차년도) without its wav, as in the real releases
            folder = {"4차_14606.csv": "4차년도", "5차년도.csv": "5차년도/5차_wav", "5차년도_2차_19374.csv": "5차년도_2차"}
            write_wav(raw / folder[releases[i % 3]] / f"{hex_id(i)}.wav", seconds=0.2, seed=i)
    write_release(raw / "4차_14606.csv", rows["4차_14606.csv"], "cp949")
    write_release(raw / "5차년도.csv", rows["5차년도.csv"], "utf-8-sig")
    write_release(raw / "5차년도_2차_19374.csv", rows["5차년도_2차_19374.csv"], "cp949", squeeze_4th=True)
    repo.set_params(data={"source": "aihub"})
    repo.dvc("repro", "labels")
    corpus = repo.metrics("corpus")
    assert corpus["rows_read"] == 120 and corpus["rows_kept"] == 119
    assert corpus["dropped_by_reason"]["missing_wav"] == 1
    assert corpus["kept_by_release"] == {"4차년도": 40, "5차년도": 39, "5차년도_2차": 40}
    table = pd.read_parquet(repo.root / "data/labels.parquet").set_index("wav_id")
    for i in (0, 1, 2, 3, 50):
        assert table.loc[hex_id(i), "label"] == ["angry", "happiness", "neutral", "sadness"][i % 4]
    assert repo.status_is_clean("labels")

    # Only corpus watches the wav directory; a changed, added or removed wav reruns exactly what it affects.
    targets = ("labels", "egemaps_features", "train_tfidf")
    repo.dvc("repro", *targets)
    changed = raw / "4차년도" / f"{hex_id(0)}.wav"
    write_wav(changed, seconds=0.2, seed=1000)                      # same length, other samples
    assert set(json.loads(repo.dvc("status", "--json", "--with-deps", *targets).stdout)) == {"corpus"}
    assert ran(repo.dvc("repro", *targets).stdout) == {"corpus", "egemaps_features"}   # not labels, not the text model
    write_wav(raw / "5차년도/5차_wav" / f"{hex_id(7)}.wav", seconds=0.2, seed=7)  # the missing wav arrives: a new row
    assert ran(repo.dvc("repro", *targets).stdout) == {"corpus", "labels", "egemaps_features", "train_tfidf"}
    assert repo.metrics("corpus")["rows_kept"] == 120
    changed.unlink()                                                # a wav removed: its row is dropped
    assert ran(repo.dvc("repro", *targets).stdout) == {"corpus", "labels", "egemaps_features", "train_tfidf"}
    assert repo.metrics("corpus")["dropped_by_reason"]["missing_wav"] == 1
