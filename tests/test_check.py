"""`koemo check` (one row per need: data, encoders, machine; exit 1 on a blocker) and `koemo profile`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aihub_files import hex_id, make_row, write_release, write_wav
from hf_cache import hf_cache  # noqa: F401  (fixture)
from koemo.check.machine import check_machine, projected_bytes
from koemo.check.report import BLOCKER, OK, WARN
from koemo.cli import main
from koemo.ops.profiles import PROFILES, apply_profile
from pipeline_repo import REPO, PipelineRepo

ANGRY5 = [("Angry", 2)] * 5


def _params(tmp_path: Path, **data) -> Path:
    """The repo's params.yaml beside a test directory, data.* replaced."""
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["data"].update(data)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _release(root: Path, n: int = 6, wavs: int | None = None) -> Path:
    rows = [make_row(hex_id(i), "정말 화가 나요", ANGRY5) for i in range(n)]
    for i in range(n if wavs is None else wavs):
        write_wav(root / "wav" / f"{hex_id(i)}.wav", seconds=0.3, seed=i)
    return write_release(root / "5차년도.csv", rows)


def _check(capsys, params: Path, *extra: str) -> tuple[int, dict[str, str], str]:
    """(exit code, check → its line, the whole output) of `koemo check`."""
    code = main(["check", "--params", str(params), "--free-disk", "1000", *extra])
    out = capsys.readouterr().out
    cells = [re.split(r"\s{2,}", line) for line in out.splitlines()[2:] if line and not line.startswith((" ", "-", "("))]
    return code, {c[0]: "  ".join(c) for c in cells if len(c) >= 3}, out


def _state(line: str) -> str:
    return line.split("  ")[1]


def test_the_demo_params_have_no_blocker_before_anything_is_built(tmp_path, capsys):
    code, lines, out = _check(capsys, _params(tmp_path))
    assert code == 0, out
    assert "demo: 1200 utterances" in lines["data"] and _state(lines["data"]) == OK
    assert "local-tiny, built by the tiny_encoders stage" in lines["encoders.tiny-electra"]
    assert "0 blocker(s)" in out


def test_an_aihub_layout_directory_is_read_and_sampled(tmp_path, capsys):
    _release(tmp_path / "aihub", n=6)
    (tmp_path / "aihub" / "notes.txt").write_text("ok")
    code, lines, out = _check(capsys, _params(tmp_path, source="aihub", dir=str(tmp_path / "aihub")))
    assert "5차년도: 6 rows, cp949, header 15 fields" in out
    assert "6 of 6 rows have their <wav_id>.wav (100.0%)" in lines["wavs"] and _state(lines["wavs"]) == OK
    assert "6 sampled: rate 48000 Hz, channels 1, 0.3-0.3 s" in lines["wav headers"]
    assert code == 0, out


def test_missing_wavs_are_a_blocker_when_none_is_there_a_warning_when_some_are(tmp_path, capsys):
    _release(tmp_path / "aihub", n=4, wavs=0)
    code, lines, out = _check(capsys, _params(tmp_path, source="aihub", dir=str(tmp_path / "aihub")))
    assert code == 1 and _state(lines["wavs"]) == BLOCKER and "0 of 4 rows" in lines["wavs"], out
    assert "unzip the wav folders below" in out
    _release(tmp_path / "aihub", n=4, wavs=3)
    code, lines, out = _check(capsys, _params(tmp_path, source="aihub", dir=str(tmp_path / "aihub")))
    assert code == 0 and _state(lines["wavs"]) == WARN and "3 of 4 rows have their <wav_id>.wav (75.0%)" in out


def test_a_csv_outside_the_data_directory_is_named(tmp_path, capsys):
    _release(tmp_path / "download", n=3)
    shutil.move(tmp_path / "download" / "5차년도.csv", tmp_path / "5차년도.csv")  # the CSV one level up
    code, lines, out = _check(capsys, _params(tmp_path, source="aihub", dir=str(tmp_path / "download")))
    assert code == 1, out
    assert _state(lines["release CSVs"]) == BLOCKER and "no *.csv below" in lines["release CSVs"] and "(3 wavs)" in out
    assert f"(found {tmp_path / '5차년도.csv'})" in out


