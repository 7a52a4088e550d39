"""audio_features: per-clip equality with the reference formulas, decoding, failures, augmentation, determinism."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import torchaudio
import yaml

from koemo.clips.decode import decode_clip, decode_clips
from koemo.clips.extraction import TooManyFailures, check_failures
from koemo.core.shards import ShardWriter
from koemo.core.shards import load_shards as load_features
from koemo.features.mel.augment import AugmentSpec, add_noise, augment_batch, log_spectral_distance, rng_for
from koemo.features.mel.cache import extract_pass
from koemo.features.mel.spectral import FeatureExtractor, FeatureSpec
from pipeline_repo import stage_argv

ROOT = Path(__file__).resolve().parents[1]
AUDIO = {
    "sample_rate": 16000, "max_failure_fraction": 0.6, "workers": 0, "batch_seconds": 2.0,
    "mel": {"n_mels": 128, "n_fft": 400, "hop_length": 160, "max_frames": 400, "top_db": 80, "dtype": "float16"},
    "mfcc": {"n_mfcc": 40, "n_mels": 64, "n_fft": 400, "hop_length": 160, "max_frames": 400, "top_db": 80,
             "augment": False},
    "melmean": {"n_mels": 13, "n_fft": 2048, "hop_length": 512, "top_db": 80, "max_seconds": 20},
}
CPU = torch.device("cpu")


def tone(seconds: float, rate: int = 16000, freq: float = 220.0, seed: int = 0) -> np.ndarray:
    n = int(seconds * rate)
    t = np.arange(n) / rate
    noise = np.random.default_rng(seed).standard_normal(n)
    return (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.02 * noise).astype(np.float32)


def torchaudio_log_mel(wave: np.ndarray, n_mels: int, max_frames: int) -> np.ndarray:
    """The reference: MelSpectrogram → first max_frames frames → AmplitudeToDB(top_db=80) → pad with the floor."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=400, hop_length=160, n_mels=n_mels)(torch.from_numpy(wave))
    db = torchaudio.transforms.AmplitudeToDB("power", top_db=80)(mel[:, :max_frames]).numpy()
    out = np.full((n_mels, max_frames), db.max() - 80, dtype=np.float32)
    out[:, :db.shape[1]] = db
    return out


def test_mel_rows_of_a_padded_batch_equal_torchaudio_per_clip():
    waves = [tone(0.3, freq=440), tone(1.0, seed=1), tone(5.0, freq=150, seed=2)]   # padded, padded, cropped
    out = FeatureExtractor(FeatureSpec.from_params("mel", AUDIO), CPU)(waves)
    assert out.shape == (3, 128, 400) and out.dtype == np.float32
    for row, wave in zip(out, waves):
        np.testing.assert_allclose(row, torchaudio_log_mel(wave, 128, 400), atol=2e-3)
    # a sine puts its energy in the band holding its frequency
    assert out[0][:, 5:25].mean(axis=1).argmax() == np.argmax(torchaudio_log_mel(waves[0], 128, 400)[:, 5:25].mean(axis=1))


def test_mfcc_equals_torchaudio_mfcc_and_padding_is_the_floor_cepstrum():
    waves = [tone(0.7, seed=3), tone(2.0, freq=330, seed=4)]
    out = FeatureExtractor(FeatureSpec.from_params("mfcc", AUDIO), CPU)(waves)
    assert out.shape == (2, 40, 400)
    for row, wave in zip(out, waves):
        ref = torchaudio.transforms.MFCC(16000, n_mfcc=40, melkwargs={"n_fft": 400, "hop_length": 160, "n_mels": 64})(
            torch.from_numpy(wave)).numpy()
        frames = ref.shape[1]
        np.testing.assert_allclose(row[:, :frames], ref, atol=5e-3, rtol=1e-4)
        assert np.allclose(row[:, frames:], row[:, -1:])          # padded frames: one constant (floor) cepstrum
        assert np.abs(row[1:, -1]).max() < 1e-3                  # the DCT of a flat spectrum has only c0


