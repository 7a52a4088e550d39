"""Text encoder registry, tiny offline encoders, batched embedding, and hub ids loaded from an offline cache."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from koemo.core.params import load_params
from koemo.text.embed import embed_labels, embed_texts, length_sorted_batches, pad_batch, pool
from koemo.text.registry import EncoderSpec, EncoderUnavailable, load_encoder
from koemo.text.sp_tokenizer import SentencePieceBertTokenizer
from koemo.tiny.text import TINY_ENCODERS, build_tiny_encoder, build_tiny_encoders

from hf_cache import assert_how_to_provide

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_params(REPO / "params.yaml")
TINY = PARAMS["tiny_encoders"]
REAL_NAMES = ("kobert", "klue", "koelectra", "monologg", "skt/", "roberta-base")

_SUBJECTS = ["나는", "오늘 우리 엄마가", "친구가", "그 사람은", "동생이", "선생님께서", "회사 동료가"]
_PREDICATES = ["정말 화가 났어요", "너무 기뻐서 웃었어요", "그냥 평범하게 지냈어요", "슬퍼서 한참 울었어요",
               "약속에 또 늦어서 짜증이 나요", "시험에 붙어서 행복했어요", "밥을 먹고 집에 갔어요"]
_TAILS = ["", " 진짜로.", " 왜 그런지 모르겠어.", " 다음 주에 또 보자!", " 어제 일 때문에 그래?"]
TEXTS = [f"{s} {p}{t}" for s, p, t in itertools.product(_SUBJECTS, _PREDICATES, _TAILS)][::3]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _tiny_spec(root: Path, name: str, pooling: str = "mean") -> dict:
    return {"path": str(root / name), "tokenizer": "auto", "pooling": pooling, "max_length": 64}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("encoders")
    build_tiny_encoders(TEXTS, TINY, root)
    return root


def test_tiny_build_is_byte_identical_and_says_local_tiny(tiny_root, tmp_path):
    again = tmp_path / "again"
    build_tiny_encoders(list(reversed(TEXTS)), TINY, again)  # input order must not matter
    assert _files(again) == _files(tiny_root)
    for name in TINY_ENCODERS:
        files = _files(tiny_root / name)
        assert {"config.json", "model.safetensors", "tokenizer.json", "koemo_encoder.json"} <= set(files)
        marker = json.loads(files["koemo_encoder.json"])
        assert marker["source"] == "local-tiny" and marker["hidden_size"] == TINY["hidden_size"]
        text = b"".join(v for k, v in files.items() if k.endswith(".json")).decode().lower()
        assert not [real for real in REAL_NAMES if real in text], f"{name} mentions a real model"
    other_seed = tmp_path / "seed1"
    build_tiny_encoder("tiny-roberta", TEXTS, {**TINY, "seed": TINY["seed"] + 1}, other_seed)
    assert _files(other_seed)["model.safetensors"] != _files(again / "tiny-roberta")["model.safetensors"]


def test_wordpiece_vocab_is_the_same_in_every_process():
    """The tokenizers WordPiece trainer's tie-breaks follow Rust hash order (a new order per process), so the
    byte-identity above could pass in one process and fail across two; this is the check that spans two."""
    import subprocess
    import sys

    from koemo.tiny.text import train_wordpiece_vocab

    code = ("import json, sys; from koemo.tiny.text import train_wordpiece_vocab; "
            "print(json.dumps(train_wordpiece_vocab(json.loads(sys.stdin.read()), 120)))")
    runs = [subprocess.run([sys.executable, "-c", code], input=json.dumps(TEXTS), capture_output=True, text=True,
                           check=True).stdout for _ in range(3)]
    vocab = train_wordpiece_vocab(TEXTS, 120)
    assert all(json.loads(run) == vocab for run in runs)
    assert len(vocab) == 120 and "##요" in vocab and "[PAD]" in vocab
    unbounded = train_wordpiece_vocab(TEXTS, 10_000)  # merges run out once every word is one token
    assert {word for text in TEXTS for word in text.replace("!", " ").replace("?", " ").replace(".", " ").split()} <= set(unbounded)


@pytest.mark.parametrize("name", sorted(TINY_ENCODERS))
def test_tiny_encoder_embeds_korean_deterministically(tiny_root, name):
    encoder = load_encoder(name, _tiny_spec(tiny_root, name))
    assert encoder.source == "local-tiny"
    config = encoder.model.config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (
        TINY["hidden_size"], TINY["layers"], TINY["heads"])
    assert config.vocab_size == len(encoder.tokenizer) <= TINY["vocab_size"]
    ids = encoder.encode(TEXTS)
    unk = encoder.tokenizer.unk_token_id
    assert all(unk not in row for row in ids), "training-split Korean text must tokenise without [UNK]"
    assert ids[0][0] == encoder.tokenizer.cls_token_id and ids[0][-1] == encoder.tokenizer.sep_token_id
    first = embed_texts(encoder, TEXTS, batch_size=8, progress=False)
    second = embed_texts(encoder, TEXTS, batch_size=8, progress=False)
    assert first.shape == (len(TEXTS), TINY["hidden_size"]) and first.dtype == np.float32
    assert np.isfinite(first).all()
    assert np.array_equal(first, second)
    assert len(np.unique(first.round(5), axis=0)) == len(TEXTS)


def test_masked_mean_pooling_ignores_padding():
    hidden = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    garbage = hidden.clone()
    garbage[0, 3:] = 1e6
    pooled = pool(garbage, mask, "mean")
    assert torch.allclose(pooled[0], hidden[0, :3].mean(dim=0))
    assert torch.allclose(pooled[1], hidden[1].mean(dim=0))
    assert torch.equal(pool(garbage, mask, "cls"), hidden[:, 0])


@pytest.mark.parametrize("name,pooling", [("tiny-roberta", "mean"), ("tiny-bert", "cls"), ("tiny-electra", "mean")])
def test_embeddings_do_not_depend_on_batch_composition(tiny_root, name, pooling):
    encoder = load_encoder(name, _tiny_spec(tiny_root, name, pooling))
    alone = embed_texts(encoder, TEXTS, batch_size=1, progress=False)
    together = embed_texts(encoder, TEXTS, batch_size=len(TEXTS), progress=False)
    # Everything padded to max_length in one batch: a pooling that saw padding would differ by far more.
    input_ids, mask = pad_batch(encoder.encode(TEXTS), encoder.pad_id, length=encoder.max_length)
    with torch.inference_mode():
        naive = pool(encoder.model(input_ids=input_ids, attention_mask=mask).last_hidden_state, mask, pooling).numpy()
    assert np.allclose(alone, together, atol=1e-5)
    assert np.allclose(alone, naive, atol=1e-5)
    short, long_ = TEXTS[0], max(TEXTS, key=len)
    padded = embed_texts(encoder, [short, long_], batch_size=2, progress=False)[0]
    assert np.allclose(padded, alone[0], atol=1e-5)


def test_batches_are_length_sorted_and_padded_to_their_own_longest(tiny_root):
    assert [b.tolist() for b in length_sorted_batches([3, 9, 5, 9, 1], 2)] == [[1, 3], [2, 0], [4]]
    input_ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=1)
    assert input_ids.tolist() == [[5, 6, 7], [8, 1, 1]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    encoder = load_encoder("tiny-bert", _tiny_spec(tiny_root, "tiny-bert"))
    widths = []
    handle = encoder.model.register_forward_pre_hook(lambda m, a, kw: widths.append(kw["input_ids"].shape[1]),
                                                     with_kwargs=True)
    try:
        embed_texts(encoder, TEXTS, batch_size=10, progress=False)
    finally:
        handle.remove()
    lengths = sorted((len(row) for row in encoder.encode(TEXTS)), reverse=True)
    assert widths == [lengths[i] for i in range(0, len(lengths), 10)]
    assert widths[-1] < widths[0] < 64


def test_embed_labels_one_row_per_label_row_each_text_once(tiny_root):
    texts = [TEXTS[3], TEXTS[0], TEXTS[3], TEXTS[7], TEXTS[0]]
    labels = pd.DataFrame({"wav_id": [f"w{i}" for i in range(5)], "text": texts})
    encoder = load_encoder("tiny-electra", _tiny_spec(tiny_root, "tiny-electra"))
    calls = []
    original = encoder.encode
    encoder.encode = lambda batch: calls.append(list(batch)) or original(batch)
    embeddings, index, metrics, runtime = embed_labels(labels, encoder, batch_size=4, progress=False)
    assert calls == [sorted(set(texts))]
    assert embeddings.shape == (5, TINY["hidden_size"])
    assert np.array_equal(embeddings[0], embeddings[2]) and np.array_equal(embeddings[1], embeddings[4])
    assert not np.array_equal(embeddings[0], embeddings[1])
    assert index["wav_id"].tolist() == labels["wav_id"].tolist() and index["row"].tolist() == list(range(5))
    assert metrics["rows"] == 5 and metrics["unique_texts"] == 3 and metrics["source"] == "local-tiny"
    assert metrics["dim"] == TINY["hidden_size"] and metrics["pooling"] == "mean"
    assert metrics["unknown_token_share"] == 0.0
    assert runtime["device"] == "cpu" and runtime["sentences_per_second"] > 0


def _kobert_like(tmp_path: Path) -> Path:
    """A tiny BertModel with a KoBERT-style SentencePiece vocabulary ([UNK] 0, [PAD] 1, [CLS] 2, [SEP] 3, [MASK] 4)."""
    import io

    import sentencepiece as spm
    from transformers import BertConfig, BertModel

    out = tmp_path / "kobert-like"
    out.mkdir()
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(TEXTS), model_writer=model, vocab_size=120,
                                   hard_vocab_limit=False, unk_id=0, unk_piece="[UNK]", pad_id=1, pad_piece="[PAD]",
                                   bos_id=-1, eos_id=-1, control_symbols=["[CLS]", "[SEP]", "[MASK]"],
                                   character_coverage=1.0, minloglevel=2, num_threads=1)
    (out / "spiece.model").write_bytes(model.getvalue())
    vocab = spm.SentencePieceProcessor(model_proto=model.getvalue()).get_piece_size()
    (out / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "XLNetTokenizer", "do_lower_case": False,
                                                           "remove_space": True, "keep_accents": False}))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, pad_token_id=1)).save_pretrained(out)
    return out


def test_real_hub_ids_load_from_an_offline_hf_cache(hf_cache, tiny_root, tmp_path):
    encoders = PARAMS["encoders"]
    hf_cache.install(encoders["koelectra"]["hub_id"], tiny_root / "tiny-electra", commit=encoders["koelectra"]["revision"])
    hf_cache.install(encoders["klue-roberta"]["hub_id"], tiny_root / "tiny-roberta",
                     commit=encoders["klue-roberta"]["revision"])
    snapshot = hf_cache.install(encoders["kobert"]["hub_id"], _kobert_like(tmp_path), commit=encoders["kobert"]["revision"])
    assert (snapshot / "spiece.model").is_symlink()
    for marker in hf_cache.hub.rglob("koemo_encoder.json"):
        marker.unlink()  # stand-ins for real downloads: no local-tiny marker, so the source is the hub id
    expected = {"koelectra": "ElectraModel", "klue-roberta": "RobertaModel", "kobert": "BertModel"}
    for name, architecture in expected.items():
        encoder = load_encoder(name, encoders[name])
        assert encoder.source == f"{encoders[name]['hub_id']}@{encoders[name]['revision']}"
        assert encoder.architecture == architecture
        assert encoder.pooling == encoders[name]["pooling"]
        vectors = embed_texts(encoder, TEXTS[:6], batch_size=4, progress=False)
        assert vectors.shape == (6, encoder.dim) and np.isfinite(vectors).all()
    kobert = load_encoder("kobert", encoders["kobert"])
    assert isinstance(kobert.tokenizer, SentencePieceBertTokenizer) and kobert.pad_id == 1
    ids = kobert.encode(["오늘 정말 화가 났어요", " ".join(TEXTS)])
    assert ids[0][0] == 2 and ids[0][-1] == 3 and 0 not in ids[0]
    assert len(ids[1]) == encoders["kobert"]["max_length"] and ids[1][-1] == 3


def test_missing_models_give_one_clear_error(hf_cache, tmp_path):
    assert_how_to_provide(load_encoder, "encoders", "koelectra", PARAMS["encoders"]["koelectra"], hf_cache)
    with pytest.raises(EncoderUnavailable, match="dvc repro tiny_encoders"):
        load_encoder("tiny-bert", {"path": str(tmp_path / "tiny-bert")})


def test_encoder_specs_are_validated():
    with pytest.raises(ValueError, match="hub_id"):
        EncoderSpec.from_params("x", {"pooling": "mean"})
    with pytest.raises(ValueError, match="pooling"):
        EncoderSpec.from_params("x", {"path": "p", "pooling": "max"})
    for name, spec in PARAMS["encoders"].items():
        EncoderSpec.from_params(name, spec)
    assert set(PARAMS["text"]["encoders"]) <= set(PARAMS["encoders"]) and PARAMS["text"]["model"] in PARAMS["encoders"]


def _no_hangul_encoder(root: Path) -> Path:
    """A tiny BERT whose vocabulary has no Hangul: every Korean word becomes [UNK] (as under a wrong vocabulary)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz.!?"]
    BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=False).save_pretrained(root)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=34, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(root)
    return root