def test_a_non_release_csv_and_unread_files_are_named_not_ignored(tmp_path, capsys):
    _release(tmp_path / "aihub", n=3)
    (tmp_path / "aihub" / "scores.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (tmp_path / "aihub" / "wav2.zip").write_bytes(b"PK")
    write_wav(tmp_path / "aihub" / "wav" / "stray.wav", seconds=0.2)
    code, lines, out = _check(capsys, _params(tmp_path, source="aihub", dir=str(tmp_path / "aihub")))
    assert code == 1
    assert "scores.csv is not an AI Hub emotion CSV" in out and "move it out of data.dir" in out
    assert "1 below" in out and "wav2.zip" in out and "unzip it" in out
    assert "1 wavs below" in out and "in no CSV row" in out


def test_a_missing_data_directory_is_a_blocker(tmp_path, capsys):
    code, lines, out = _check(capsys, _params(tmp_path, source="aihub", dir=str(tmp_path / "nowhere")))
    assert code == 1 and _state(lines["data.dir"]) == BLOCKER and "koemo profile aihub-gpu --dir" in out


def test_a_truncated_wav_in_the_header_sample_is_named(tmp_path, capsys):
    _release(tmp_path / "aihub", n=2)
    wav = tmp_path / "aihub" / "wav" / f"{hex_id(1)}.wav"
    wav.write_bytes(wav.read_bytes()[:2000])
    code, lines, out = _check(capsys, _params(tmp_path, source="aihub", dir=str(tmp_path / "aihub")))
    assert _state(lines["wav headers"]) == WARN and "cut short" in lines["wav headers"] and hex_id(1) in lines["wav headers"], out


def test_the_design_cards_koelectra_names_what_is_missing_and_the_command(tmp_path, capsys, hf_cache):  # noqa: F811
    code, lines, out = _check(capsys, _params(tmp_path), "-S", "text.model=koelectra")
    assert code == 1
    line = lines["encoders.koelectra"]
    assert _state(line) == BLOCKER
    assert "text.model=koelectra is not in text.encoders" in line
    pinned = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))["encoders"]["koelectra"]["revision"]
    assert f"monologg/koelectra-base-v3-discriminator at revision {pinned}: weights not in the Hugging Face cache" in line
    assert (f"`hf download monologg/koelectra-base-v3-discriminator --revision {pinned} --include config.json "
            "model.safetensors tokenizer_config.json special_tokens_map.json tokenizer.json vocab.txt vocab.json "
            "merges.txt`" in out and
            "`dvc exp run -S text.model=koelectra -S 'text.encoders=[tiny-bert,tiny-roberta,tiny-electra,koelectra]'`"
            in out)


def test_an_encoder_without_weights_or_at_another_revision_is_a_blocker(tmp_path, capsys, hf_cache):  # noqa: F811
    files = tmp_path / "files"
    files.mkdir()
    (files / "config.json").write_text('{"hidden_size": 768, "num_hidden_layers": 12}')
    (files / "tokenizer.json").write_text("{}")
    pinned = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))["encoders"]["koelectra"]["revision"]
    hf_cache.install("monologg/koelectra-base-v3-discriminator", files, commit=pinned, ref=None)
    params = _params(tmp_path)
    overrides = ["-S", "text.model=koelectra", "-S", "text.encoders=[koelectra]"]
    code, lines, out = _check(capsys, params, *overrides)
    assert code == 1 and "lacks model.safetensors" in lines["encoders.koelectra"], out
    (files / "model.safetensors").write_bytes(b"x")
    hf_cache.install("monologg/koelectra-base-v3-discriminator", files, commit=pinned, ref=None)
    code, lines, out = _check(capsys, params, *overrides)
    assert _state(lines["encoders.koelectra"]) == OK and "weights + tokenizer files present offline" in out
    code, lines, out = _check(capsys, params, *overrides, "-S", "encoders.koelectra.revision=0123abc")
    assert code == 1 and "at revision 0123abc: weights not in the Hugging Face cache" in out
    assert "--revision 0123abc" in out


def test_not_enough_disk_is_a_blocker_with_the_amount(tmp_path, capsys):
    params = _params(tmp_path)
    code = main(["check", "--params", str(params), "--free-disk", "0.1"])
    out = capsys.readouterr().out
    assert code == 1
    line = next(l for l in out.splitlines() if l.startswith("disk"))
    assert BLOCKER in line and "0.1 GiB free; outputs ≈ 0.4 GiB for 1,200 clips" in line
    assert "free 0.4 GiB more" in out


def test_the_disk_projection_follows_the_params():
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    need = projected_bytes(params, 1000)
    # mel: 128 × 400 float16 per row; training rows (80 %) get 3 augmented copies (noise, stretch, pitch)
    assert need["features/mel"] == pytest.approx(1000 * (1 + 3 * 0.8) * 128 * 400 * 2)
    params["audio"]["mel"]["dtype"] = "float32"
    params["audio"]["augment"]["methods"] = ["noise"]
    assert projected_bytes(params, 1000)["features/mel"] == pytest.approx(1000 * (1 + 0.8) * 128 * 400 * 4)


