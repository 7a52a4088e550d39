"""Tiny random-init BERT / RoBERTa / ELECTRA encoders with tokenizers trained on the corpus training split.

They stand in for KoBERT, KLUE-RoBERTa and KoELECTRA where no weights can be downloaded (the demo, the
tests): the same `transformers` architecture classes and loading path, but random weights, so their
embeddings carry no pretrained knowledge. Each directory gets a `koemo_encoder.json` marker with
source "local-tiny" so no output can mistake them for the real models. Same texts + params → byte-identical
files: the WordPiece vocabulary is learned here with deterministic tie-breaks, the byte-level BPE trainer
numbers its tokens deterministically, and weights come from a seeded generator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from koemo.tiny.save import save_tiny

TINY_ENCODERS = {"tiny-bert": "bert", "tiny-roberta": "roberta", "tiny-electra": "electra"}
WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
MAX_POSITIONS = 512


def _merge(symbols: list[str], a: str, b: str, merged: str) -> list[str]:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
            out.append(merged)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def train_wordpiece_vocab(texts: Sequence[str], vocab_size: int) -> dict[str, int]:
    """A cased WordPiece vocabulary (no accent stripping: NFD would split Hangul into jamo), learned as the
    `tokenizers` WordPiece trainer does — BPE merges of the most frequent adjacent pair, "##" marking
    word-internal pieces — but with ties broken by the pair itself: that trainer numbers its "##" alphabet in
    hash order, which changes its tie-breaks, so its vocabulary differs from process to process."""
    from collections import Counter, defaultdict

    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    splitter = pre_tokenizers.BertPreTokenizer()
    counts = Counter(word for text in texts for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text)))
    words = {w: [w[0], *(f"##{c}" for c in w[1:])] for w in sorted(counts)}
    vocab = [*WORDPIECE_SPECIALS, *sorted({s for symbols in words.values() for s in symbols})]
    known = set(vocab)
    pairs: Counter = Counter()
    holders: dict[tuple[str, str], set[str]] = defaultdict(set)
    for w, symbols in words.items():
        for pair in zip(symbols, symbols[1:]):
            pairs[pair] += counts[w]
            holders[pair].add(w)
    while len(vocab) < vocab_size and pairs:
        (a, b), _ = min(pairs.items(), key=lambda item: (-item[1], item[0]))
        merged = a + b[2:]
        for w in sorted(holders.pop((a, b))):
            old = words[w]
            for pair in zip(old, old[1:]):
                pairs[pair] -= counts[w]
                if pairs[pair] <= 0:
                    del pairs[pair]
            words[w] = _merge(old, a, b, merged)
            for pair in zip(words[w], words[w][1:]):
                pairs[pair] += counts[w]
                holders[pair].add(w)
        pairs.pop((a, b), None)
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
    return {token: i for i, token in enumerate(vocab)}


def train_byte_bpe(texts: Sequence[str], vocab_size: int,
                   specials: Sequence[str] = BPE_SPECIALS) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE vocabulary + merges, as RoBERTa (and Whisper) use (its trainer numbers tokens deterministically)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(list(texts), trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials),
                                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                             show_progress=False))
    model = json.loads(tok.to_str())["model"]
    return dict(model["vocab"]), [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]


def _tokenizer(kind: str, texts: Sequence[str], vocab_size: int):
    from transformers import BertTokenizer, RobertaTokenizer

    if kind == "roberta":
        vocab, merges = train_byte_bpe(texts, vocab_size)
        return RobertaTokenizer(vocab=vocab, merges=merges, add_prefix_space=False, model_max_length=MAX_POSITIONS)
    vocab = train_wordpiece_vocab(texts, vocab_size)
    return BertTokenizer(vocab=vocab, do_lower_case=False, strip_accents=False, model_max_length=MAX_POSITIONS)


def _model(kind: str, vocab_size: int, pad_id: int, params: Mapping[str, Any]):
    from transformers import BertConfig, BertModel, ElectraConfig, ElectraModel, RobertaConfig, RobertaModel

    shape = dict(vocab_size=vocab_size, hidden_size=int(params["hidden_size"]), num_hidden_layers=int(params["layers"]),
                 num_attention_heads=int(params["heads"]), intermediate_size=4 * int(params["hidden_size"]),
                 pad_token_id=pad_id)
    if kind == "bert":
        return BertModel(BertConfig(max_position_embeddings=MAX_POSITIONS, **shape))
    if kind == "electra":
        return ElectraModel(ElectraConfig(embedding_size=int(params["hidden_size"]), max_position_embeddings=MAX_POSITIONS, **shape))
    # RoBERTa numbers positions from pad_id + 1, hence the two extra rows.
    return RobertaModel(RobertaConfig(max_position_embeddings=MAX_POSITIONS + pad_id + 1, type_vocab_size=1,
                                      bos_token_id=0, eos_token_id=2, **shape))


def build_tiny_encoder(name: str, texts: Sequence[str], params: Mapping[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Write one tiny encoder (model + tokenizer + marker) into `out_dir`; return its description."""
    import torch

    kind = TINY_ENCODERS[name]
    texts = sorted(set(texts))
    if not texts:
        raise ValueError(f"{name}: no training-split text to train a tokenizer on")
    tokenizer = _tokenizer(kind, texts, int(params["vocab_size"]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(params["seed"]))
        model = _model(kind, len(tokenizer), int(tokenizer.pad_token_id), params)
    description = (f"random-init {type(model).__name__} with a tokenizer trained on the corpus training split; "
                   "not a pretrained model, so its embeddings carry no language knowledge")
    shape = {"vocab_size": len(tokenizer), "hidden_size": int(model.config.hidden_size),
             "layers": int(model.config.num_hidden_layers), "heads": int(model.config.num_attention_heads)}
    return save_tiny(out_dir, model, tokenizer, description=description, shape=shape, seed=params["seed"],
                     train_texts=len(texts))


def build_tiny_encoders(texts: Sequence[str], params: Mapping[str, Any], out_root: str | Path) -> dict[str, dict[str, Any]]:
    """All of `TINY_ENCODERS` under `out_root/<name>/`."""
    return {name: build_tiny_encoder(name, texts, params, Path(out_root) / name) for name in TINY_ENCODERS}