def test_unknown_token_share_is_measured_without_special_tokens(tiny_root, tmp_path):
    from koemo.text.embed import unknown_token_share

    encoder = load_encoder("no-hangul", {"path": str(_no_hangul_encoder(tmp_path / "m")), "pooling": "cls"})
    ids = encoder.encode(["정말 화가 나요", "a b", ""])
    share, per_row = unknown_token_share(encoder, ids)
    assert share == 3 / 5 and per_row.tolist() == [1.0, 0.0, 0.0]  # [CLS]/[SEP] are not text
    tiny = load_encoder("tiny-bert", _tiny_spec(tiny_root, "tiny-bert"))
    assert unknown_token_share(tiny, tiny.encode(TEXTS))[0] == 0.0


def test_text_embeddings_stage_refuses_a_tokenizer_that_maps_korean_to_unk(tmp_path):
    """Run as dvc.yaml runs it: the share is above text_embeddings.max_unknown_share, so no embeddings are written."""
    import re
    import subprocess

    import yaml

    from pipeline_repo import stage_argv

    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    pd.DataFrame({"wav_id": ["a", "b"], "text": TEXTS[:2]}).to_parquet(work / "data/labels.parquet")
    pd.DataFrame({"wav_id": ["a", "b"], "text": TEXTS[:2], "source": "transcript"}).to_parquet(work / "data/texts.parquet")
    spec = {"path": str(_no_hangul_encoder(tmp_path / "m")), "tokenizer": "auto", "pooling": "cls", "max_length": 32}

    def run(settings: dict) -> subprocess.CompletedProcess:
        params = {"encoders": {"no-hangul": spec}, "text_embeddings": {"batch_size": 4, "device": "cpu", **settings}}
        (work / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
        return subprocess.run(stage_argv("text_embeddings", "no-hangul", work / "params.yaml"), cwd=work,
                              capture_output=True, text=True)

    done = run({})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    message = done.stderr[done.stderr.index("text_embeddings@"):]  # after transformers' progress bar
    assert re.match(r"text_embeddings@no-hangul: 9\d\.\d% of the tokens of 2 distinct texts are the unknown token "
                    r"\(more than text_embeddings.max_unknown_share = 5.0%\)", message), message
    for cause in ("do_lower_case", "not a Korean vocabulary", "encoders.no-hangul"):
        assert cause in message
    assert not (work / "data/embeddings").exists() and not (work / "metrics").exists() and not (work / "reports").exists()
    done = run({"max_unknown_share": 1.0})  # the threshold is a param: an expected share can be allowed
    assert done.returncode == 0, done.stderr
    assert json.loads((work / "metrics/text_embeddings_no-hangul.json").read_text())["unknown_token_share"] > 0.9
