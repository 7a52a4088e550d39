"""Hub loading, hardened: safetensors only, pinned revisions, gradient checkpointing off, a one-line load report.

Tiny random-init models stand in for the real checkpoints, installed in an offline HF cache (`hf_cache`); nothing
is downloaded.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from koemo.core.hub import EncoderUnavailable
from koemo.ssl.registry import AudioEncoderSpec, load_audio_encoder
from koemo.text.registry import EncoderSpec, load_encoder
from koemo.tiny.text import build_tiny_encoder
from koemo.tiny.wav2vec2 import build_tiny_audio_encoder
from pipeline_repo import stage_argv
from test_text_encoders import TEXTS

REPO = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
TEXT_ID, AUDIO_ID = PARAMS["encoders"]["klue-roberta"]["hub_id"], PARAMS["audio_encoders"]["wav2vec2-ko"]["hub_id"]
TEXT_SPEC, AUDIO_SPEC = PARAMS["encoders"]["klue-roberta"], PARAMS["audio_encoders"]["wav2vec2-ko"]


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("text") / "model"
    build_tiny_encoder("tiny-roberta", TEXTS, {**PARAMS["tiny_encoders"], "vocab_size": 300}, out)
    (out / "koemo_encoder.json").unlink()  # a stand-in for a real download: its source is the hub id
    return out


@pytest.fixture(scope="module")
def tiny_audio(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("audio") / "model"
    build_tiny_audio_encoder(PARAMS["tiny_audio_encoders"], out)
    (out / "koemo_encoder.json").unlink()
    return out


def _copy(src: Path, dest: Path, drop: tuple[str, ...] = (), config: dict | None = None) -> Path:
    shutil.copytree(src, dest)
    for name in drop:
        (dest / name).unlink()
    if config:
        path = dest / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    return dest


# ---- safetensors only ----------------------------------------------------------------------------------------------

def test_a_cached_snapshot_without_weights_names_the_encoder_and_how_to_fetch_it(hf_cache, tiny_text, tiny_audio, tmp_path):
    hf_cache.install(TEXT_ID, _copy(tiny_text, tmp_path / "t", drop=("model.safetensors",)), commit=TEXT_SPEC["revision"])
    hf_cache.install(AUDIO_ID, _copy(tiny_audio, tmp_path / "a", drop=("model.safetensors",)), commit=AUDIO_SPEC["revision"])
    for load, name, spec, hub_id, kind in ((load_encoder, "klue-roberta", TEXT_SPEC, TEXT_ID, "Text encoder"),
                                           (load_audio_encoder, "wav2vec2-ko", AUDIO_SPEC, AUDIO_ID, "Audio encoder")):
        with pytest.raises(EncoderUnavailable) as caught:
            load(name, spec)
        message = str(caught.value)
        for needed in (f"{kind} '{name}'", f"the cached snapshot of {hub_id}", "lacks model.safetensors (the weights)",
                       "An interrupted download? Fetch the needed files again: "
                       f"`hf download {hub_id} --revision {spec['revision']} --include config.json", ".path"):
            assert needed in message, (needed, message)


def test_pickle_weights_are_refused_with_how_to_convert_them(tiny_text, tmp_path):
    model = _copy(tiny_text, tmp_path / "pickled", drop=("model.safetensors",))
    (model / "pytorch_model.bin").write_bytes(b"not even read")
    with pytest.raises(EncoderUnavailable) as caught:
        load_encoder("mine", {"path": str(model)})
    message = str(caught.value)
    for needed in (f"encoders.mine.path = {model}", "lacks model.safetensors", "It holds pytorch_model.bin instead",
                   "koemo loads only safetensors weights", "save_pretrained('OUT')", "encoders.mine.revision"):
        assert needed in message, (needed, message)


def test_a_sharded_checkpoint_needs_every_shard(tiny_text, tmp_path):
    model = _copy(tiny_text, tmp_path / "sharded", drop=("model.safetensors",))
    (model / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    shutil.copy(tiny_text / "model.safetensors", model / "model-00001-of-00002.safetensors")
    with pytest.raises(EncoderUnavailable, match=r"lacks 1 of the 2 shards its model.safetensors.index.json lists "
                                                 r"\(model-00002-of-00002.safetensors\)"):
        load_encoder("mine", {"path": str(model)})


def test_a_remaining_os_error_is_an_encoder_unavailable(tiny_audio, tmp_path):
    model = _copy(tiny_audio, tmp_path / "truncated")
    (model / "preprocessor_config.json").write_text('{"feature_size": 1,')  # cut short by a full disk
    with pytest.raises(EncoderUnavailable) as caught:
        load_audio_encoder("mine", {"path": str(model)})
    message = str(caught.value)
    assert message.startswith(f"Audio encoder 'mine' (audio_encoders.mine.path = {model}): Wav2Vec2FeatureExtractor "
                              f"could not load {model}: It looks like the config file")
    assert "Only safetensors weights (model.safetensors) are loaded" in message and "audio_encoders.mine.path" in message


def test_the_text_embeddings_stage_reports_missing_weights_without_a_traceback(hf_cache, tiny_text, tmp_path):
    hf_cache.install(TEXT_ID, _copy(tiny_text, tmp_path / "t", drop=("model.safetensors",)), commit=TEXT_SPEC["revision"])
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    pd.DataFrame({"wav_id": ["a"], "text": [TEXTS[0]]}).to_parquet(work / "data/labels.parquet")
    params = {"encoders": {"klue-roberta": TEXT_SPEC}, "text_embeddings": {"batch_size": 4, "device": "cpu"}}
    (work / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    done = subprocess.run(stage_argv("text_embeddings", "klue-roberta", work / "params.yaml"), cwd=work,
                          capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"text_embeddings@klue-roberta: Text encoder 'klue-roberta': the cached snapshot of "
                                  f"{TEXT_ID}@{TEXT_SPEC['revision']} at ")
    assert not (work / "data/embeddings").exists() and not (work / "metrics").exists() and not (work / "reports").exists()


# ---- revision --------------------------------------------------------------------------------------------------------

def test_a_pinned_revision_loads_that_commit_and_is_named_in_the_source(hf_cache, tiny_audio, tmp_path):
    old, new = "a" * 40, "b" * 40
    hf_cache.install(AUDIO_ID, tiny_audio, commit=old)
    other = tmp_path / "other"
    build_tiny_audio_encoder({**PARAMS["tiny_audio_encoders"], "seed": 5}, other)
    (other / "koemo_encoder.json").unlink()
    hf_cache.install(AUDIO_ID, other, commit=new)  # refs/main now names `new`
    latest = load_audio_encoder("wav2vec2-ko", {**AUDIO_SPEC, "revision": None})
    pinned = load_audio_encoder("wav2vec2-ko", {**AUDIO_SPEC, "revision": old})
    by_ref = load_audio_encoder("wav2vec2-ko", {**AUDIO_SPEC, "revision": "main"})
    # lineage names the commit loaded, never a ref: a moved main is a changed source
    assert latest.source == by_ref.source == f"{AUDIO_ID}@{new}" and pinned.source == f"{AUDIO_ID}@{old}"
    key = "feature_projection.projection.weight"
    assert not torch.equal(latest.model.state_dict()[key], pinned.model.state_dict()[key])
    missing = "c" * 40
    with pytest.raises(EncoderUnavailable, match=rf"(?s)hub id {AUDIO_ID}@{missing}.*hf download {AUDIO_ID} --revision {missing}"):
        load_audio_encoder("wav2vec2-ko", {**AUDIO_SPEC, "revision": missing})


def test_specs_accept_a_revision():
    assert AudioEncoderSpec.from_params("x", {"hub_id": "org/x", "revision": "r1"}).weights().hub_source == "org/x@r1"
    assert EncoderSpec.from_params("x", {"hub_id": "org/x", "revision": "r1"}).weights().hub_kwargs == {"revision": "r1"}
    assert EncoderSpec.from_params("x", {"hub_id": "org/x", "path": "p", "revision": "r1"}).weights().hub_kwargs == {}


# ---- gradient checkpointing ------------------------------------------------------------------------------------------

def test_gradient_checkpointing_saved_in_a_config_is_turned_off_unless_asked_for(tiny_text, tiny_audio, tmp_path):
    """XLS-R fine-tunes often save "gradient_checkpointing": true; transformers would turn it on at load."""
    text = _copy(tiny_text, tmp_path / "t", config={"gradient_checkpointing": True})
    audio = _copy(tiny_audio, tmp_path / "a", config={"gradient_checkpointing": True})
    for model in (load_encoder("t", {"path": str(text)}).model, load_audio_encoder("a", {"path": str(audio)}).model):
        assert not model.is_activation_checkpointing and model.config.gradient_checkpointing is False
    for model in (load_encoder("t", {"path": str(text)}, gradient_checkpointing=True).model,
                  load_audio_encoder("a", {"path": str(audio)}, gradient_checkpointing=True).model):
        assert model.is_activation_checkpointing and model.config.gradient_checkpointing is False  # never saved on


# ---- load report -----------------------------------------------------------------------------------------------------

@pytest.fixture
def shown_reports():
    """transformers' load-report records that reach its handlers (i.e. get printed); its logger does not propagate."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("transformers.modeling_utils")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_a_dropped_ctc_head_is_one_line_not_a_report(hf_cache, tmp_path, caplog, shown_reports):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    checkpoint = tmp_path / "ctc"
    Wav2Vec2ForCTC(Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                  conv_dim=[16, 16], conv_kernel=[10, 8], conv_stride=[5, 8], vocab_size=12,
                                  num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, feat_extract_norm="layer",
                                  do_stable_layer_norm=True)).save_pretrained(checkpoint)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(checkpoint)
    hf_cache.install(AUDIO_ID, checkpoint, commit=AUDIO_SPEC["revision"])
    with caplog.at_level(logging.WARNING, logger="koemo.core.hub"):
        load_audio_encoder("wav2vec2-ko", AUDIO_SPEC)
    assert not [r for r in shown_reports if "LOAD REPORT" in r.getMessage()]
    assert [r.getMessage() for r in caplog.records if r.name == "koemo.core.hub"] == [
        "wav2vec2-ko: 2 checkpoint tensors not used (lm_head.*); expected when a fine-tuned/pretraining checkpoint is "
        "read as an encoder"]


