"""Audio encoder registry, the tiny offline wav2vec2, and per-layer pooled SSL features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from koemo.core.hub import EncoderUnavailable
from koemo.core.params import load_params
from koemo.ssl.pooling import ClipTooShort, PoolStats, normalize, plan_batches, pool_clips, split_chunks, to_fp16
from koemo.ssl.registry import AudioEncoderSpec, load_audio_encoder
from koemo.tiny.wav2vec2 import build_tiny_audio_encoder, build_tiny_audio_encoders

from group_norm_wav2vec2 import write_group_norm_wav2vec2
from hf_cache import assert_how_to_provide
from signals import speech_like

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_params(REPO / "params.yaml")
TINY = PARAMS["tiny_audio_encoders"]
REAL_NAMES = ("kresnik", "xlsr", "facebook", "wav2vec2-base", "wav2vec2-large")
RATE = 16000


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _waves(lengths, seed=0) -> list[np.ndarray]:
    """Speech-like test signals: a few harmonics with a wobbling pitch, plus noise."""
    rng = np.random.default_rng(seed)
    return [speech_like(rng, n, RATE, harmonics=4, noise=0.05) for n in lengths]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("audio_encoders")
    build_tiny_audio_encoders(TINY, root)
    return root


@pytest.fixture(scope="module")
def tiny(tiny_root):
    return load_audio_encoder("tiny-wav2vec2", {"path": str(tiny_root / "tiny-wav2vec2")})


def test_tiny_build_is_byte_identical_and_says_local_tiny(tiny_root, tmp_path):
    again = tmp_path / "again"
    build_tiny_audio_encoders(TINY, again)
    files = _files(tiny_root / "tiny-wav2vec2")
    assert _files(again) == _files(tiny_root)
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "koemo_encoder.json"} <= set(files)
    marker = json.loads(files["koemo_encoder.json"])
    assert marker["source"] == "local-tiny" and marker["frame_ms"] == 20.0
    text = b"".join(v for k, v in files.items() if k.endswith(".json")).decode().lower()
    assert not [real for real in REAL_NAMES if real in text], "the tiny encoder mentions a real model"
    other = build_tiny_audio_encoder({**TINY, "seed": TINY["seed"] + 1}, tmp_path / "seed1")
    assert other["parameters"] == marker["parameters"]
    assert _files(tmp_path / "seed1")["model.safetensors"] != files["model.safetensors"]


def test_tiny_encoder_loads_with_its_params(tiny):
    config = tiny.model.config
    assert tiny.source == "local-tiny" and tiny.architecture == "Wav2Vec2Model"
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (
        TINY["hidden_size"], TINY["layers"], TINY["heads"])
    assert tiny.layers == TINY["layers"] + 1 and tiny.dim == TINY["hidden_size"]
    assert tiny.sample_rate == RATE and tiny.uses_attention_mask and tiny.normalize
    assert not any(p.requires_grad for p in tiny.model.parameters()) and not tiny.model.training
    # The receptive field yields exactly one frame, one sample less none; 1 s gives 49 frames of 20 ms, as wav2vec2.
    assert tiny.frames([tiny.min_samples - 1, tiny.min_samples, RATE]).tolist() == [0, 1, 49]


def test_features_have_shape_clips_layers_dim_and_are_deterministic(tiny):
    waves = _waves([16000, 40000, 9000, 24000])
    stats = PoolStats()
    first = pool_clips(tiny, waves, chunk_seconds=15, batch_seconds=4, stats=stats)
    second = pool_clips(tiny, waves, chunk_seconds=15, batch_seconds=4)
    assert first.shape == (4, TINY["layers"] + 1, TINY["hidden_size"]) and first.dtype == np.float32
    assert np.array_equal(first, second) and np.isfinite(first).all()
    assert stats.chunks == 4 and stats.chunked_clips == 0 and stats.batches > 1
    assert stats.frames == int(tiny.frames([len(w) for w in waves]).sum())
    # Each layer is its own summary: no two layers of a clip coincide.
    assert all(not np.allclose(first[0, a], first[0, b]) for a in range(3) for b in range(a + 1, 3))


def test_masked_pooling_ignores_padding(tiny):
    short, long_ = _waves([9000, 48000], seed=3)
    alone = pool_clips(tiny, [short], chunk_seconds=15, batch_seconds=100)[0]
    together = pool_clips(tiny, [short, long_], chunk_seconds=15, batch_seconds=100)[0]  # padded to 3 s in one batch
    assert np.allclose(together, alone, atol=1e-4)
    # What padding would do unmasked: the same clip zero-padded to the long one, pooled over every frame.
    padded = np.zeros(48000, dtype=np.float32)
    padded[:9000] = normalize(short)
    with torch.inference_mode():
        out = tiny.model(torch.from_numpy(padded)[None], output_hidden_states=True)
    naive = out.last_hidden_state[0].mean(dim=0).numpy()
    assert not np.allclose(naive, alone[-1], atol=1e-2)


def test_group_norm_models_batch_equal_lengths_only(tmp_path):
    """wav2vec2-base normalises its first conv over the whole padded input, so it must never see padding."""
    write_group_norm_wav2vec2(tmp_path)
    encoder = load_audio_encoder("group-norm", {"path": str(tmp_path)})
    assert not encoder.uses_attention_mask and encoder.source == f"local:{tmp_path}"
    waves = _waves([8000, 20000, 8000], seed=5)
    seen = []
    handle = encoder.model.register_forward_pre_hook(lambda m, a, kw: seen.append((tuple(a[0].shape), kw.get("attention_mask"))),
                                                     with_kwargs=True)
    try:
        together = pool_clips(encoder, waves, chunk_seconds=15, batch_seconds=100)
    finally:
        handle.remove()
    assert sorted(shape for shape, _ in seen) == [(1, 20000), (2, 8000)] and all(m is None for _, m in seen)
    alone = np.stack([pool_clips(encoder, [w], 15, 100)[0] for w in waves])
    assert np.allclose(together, alone, atol=1e-5)


def test_long_clips_are_chunked_and_pooled_weighted_by_frames(tiny):
    wave = _waves([50000], seed=7)[0]
    chunks = split_chunks(normalize(wave), 16000)
    assert [len(c) for c in chunks] == [12500] * 4  # near-equal: no short remainder
    stats = PoolStats()
    pooled = pool_clips(tiny, [wave], chunk_seconds=1.0, batch_seconds=100, stats=stats)[0]
    assert stats.chunks == 4 and stats.chunked_clips == 1
    tiny.normalize = False  # the chunks are already normalised as one clip
    try:
        per_chunk = pool_clips(tiny, chunks, chunk_seconds=15, batch_seconds=100)
    finally:
        tiny.normalize = True
    frames = tiny.frames([len(c) for c in chunks]).astype(np.float64)
    assert np.allclose(pooled, np.tensordot(frames / frames.sum(), per_chunk, axes=1), atol=1e-5)
    whole = pool_clips(tiny, [wave], chunk_seconds=15, batch_seconds=100)[0]
    assert not np.allclose(pooled, whole, atol=1e-3)  # chunks lose cross-chunk context: the param matters


def test_too_short_clips_and_fp16_range_are_reported(tiny):
    with pytest.raises(ClipTooShort):
        pool_clips(tiny, _waves([tiny.min_samples - 1]), chunk_seconds=15, batch_seconds=100)
    with pytest.raises(ValueError, match="chunk_seconds"):
        pool_clips(tiny, _waves([16000]), chunk_seconds=0.01, batch_seconds=100)
    stats = PoolStats()
    half = to_fp16(np.array([1.5, -1e6, 7e4], dtype=np.float32), stats)
    assert half.dtype == np.float16 and np.isfinite(half).all() and stats.fp16_clipped == 2
    with pytest.raises(FloatingPointError):
        to_fp16(np.array([np.nan], dtype=np.float32), stats)


def test_batches_fit_the_padded_budget_longest_first():
    lengths = [5, 9, 3, 9, 4, 20]
    batches = plan_batches(lengths, max_samples=18)
    assert [b.tolist() for b in batches] == [[5], [1, 3], [0, 4, 2]]
    assert all(len(b) * max(lengths[i] for i in b) <= 18 for b in batches if len(b) > 1)
    assert [b.tolist() for b in plan_batches([4, 5, 4, 5], 100, equal_lengths=True)] == [[1, 3], [0, 2]]


def _ctc_checkpoint(tmp_path: Path, group_norm: bool) -> tuple[Path, dict]:
    """A tiny CTC fine-tuned checkpoint laid out as the real hub repos are (ForCTC weights + preprocessor config)."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    out = tmp_path / ("group" if group_norm else "layer")
    torch.manual_seed(1)
    model = Wav2Vec2ForCTC(Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                          conv_dim=[16, 16], conv_kernel=[10, 8], conv_stride=[5, 8], vocab_size=12,
                                          num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                                          feat_extract_norm="group" if group_norm else "layer",
                                          do_stable_layer_norm=not group_norm))
    model.save_pretrained(out)
    Wav2Vec2FeatureExtractor(return_attention_mask=not group_norm).save_pretrained(out)
    return out, {k: v.clone() for k, v in model.wav2vec2.state_dict().items()}