def test_melmean_matches_the_reference_librosa_formula_whatever_the_batch_padding():
    import librosa

    waves = [tone(0.2, seed=5), tone(1.3, freq=500, seed=6), tone(3.1, freq=120, seed=7)]
    out = FeatureExtractor(FeatureSpec.from_params("melmean", AUDIO), CPU)(waves)
    assert out.shape == (3, 13)
    for row, wave in zip(out, waves):
        ref = librosa.power_to_db(librosa.feature.melspectrogram(y=wave, sr=16000, n_mels=13), ref=np.max).mean(axis=1)
        np.testing.assert_allclose(row, ref, atol=1e-3)
    alone = FeatureExtractor(FeatureSpec.from_params("melmean", AUDIO), CPU)(waves[:1])
    np.testing.assert_allclose(alone[0], out[0], atol=1e-4)      # padding to 3.1 s changed nothing


def test_48k_stereo_and_22k_mono_are_mixed_down_and_resampled(tmp_path):
    t48 = np.arange(96000) / 48000
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t48), 0.1 * np.sin(2 * np.pi * 440 * t48)], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 48000, subtype="PCM_16")
    mono22 = 0.3 * np.sin(2 * np.pi * 300 * np.arange(22050) / 22050)    # band-limited: resamplers agree
    sf.write(tmp_path / "m.wav", mono22, 22050, subtype="PCM_16")
    s, m = decode_clips([str(tmp_path / "s.wav"), str(tmp_path / "m.wav")], 16000, workers=2)
    assert (s.source_rate, s.channels, len(s.wave), s.wave.dtype) == (48000, 2, 32000, np.float32)
    assert (m.source_rate, m.channels, len(m.wave)) == (22050, 1, 16000)
    ref = torchaudio.functional.resample(torch.from_numpy(stereo.mean(axis=1).astype(np.float32)), 48000, 16000).numpy()
    np.testing.assert_allclose(s.wave[500:-500], ref[500:-500], atol=2e-3)   # a 0.3-amplitude 440 Hz tone
    assert abs(np.abs(s.wave[500:-500]).max() - 0.3) < 2e-3
    ref22 = torchaudio.functional.resample(torch.from_numpy(sf.read(tmp_path / "m.wav", dtype="float32")[0]), 22050, 16000)
    np.testing.assert_allclose(m.wave[500:-500], ref22.numpy()[500:-500], atol=2e-3)


# ---------------------------------------------------------------- the whole extraction
@pytest.fixture()
def corpus(tmp_path) -> pd.DataFrame:
    """Six good clips (train and test, 22,050 Hz mono, 48 kHz stereo) and one of each failure."""
    wav = tmp_path / "wav"
    wav.mkdir()
    rows = []

    def add(wav_id, split, fold, writer=None):
        path = wav / f"{wav_id}.wav"
        if writer is not None:
            writer(path)
        label_id = len(rows) % 4
        rows.append({"wav_id": wav_id, "wav_path": str(path), "split": split, "fold": fold,
                     "label": ["angry", "happiness", "neutral", "sadness"][label_id], "label_id": label_id})

    for i, (split, rate, channels) in enumerate([("train", 22050, 1), ("train", 48000, 2), ("train", 22050, 1),
                                                  ("test", 48000, 2), ("test", 22050, 1), ("train", 48000, 1)]):
        wave = tone(0.8 + 0.3 * i, rate=rate, freq=150 + 60 * i, seed=i)
        data = np.stack([wave, 0.5 * wave], axis=1) if channels == 2 else wave
        add(f"ok{i}", split, -1 if split == "test" else i % 2, lambda p, d=data, r=rate: sf.write(p, d, r, subtype="PCM_16"))
    add("bad_corrupt", "train", 0, lambda p: p.write_bytes(b"RIFF\x00\x00not really a wave file"))
    add("bad_empty", "train", 1, lambda p: sf.write(p, np.zeros(0, np.float32), 22050, subtype="PCM_16"))
    add("bad_short", "test", -1, lambda p: sf.write(p, tone(0.01, rate=22050), 22050, subtype="PCM_16"))
    add("bad_nan", "train", 0, lambda p: sf.write(p, np.full(4000, np.nan, np.float32), 16000, subtype="FLOAT"))
    add("bad_missing", "train", 1)
    add("bad_silent", "train", 0, lambda p: sf.write(p, np.zeros(16000, np.float32), 16000, subtype="PCM_16"))
    add("bad_truncated", "train", 1, lambda p: cut_in_half(p, tone(1.0, rate=16000), 16000))
    return pd.DataFrame(rows)