def test_a_newly_initialised_pooler_is_named_as_unused(tmp_path, caplog):
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    checkpoint = tmp_path / "mlm"
    BertForMaskedLM(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32)).save_pretrained(checkpoint)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghij"]
    BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}).save_pretrained(checkpoint)
    with caplog.at_level(logging.WARNING, logger="koemo.core.hub"):
        load_encoder("mlm", {"path": str(checkpoint)})
    lines = [r.getMessage() for r in caplog.records if r.name == "koemo.core.hub"]
    assert lines == ["mlm: 5 checkpoint tensors not used (cls.*); expected when a fine-tuned/pretraining checkpoint "
                     "is read as an encoder",
                     "mlm: 2 tensors not in the checkpoint, newly initialised (pooler.*); koemo does not use them "
                     "(it pools the hidden states)"]


def test_a_failed_load_still_shows_transformers_report(tiny_text, tmp_path, shown_reports):
    model = _copy(tiny_text, tmp_path / "mismatch", config={"intermediate_size": 40})
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
        load_encoder("mismatch", {"path": str(model)})
    reports = [r.getMessage() for r in shown_reports if "LOAD REPORT" in r.getMessage()]
    assert len(reports) == 1 and "MISMATCH" in reports[0]  # the details of what went wrong are not swallowed
