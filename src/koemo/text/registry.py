"""`encoders.<name>` in params → a loaded model + tokenizer, from a local `path` or the Hugging Face cache.

Locating the weights (cache first, download only when allowed, one clear `EncoderUnavailable` otherwise) is
`koemo.core.hub`'s, shared with the audio registry. Nothing runs remote code: models load with `AutoModel`,
tokenizers with `AutoTokenizer` or, for KoBERT, from its `spiece.model` (see `sp_tokenizer`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from koemo.core.hub import (MARKER, EncoderUnavailable, HubEntry, describe_source, from_pretrained,  # noqa: F401  (re-exported)
                            load_model, locate, unknown_entry)

POOLINGS = ("cls", "mean")
TOKENIZER_KINDS = ("auto", "sentencepiece")
# What a load reads (safetensors weights only), per tokenizer kind: the download's --include list. A name the repo
# lacks (KoELECTRA has no tokenizer.json) is simply not fetched.
HUB_FILES = {"auto": ("config.json", "model.safetensors", "tokenizer_config.json", "special_tokens_map.json",
                      "tokenizer.json", "vocab.txt", "vocab.json", "merges.txt"),
             "sentencepiece": ("config.json", "model.safetensors", "tokenizer_config.json", "spiece.model")}
# Tokenizer classes that `tokenizer: auto` gets wrong for a BERT-layout model: KoBERT's config names XLNetTokenizer,
# which puts [SEP] [CLS] at the end and pads on the left (and needs protobuf to convert).
_SENTENCEPIECE_ONLY = ("XLNetTokenizer", "XLNetTokenizerFast")


def tokenizer_problem(name: str, tokenizer: str, directory: Path) -> tuple[str, str] | None:
    """(why, the fix) when `encoders.<name>.tokenizer` is wrong for the files in `directory` (None: it is right)."""
    config = directory / "tokenizer_config.json"
    if tokenizer != "auto" or not config.is_file():
        return None
    try:
        named = json.loads(config.read_text(encoding="utf-8")).get("tokenizer_class")
    except (ValueError, AttributeError):
        return None
    if named in _SENTENCEPIECE_ONLY:
        return (f"encoders.{name}.tokenizer is auto, but its tokenizer_config.json names {named}: AutoTokenizer would "
                "put [SEP] [CLS] at the end and pad on the left (KoBERT is [CLS] … [SEP], right-padded)",
                f"set `encoders.{name}.tokenizer: sentencepiece` (koemo's own reader of its spiece.model)")
    return None


def unknown_encoder(name: str, registry: Mapping[str, Any], key: str = "the stage argument") -> EncoderUnavailable:
    """The error for a name that params.yaml's `encoders` does not list."""
    return unknown_entry("Text encoder", "encoders", name, registry, key)


@dataclass(frozen=True)
class EncoderSpec(HubEntry):
    tokenizer: str = "auto"
    pooling: str = "cls"
    max_length: int = 64

    kind: ClassVar[str] = "Text encoder"
    section: ClassVar[str] = "encoders"
    tiny_stage: ClassVar[str] = "tiny_encoders"
    files_hint: ClassVar[str] = "config.json, model.safetensors, tokenizer files"

    @property
    def hub_files(self) -> tuple[str, ...]:  # per tokenizer kind
        return HUB_FILES[self.tokenizer]

    @classmethod
    def from_params(cls, name: str, spec: Mapping[str, Any]) -> "EncoderSpec":
        location = cls.location(name, spec)
        tokenizer = spec.get("tokenizer", "auto")
        pooling = spec.get("pooling", "cls")
        max_length = int(spec.get("max_length", 64))
        if tokenizer not in TOKENIZER_KINDS:
            raise ValueError(f"encoders.{name}.tokenizer={tokenizer!r}: expected one of {TOKENIZER_KINDS}")
        if pooling not in POOLINGS:
            raise ValueError(f"encoders.{name}.pooling={pooling!r}: expected one of {POOLINGS}")
        if max_length < 3:
            raise ValueError(f"encoders.{name}.max_length={max_length}: needs room for [CLS], a token and [SEP]")
        return cls(**location, tokenizer=tokenizer, pooling=pooling, max_length=max_length)


@dataclass
class Encoder:
    """A loaded encoder. `encode(texts)` gives id lists with special tokens, truncated to `max_length`."""

    name: str
    model: Any
    encode: Callable[[Sequence[str]], list[list[int]]]
    tokenizer: Any
    pad_id: int
    pooling: str
    max_length: int
    source: str  # "<hub id>@<commit loaded>", "local-tiny", or "local:<path>"
    unk_id: int | None = None                  # the tokenizer's unknown token
    special_ids: frozenset[int] = frozenset()  # [CLS], [SEP], [PAD], …: not text, so not counted as tokens

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def architecture(self) -> str:
        return type(self.model).__name__


def load_encoder(name: str, spec_params: Mapping[str, Any], gradient_checkpointing: bool = False) -> Encoder:
    """Load `encoders.<name>` in float32 eval mode (`path` wins over `hub_id` when both are set); gradient
    checkpointing only when asked for (fine-tuning a large encoder on a small GPU)."""
    import torch
    from transformers import AutoTokenizer

    spec = EncoderSpec.from_params(name, spec_params)
    ref = spec.weights()
    directory = locate(ref)
    problem = tokenizer_problem(name, spec.tokenizer, Path(directory))
    if problem:
        raise EncoderUnavailable(f"Text encoder '{name}' ({describe_source(ref, directory)}): {problem[0]}; "
                                 f"{problem[1]}.")
    model = load_model(ref, directory, gradient_checkpointing, dtype=torch.float32)
    if spec.tokenizer == "sentencepiece":
        from koemo.text.sp_tokenizer import SentencePieceBertTokenizer

        tokenizer = SentencePieceBertTokenizer.from_directory(directory, spec.max_length)
        encode = tokenizer.encode
        pad_id = tokenizer.pad_token_id
        special_ids = frozenset(i for role, i in tokenizer.ids.items() if role != "unk")
    else:
        tokenizer = from_pretrained(ref, directory, AutoTokenizer)
        if tokenizer.pad_token_id is None:
            raise ValueError(f"encoders.{name}: tokenizer at {directory} has no pad token")

        def encode(texts: Sequence[str]) -> list[list[int]]:
            return tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=spec.max_length)["input_ids"]

        pad_id = int(tokenizer.pad_token_id)
        special_ids = frozenset(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    config_pad = getattr(model.config, "pad_token_id", None)
    if config_pad is not None and int(config_pad) != pad_id and hasattr(model.embeddings, "padding_idx"):
        # RoBERTa derives position ids from the pad id; a mismatch would shift every position.
        raise ValueError(f"encoders.{name}: tokenizer pad id {pad_id} != model pad_token_id {config_pad}")
    return Encoder(name=name, model=model, encode=encode, tokenizer=tokenizer, pad_id=pad_id,
                   pooling=spec.pooling, max_length=spec.max_length, source=describe_source(ref, directory),
                   unk_id=tokenizer.unk_token_id, special_ids=special_ids)