def test_real_hub_ids_load_from_an_offline_hf_cache(hf_cache, tmp_path):
    encoders = {**PARAMS["audio_encoders"], "wav2vec2-base": {"hub_id": "facebook/wav2vec2-base"}}  # an unpinned entry
    for name, group_norm in (("wav2vec2-ko", False), ("wav2vec2-base", True)):
        checkpoint, base_weights = _ctc_checkpoint(tmp_path, group_norm)
        snapshot = hf_cache.install(encoders[name]["hub_id"], checkpoint, commit=encoders[name].get("revision"))
        encoder = load_audio_encoder(name, encoders[name])
        assert encoder.source == f"{encoders[name]['hub_id']}@{snapshot.name}" and encoder.architecture == "Wav2Vec2Model"
        assert encoder.uses_attention_mask is not group_norm
        loaded = encoder.model.state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in base_weights.items())  # the CTC head is dropped, nothing re-initialised
        features = pool_clips(encoder, _waves([12000, 20000]), chunk_seconds=15, batch_seconds=100)
        assert features.shape == (2, 3, 32) and np.isfinite(features).all()


def test_missing_models_give_one_clear_error(hf_cache, tmp_path):
    assert_how_to_provide(load_audio_encoder, "audio_encoders", "wav2vec2-ko", PARAMS["audio_encoders"]["wav2vec2-ko"],
                          hf_cache, "Audio encoder 'wav2vec2-ko'", "preprocessor_config.json")
    with pytest.raises(EncoderUnavailable, match="dvc repro tiny_audio_encoders"):
        load_audio_encoder("tiny-wav2vec2", {"path": str(tmp_path / "tiny-wav2vec2")})
    (tmp_path / "no-preprocessor").mkdir()
    (tmp_path / "no-preprocessor" / "config.json").write_text("{}")
    with pytest.raises(EncoderUnavailable, match="lacks preprocessor_config.json"):
        load_audio_encoder("x", {"path": str(tmp_path / "no-preprocessor")})