def test_gpu_memory_and_a_finetune_without_gpu(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["text"].update(model="koelectra", encoders=["koelectra"])
    small = check_machine(params, tmp_path, 100, free_disk=2**40, gpu_list=[("Tiny GPU", 2**30)])
    assert small[0].state == BLOCKER and "train_text (koelectra, batch 16)" in small[0].detail
    big = check_machine(params, tmp_path, 100, free_disk=2**40, gpu_list=[("H100", 80 * 2**30)])
    assert big[0].state == OK and "largest job" in big[0].detail
    params["train_wav2vec2"]["mode"] = "finetune"
    none = check_machine(params, tmp_path, 100, free_disk=2**40, gpu_list=[])
    assert none[0].state == BLOCKER and "finetune needs one" in none[0].detail


def test_check_runs_without_importing_torch(tmp_path):
    """Seconds, not the several torch takes to import: nothing in check may pull it in on a CPU machine."""
    params = _params(tmp_path)
    code = ("import sys; from koemo.cli import main; rc = main(['check', '--params', sys.argv[1]]); "
            "print('torch' in sys.modules, 'transformers' in sys.modules, rc)")
    done = subprocess.run([sys.executable, "-c", code, str(params)], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "False False 0", done.stdout + done.stderr


# ---- profiles ---------------------------------------------------------------------------------------------------
def test_the_demo_profile_is_the_committed_params(tmp_path):
    copy = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", copy)
    assert apply_profile(copy, "demo") == []
    assert copy.read_bytes() == (REPO / "params.yaml").read_bytes()


def test_a_profile_round_trip_keeps_the_file_and_sets_every_key(tmp_path):
    copy = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", copy)
    changes = apply_profile(copy, "aihub-gpu", "/data/aihub")
    assert {key for key, _, _ in changes} == set(PROFILES["demo"])  # every key differs from the demo's
    params = yaml.safe_load(copy.read_text(encoding="utf-8"))
    assert params["data"] == {"source": "aihub", "dir": "/data/aihub"}
    assert params["text"]["model"] == "koelectra" and params["ssl"]["encoders"] == ["wav2vec2-ko"]
    assert "  lr: 2.0e-5                 # random-init tiny encoders" in copy.read_text(encoding="utf-8")
    assert apply_profile(copy, "aihub-cpu")[0][0] == "text.encoders"  # keeps data.dir
    assert yaml.safe_load(copy.read_text(encoding="utf-8"))["data"]["dir"] == "/data/aihub"
    apply_profile(copy, "demo")
    assert copy.read_bytes() == (REPO / "params.yaml").read_bytes()
    assert set(PROFILES["aihub-gpu"]) | {"data.dir"} == set(PROFILES["demo"]) == set(PROFILES["aihub-cpu"]) | {"data.dir"}


def test_a_real_source_reading_the_demo_directory_is_refused(tmp_path, capsys):
    code = main(["check", "--params", str(_params(tmp_path, source="aihub"))])
    assert code == 2 and "the demo stage's output: point data.dir at your aihub copy" in capsys.readouterr().err


# ---- the DAG: the demo out of the real job, no AI Hub directory in the demo's --------------------------------------
@pytest.mark.e2e
def test_corpus_on_aihub_params_does_not_need_the_demo_and_the_demo_needs_no_aihub_dir(tmp_path):
    repo = PipelineRepo.copy_of_this_repo(tmp_path / "repo")
    shutil.rmtree(repo.root / "data" / "raw" / "aihub")  # the demo's DAG must not need it
    dag = repo.dvc("dag", "corpus").stdout
    assert "demo" in dag and "aihub" not in dag
    _release(tmp_path / "release", n=5)
    assert main(["profile", "aihub-cpu", "--dir", str(tmp_path / "release"), "--params",
                 str(repo.root / "params.yaml")]) == 0
    assert "demo" not in repo.dvc("dag", "corpus").stdout
    done = repo.dvc("repro", "-s", "corpus")
    assert "Running stage 'corpus'" in done.stdout and not (repo.root / "data" / "raw" / "demo").exists()
    assert repo.report("corpus")["rows_kept"] == 5


def test_the_old_aihub_dir_key_names_its_new_name(tmp_path, capsys):
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["data"] = {"source": "aihub", "aihub_dir": "/data/aihub"}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    assert main(["check", "--params", str(path)]) == 2
    assert "data.aihub_dir was renamed data.dir (the one directory the corpus stage reads): data.dir: /data/aihub" \
        in capsys.readouterr().err