def cut_in_half(path, wave, rate):
    """A wav whose data was cut to half its bytes, the header left saying the whole length."""
    sf.write(path, wave, rate, subtype="PCM_16")
    raw = Path(path).read_bytes()
    Path(path).write_bytes(raw[:44 + (len(raw) - 44) // 2])


AUGMENT = AugmentSpec.from_params({"methods": ["noise", "stretch", "pitch"], "copies": 2, "seed": 7})
FAILED = ["bad_corrupt", "bad_empty", "bad_missing", "bad_nan", "bad_short", "bad_silent", "bad_truncated"]


def run(labels, out, kinds=("melmean",), workers=0, batch_seconds=2.0, augment=AUGMENT, audio=AUDIO):
    out = Path(out)
    specs = [FeatureSpec.from_params(kind, audio) for kind in kinds]
    return extract_pass(labels, specs, augment, [out / kind for kind in kinds], workers, batch_seconds,
                        min_rms_dbfs=-60.0, device=CPU, progress=False)


def test_extraction_lists_failures_and_augments_only_training_rows(corpus, tmp_path):
    metrics, runtime = run(corpus, tmp_path / "out")
    assert metrics["failures_by_reason"] == {"empty": 1, "missing": 1, "non_finite": 1, "silent": 1, "too_short": 1,
                                             "truncated": 1, "undecodable": 1}
    assert (metrics["clips_in"], metrics["clips"], metrics["failed"]) == (13, 6, 7)
    assert "declares 16000 frames, the file holds 8000" in pd.read_csv(
        tmp_path / "out" / "melmean" / "failures.csv", keep_default_na=False).set_index("wav_id").loc["bad_truncated", "detail"]
    failures = pd.read_csv(tmp_path / "out" / "melmean" / "failures.csv", keep_default_na=False)
    assert sorted(failures["wav_id"]) == FAILED
    assert (failures["detail"] != "").all()
    assert "dBFS" in failures.set_index("wav_id").loc["bad_silent", "detail"]
    index, features = load_features(tmp_path / "out" / "melmean")
    assert list(index.columns) == ["wav_id", "aug", "aug_copy", "split", "fold", "label", "label_id", "shard", "row"]
    assert features.shape == (len(index), 13) and np.isfinite(features).all()
    augmented = index[index["aug"] != ""]
    assert set(augmented["split"]) == {"train"} and metrics["melmean"]["augmented_test_rows"] == 0
    assert set(index[index["split"] == "test"]["aug"]) == {""}
    # noise × 2 copies, stretch and pitch once (deterministic methods), per good training clip
    per_clip = augmented.groupby("wav_id")[["aug", "aug_copy"]].apply(lambda g: sorted(zip(g["aug"], g["aug_copy"])))
    assert set(per_clip.index) == {"ok0", "ok1", "ok2", "ok5"}
    assert all(v == [("noise", 0), ("noise", 1), ("pitch", 0), ("stretch", 0)] for v in per_clip)
    assert metrics["augmented_by_method"] == {"noise": 8, "stretch": 4, "pitch": 4}
    originals = index[index["aug"] == ""].set_index("wav_id")
    assert list(originals.index) == ["ok0", "ok1", "ok2", "ok3", "ok4", "ok5"]          # labels order
    assert (augmented.merge(originals[["fold", "label_id"]], left_on="wav_id", right_index=True, suffixes=("", "_o"))
            .eval("fold == fold_o and label_id == label_id_o").all())                  # copies keep fold and label
    # an original row is the feature of the decoded clip; its augmented copies differ from it
    ok1 = decode_clip(corpus.loc[1, "wav_path"], 16000).wave
    expected = FeatureExtractor(FeatureSpec.from_params("melmean", AUDIO), CPU)([ok1])[0]
    np.testing.assert_allclose(features[index.index[(index["wav_id"] == "ok1") & (index["aug"] == "")][0]], expected, atol=1e-4)
    rows_ok1 = features[index.index[index["wav_id"] == "ok1"]]
    assert len({r.tobytes() for r in rows_ok1}) == len(rows_ok1)
    assert metrics["stereo_clips_mixed_down"] == 2 and metrics["source_sample_rates"] == {"22050": 3, "48000": 3}
    assert runtime["x_real_time"] > 0


def test_one_pass_serves_every_kind_with_the_same_augmented_copies(corpus, tmp_path):
    both, _ = run(corpus, tmp_path / "both", kinds=("mel", "melmean"))
    alone, _ = run(corpus, tmp_path / "alone", kinds=("mel",))
    assert (tmp_path / "both" / "mel" / "shard-000.npy").read_bytes() == (tmp_path / "alone" / "mel" / "shard-000.npy").read_bytes()
    mel_index, mel = load_features(tmp_path / "both" / "mel")
    mean_index, _ = load_features(tmp_path / "both" / "melmean")
    assert mel_index.drop(columns=["shard", "row"]).equals(mean_index.drop(columns=["shard", "row"]))
    assert mel.dtype == np.float16 and both["mel"]["bytes_per_row"] == 128 * 400 * 2      # half of float32's
    assert both["melmean"]["dtype"] == "float32" and both["augmented_by_method"] == alone["augmented_by_method"]
    ok1 = decode_clip(corpus.loc[1, "wav_path"], 16000).wave  # float16 rows are the float32 features, rounded
    exact = FeatureExtractor(FeatureSpec.from_params("mel", AUDIO), CPU)([ok1])[0]
    stored = mel[mel_index.index[(mel_index["wav_id"] == "ok1") & (mel_index["aug"] == "")][0]].astype(np.float32)
    assert np.abs(stored - exact).max() < 0.05 + 1e-3 * np.abs(exact).max()


def test_same_seed_same_bytes_whatever_the_workers_and_budget(corpus, tmp_path):
    first, _ = run(corpus, tmp_path / "a")
    again, _ = run(corpus, tmp_path / "b", workers=2)
    assert first == again
    for name in ["index.parquet", "failures.csv", "feature.json", "shard-000.npy"]:
        assert (tmp_path / "a" / "melmean" / name).read_bytes() == (tmp_path / "b" / "melmean" / name).read_bytes(), name
    other, _ = run(corpus, tmp_path / "c", augment=AugmentSpec.from_params({**AUGMENT.__dict__, "seed": 8}))
    _, a = load_features(tmp_path / "a" / "melmean")
    index, c = load_features(tmp_path / "c" / "melmean")
    noise = (index["aug"] == "noise").to_numpy()
    assert not np.allclose(a[noise], c[noise]) and np.array_equal(a[~noise], c[~noise])   # the augment seed moves noise only
    mel, _ = run(corpus, tmp_path / "m", kinds=("mel",), workers=2, augment=AugmentSpec())
    assert (mel["mel"]["rows"], mel["mel"]["augmented_rows"]) == (6, 0)


def test_augmentation_depends_only_on_seed_wav_method_copy_and_matches_librosa():
    import librosa

    wave = tone(1.0)
    one = add_noise(wave, AUGMENT, rng_for(7, "a", "noise", 0))
    assert np.array_equal(one, add_noise(wave, AUGMENT, rng_for(7, "a", "noise", 0)))
    assert not np.array_equal(one, add_noise(wave, AUGMENT, rng_for(7, "a", "noise", 1)))
    assert not np.array_equal(one, add_noise(wave, AUGMENT, rng_for(7, "b", "noise", 0)))
    assert np.abs(one - wave).max() < 0.005 * np.abs(wave).max() * 6           # amp ≤ 0.005·max|x| (σ units)
    waves = [tone(1.0), tone(2.3, freq=180, seed=1)]  # batched together, so the shorter one is padded
    copies = augment_batch(waves, ["a", "b"], 16000, AUGMENT)
    for wave, made in zip(waves, copies):
        by = {(m, c): y for m, c, y in made}
        assert len(by[("stretch", 0)]) == round(len(wave) / 0.8) and len(by[("pitch", 0)]) == len(wave)
        for (method, _), ref in ((("stretch", 0), librosa.effects.time_stretch(wave, rate=0.8)),
                                 (("pitch", 0), librosa.effects.pitch_shift(wave, sr=16000, n_steps=0.7))):
            assert log_spectral_distance(by[(method, 0)], ref) < 1.0, method   # dB, over the 80 dB below the peak
    with pytest.raises(ValueError, match="unknown"):
        AugmentSpec.from_params({"methods": ["reverb"], "copies": 1})


def test_too_many_failures_is_a_clear_error(corpus, tmp_path):
    metrics, _ = run(corpus, tmp_path / "out", augment=AugmentSpec())
    check_failures(metrics, tmp_path / "out" / "melmean", 0.6, "audio_features")     # 7/13 ≤ 60 %: fine
    with pytest.raises(TooManyFailures) as err:
        check_failures(metrics, tmp_path / "out" / "melmean", 0.02, "audio_features")
    message = str(err.value)
    for part in ["7 of 13 clips failed", "53.8%", "audio.max_failure_fraction=0.02", "bad_corrupt.wav", "undecodable"]:
        assert part in message, message


def test_stage_writes_outputs_and_fails_without_touching_them(corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("data").mkdir()
    corpus.to_parquet("data/labels.parquet", index=False)
    audio = {**AUDIO, "min_rms_dbfs": -60.0, "augment": {"methods": ["noise"], "copies": 1, "seed": 3},
             "mfcc": {**AUDIO["mfcc"], "augment": True}}
    Path("params.yaml").write_text(yaml.safe_dump({"audio": audio}))
    spec = importlib.util.spec_from_file_location("audio_features_stage", ROOT / "stages" / "audio_features.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    argv = stage_argv("extra_audio_features", "mfcc")[2:]  # dvc.yaml's arguments
    stage.main(argv)
    metrics = json.loads(Path("reports/audio_features_mfcc.json").read_text())
    assert json.loads(Path("metrics/audio_features_mfcc.json").read_text()) == {  # the headline: a few counts
        "clips_in": metrics["clips_in"], "clips": metrics["clips"], "failed": 7, "audio_seconds": metrics["audio_seconds"]}
    assert metrics["mfcc"]["feature_shape"] == [40, 400] and metrics["mfcc"]["augmented_rows"] == 4 and metrics["failed"] == 7
    assert "x_real_time" in json.loads(Path("reports/runtime/audio_features_mfcc.json").read_text())
    before = {p.name: p.read_bytes() for p in Path("data/features/mfcc").iterdir()}
    Path("params.yaml").write_text(yaml.safe_dump({"audio": {**audio, "max_failure_fraction": 0.1}}))
    with pytest.raises(TooManyFailures, match="max_failure_fraction=0.1"):
        stage.main(argv)
    assert {p.name: p.read_bytes() for p in Path("data/features/mfcc").iterdir()} == before
    assert not [p for p in Path("data/features").iterdir() if p.name.startswith(".")]  # no temp directory left


def test_memory_follows_the_batch_budget_not_a_ten_minute_clip(tmp_path):
    """Peak RSS of a whole pass (mel + melmean, augmentation on) over clips including one of 10 minutes at 48 kHz,
    measured in a fresh process: the crop and the sample budget keep it far below what the clip would need."""
    import subprocess
    import sys

    wav = tmp_path / "wav"
    wav.mkdir()
    rows = []
    for i, seconds in enumerate([600.0, 3.0, 4.5, 2.0]):
        sf.write(wav / f"c{i}.wav", tone(seconds, rate=48000, seed=i), 48000, subtype="PCM_16")
        rows.append({"wav_id": f"c{i}", "wav_path": str(wav / f"c{i}.wav"), "split": "train", "fold": i % 2,
                     "label": "neutral", "label_id": 2})
    pd.DataFrame(rows).to_parquet(tmp_path / "labels.parquet")
    (tmp_path / "audio.json").write_text(json.dumps({**AUDIO, "melmean": {**AUDIO["melmean"], "max_seconds": 20}}))
    script = f"""
import json, pandas as pd, torch
from pathlib import Path
from koemo.features.mel.augment import AugmentSpec
from koemo.features.mel.cache import extract_pass
from koemo.features.mel.spectral import FeatureSpec
audio = json.loads(Path({str(tmp_path / "audio.json")!r}).read_text())
labels = pd.read_parquet({str(tmp_path / "labels.parquet")!r})
specs = [FeatureSpec.from_params(k, audio) for k in ("mel", "melmean")]
augment = AugmentSpec.from_params({{"methods": ["noise", "stretch", "pitch"], "copies": 1, "seed": 7}})
metrics, _ = extract_pass(labels, specs, augment, [Path({str(tmp_path)!r}) / k for k in ("mel", "melmean")], 2, 64.0,
                          device=torch.device("cpu"), progress=False)
# VmHWM: this process's own peak (ru_maxrss would also count the pages it shared with pytest before exec)
peak_kib = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
print(json.dumps({{"rss_kib": peak_kib, "clips": metrics["clips"],
                  "cropped": metrics["melmean"]["cropped_clips"]}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["clips"] == 4 and result["cropped"] == 1
    print(f"peak RSS {result['rss_kib'] / 1024:.0f} MiB")
    assert result["rss_kib"] < 2 * 1024 * 1024, f"peak RSS {result['rss_kib'] / 1024:.0f} MiB"


def test_shards_split_and_load_back_in_index_order(tmp_path):
    columns = {"wav_id": str, "aug": str, "aug_copy": "int64", "split": str, "fold": "int64", "label": str, "label_id": "int64"}
    writer = ShardWriter(tmp_path, (3,), columns, rows_per_shard=2)
    values = np.arange(15, dtype=np.float32).reshape(5, 3)
    meta = [{"wav_id": f"w{i}", "aug": "", "aug_copy": 0, "split": "train", "fold": 0, "label": "neutral", "label_id": 2}
            for i in range(5)]
    writer.add(values[:3], meta[:3])
    writer.add(values[3:], meta[3:])
    index = writer.close()
    assert sorted(p.name for p in tmp_path.glob("shard-*.npy")) == ["shard-000.npy", "shard-001.npy", "shard-002.npy"]
    assert index[["shard", "row"]].values.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1], [2, 0]]
    loaded_index, loaded = load_features(tmp_path)
    assert np.array_equal(loaded, values) and list(loaded_index["wav_id"]) == [f"w{i}" for i in range(5)]


def test_kinds_sharing_augmentation_share_one_stage_and_others_get_their_own():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    main = stages["audio_features"]
    assert "--kinds mel melmean" in main["cmd"] and main["outs"][:2] == ["data/features/mel", "data/features/melmean"]
    assert {"audio.mel", "audio.melmean", "audio.augment"} <= set(main["params"])
    assert not any(p.startswith(("audio.mfcc", "audio.extra_features")) for p in main["params"])  # -S audio.mfcc… reruns no default stage
    extra = stages["extra_audio_features"]
    assert extra["foreach"] == "${audio.extra_features}" and extra["do"]["outs"][0] == "data/features/${item}"
    assert all(o.startswith("reports/") for o in main["outs"][2:] + extra["do"]["outs"][1:])  # report + runtime
    assert "audio.${item}" in extra["do"]["params"] and not any(p in ("audio.mel", "audio.melmean") for p in extra["do"]["params"])
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    read = {params["train_audio"]["features"], params["train_multimodal"]["audio_features"]}
    assert read == {"mel", "melmean"} and "mfcc" not in params["audio"]["extra_features"]  # no dead work by default