def test_audio_encoder_specs_are_validated():
    with pytest.raises(ValueError, match="hub_id"):
        AudioEncoderSpec.from_params("x", {})
    with pytest.raises(ValueError, match="unknown keys"):
        AudioEncoderSpec.from_params("x", {"path": "p", "pooling": "mean"})
    for name, spec in PARAMS["audio_encoders"].items():
        AudioEncoderSpec.from_params(name, spec)
    assert set(PARAMS["ssl"]["encoders"]) <= set(PARAMS["audio_encoders"])
    assert PARAMS["ssl"]["model"] in PARAMS["ssl"]["encoders"]


def test_extract_writes_a_cache_per_labels_row_and_lists_failures(tiny, tmp_path):
    import pandas as pd

    from koemo.clips.decode import Decoded
    from koemo.core.shards import load_shards
    from koemo.ssl.cache import extract_features

    lengths = [16000, 30000, 0, 12000, 200, 20000, 9000]
    waves = dict(zip([f"w{i}.wav" for i in range(len(lengths))], _waves(lengths, seed=11)))
    labels = pd.DataFrame({"wav_id": [f"id{i}" for i in range(len(lengths))], "wav_path": list(waves)})
    calls = []

    def decode(path, rate):
        assert rate == RATE
        calls.append(path)
        if path == "w2.wav":
            return Decoded(None, "undecodable", "not a RIFF file")
        return Decoded(waves[path], file_seconds=len(waves[path]) / RATE)

    runs = []
    for name in ("a", "b"):
        metrics, runtime = extract_features(tiny, labels, tmp_path / name, chunk_seconds=1.0, batch_seconds=2,
                                            block_clips=3, workers=0, progress=False, decode=decode)
        runs.append((metrics, _files(tmp_path / name)))
    assert runs[0] == runs[1]  # byte-identical cache, index and failure list; identical metrics
    assert calls == list(waves) * 2  # each clip decoded once per run, in labels order
    index, features = load_shards(tmp_path / "a")
    failures = pd.read_csv(tmp_path / "a" / "failures.csv")
    assert features.shape == (5, TINY["layers"] + 1, TINY["hidden_size"]) and features.dtype == np.float16
    assert index["wav_id"].tolist() == ["id0", "id1", "id3", "id5", "id6"] and index["row"].tolist() == list(range(5))
    assert failures[["wav_id", "reason"]].values.tolist() == [["id2", "undecodable"], ["id4", "too_short"]]
    expected = pool_clips(tiny, [waves["w1.wav"]], chunk_seconds=1.0, batch_seconds=2)[0]
    assert np.allclose(features[1].astype(np.float32), expected, atol=2e-3)
    assert metrics["clips_in"] == 7 and metrics["clips"] == 5 and metrics["failed"] == 2
    assert metrics["failures_by_reason"] == {"too_short": 1, "undecodable": 1}
    assert metrics["chunked_clips"] == 2 and metrics["source"] == "local-tiny"
    assert json.loads((tmp_path / "a" / "encoder.json").read_text())["source"] == "local-tiny"
    assert metrics["audio_seconds"] == pytest.approx(sum(lengths[i] for i in (0, 1, 3, 5, 6)) / RATE)
    assert runtime["device"] == "cpu" and runtime["x_real_time"] > 0


def test_failure_threshold_message_names_the_ssl_stage_and_files(tmp_path):
    import pandas as pd

    from koemo.clips.extraction import TooManyFailures, check_failures

    pd.DataFrame([{"wav_id": "a", "wav_path": "x/a.wav", "aug": "", "aug_copy": 0, "reason": "unreadable",
                  "detail": "bad header"}]).to_csv(
        tmp_path / "failures.csv", index=False)
    metrics = {"failed": 1, "clips_in": 4, "failures_by_reason": {"unreadable": 1}}
    check_failures(metrics, tmp_path, 0.5, stage="ssl_features@tiny-wav2vec2")  # 25 % ≤ 50 %: fine
    with pytest.raises(TooManyFailures, match=r"(?s)ssl_features@tiny-wav2vec2: 1 of 4 clips failed.*x/a.wav: unreadable"):
        check_failures(metrics, tmp_path, 0.1, stage="ssl_features@tiny-wav2vec2")
