"""`encoders.<name>` in params → a loaded model + tokenizer, from a local `path` or the Hugging Face cache.

Hub models are looked up in the cache first and downloaded only when the hub is allowed
(HF_HUB_OFFLINE unset) and reachable; otherwise one `EncoderUnavailable` says which encoder, which hub id
and how to provide it. Nothing runs remote code: models load with `AutoModel`, tokenizers with
`AutoTokenizer` or, for KoBERT, from its `spiece.model` (see `sp_tokenizer`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

POOLINGS = ("cls", "mean")
TOKENIZER_KINDS = ("auto", "sentencepiece")
MARKER = "koemo_encoder.json"  # written beside tiny encoders; says what they are (never a real model's name)
# Enough to load a model + tokenizer; the .bin is fetched only when a repo has no safetensors.
_HUB_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
              "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "*.safetensors", "*.safetensors.index.json"]
_TRUE = {"1", "true", "yes", "on"}


class EncoderUnavailable(RuntimeError):
    """An encoder's weights are neither at its path, nor cached, nor downloadable."""


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    hub_id: str | None
    path: str | None
    tokenizer: str
    pooling: str
    max_length: int

    @classmethod
    def from_params(cls, name: str, spec: Mapping[str, Any]) -> "EncoderSpec":
        hub_id, path = spec.get("hub_id"), spec.get("path")
        if not hub_id and not path:
            raise ValueError(f"encoders.{name}: set `hub_id` (a Hugging Face model id) or `path` (a local model directory)")
        tokenizer = spec.get("tokenizer", "auto")
        pooling = spec.get("pooling", "cls")
        max_length = int(spec.get("max_length", 64))
        if tokenizer not in TOKENIZER_KINDS:
            raise ValueError(f"encoders.{name}.tokenizer={tokenizer!r}: expected one of {TOKENIZER_KINDS}")
        if pooling not in POOLINGS:
            raise ValueError(f"encoders.{name}.pooling={pooling!r}: expected one of {POOLINGS}")
        if max_length < 3:
            raise ValueError(f"encoders.{name}.max_length={max_length}: needs room for [CLS], a token and [SEP]")
        return cls(name, hub_id or None, path or None, tokenizer, pooling, max_length)


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
    source: str  # the hub id, "local-tiny", or "local:<path>"

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def architecture(self) -> str:
        return type(self.model).__name__


def hub_cache_dir() -> Path:
    """The hub cache as the environment says now (huggingface_hub reads it only once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_offline() -> bool:
    from huggingface_hub import constants

    env = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").strip().lower()
    return env in _TRUE or bool(constants.HF_HUB_OFFLINE)


def _unavailable_message(spec: EncoderSpec, cache: Path, reason: str) -> str:
    return (
        f"Text encoder '{spec.name}' (hub id {spec.hub_id}) is not in the Hugging Face cache at {cache} "
        f"and could not be downloaded: {reason}\n"
        f"To provide it, either\n"
        f"  - on a machine with internet run `hf download {spec.hub_id}` (older clients: "
        f"`huggingface-cli download {spec.hub_id}`), copy that machine's HF_HOME (default ~/.cache/huggingface) "
        f"here and point HF_HOME at it; or\n"
        f"  - put the model's files (config.json, weights, tokenizer files) in a directory and set "
        f"`encoders.{spec.name}.path` to it in params.yaml (or `dvc exp run -S encoders.{spec.name}.path=DIR`)."
    )


def resolve_hub(spec: EncoderSpec) -> Path:
    """The cached snapshot directory of `spec.hub_id`, downloading the needed files when allowed."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    cache = hub_cache_dir()
    try:
        return Path(snapshot_download(spec.hub_id, cache_dir=cache, local_files_only=True))
    except OSError as err:
        reason = f"not cached ({type(err).__name__})"
    if hub_offline():
        raise EncoderUnavailable(_unavailable_message(spec, cache, "HF_HUB_OFFLINE is set, so the hub was not asked."))
    try:
        snapshot = Path(snapshot_download(spec.hub_id, cache_dir=cache, allow_patterns=_HUB_FILES))
        if not any(snapshot.glob("*.safetensors")):
            snapshot = Path(snapshot_download(spec.hub_id, cache_dir=cache, allow_patterns=["pytorch_model.bin"]))
        return snapshot
    except (OSError, HfHubHTTPError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise EncoderUnavailable(_unavailable_message(spec, cache, f"{reason}; the hub said: {first_line}")) from err


def resolve_path(spec: EncoderSpec) -> Path:
    path = Path(spec.path)
    if not (path / "config.json").is_file():
        hint = ("it is built by the tiny_encoders stage: run `dvc repro tiny_encoders`"
                if path.name.startswith("tiny-") else "point it at a directory holding config.json, weights and tokenizer files")
        raise EncoderUnavailable(f"Text encoder '{spec.name}': encoders.{spec.name}.path = {spec.path} has no config.json; {hint}.")
    return path


def describe_source(spec: EncoderSpec, directory: Path) -> str:
    """What the weights really are: the marker of a locally built model wins over any name or hub id."""
    marker = directory / MARKER
    if marker.is_file():
        return str(json.loads(marker.read_text(encoding="utf-8"))["source"])
    if spec.hub_id:
        return spec.hub_id
    return f"local:{spec.path}"


def load_encoder(name: str, spec_params: Mapping[str, Any]) -> Encoder:
    """Load `encoders.<name>` in float32 eval mode (`path` wins over `hub_id` when both are set)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    spec = EncoderSpec.from_params(name, spec_params)
    directory = resolve_path(spec) if spec.path else resolve_hub(spec)
    model = AutoModel.from_pretrained(directory, dtype=torch.float32)
    model.eval()
    if spec.tokenizer == "sentencepiece":
        from koemo.text.sp_tokenizer import SentencePieceBertTokenizer

        tokenizer = SentencePieceBertTokenizer.from_directory(directory, spec.max_length)
        encode = tokenizer.encode
        pad_id = tokenizer.pad_token_id
    else:
        tokenizer = AutoTokenizer.from_pretrained(directory)
        if tokenizer.pad_token_id is None:
            raise ValueError(f"encoders.{name}: tokenizer at {directory} has no pad token")

        def encode(texts: Sequence[str]) -> list[list[int]]:
            return tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=spec.max_length)["input_ids"]

        pad_id = int(tokenizer.pad_token_id)
    config_pad = getattr(model.config, "pad_token_id", None)
    if config_pad is not None and int(config_pad) != pad_id and hasattr(model.embeddings, "padding_idx"):
        # RoBERTa derives position ids from the pad id; a mismatch would shift every position.
        raise ValueError(f"encoders.{name}: tokenizer pad id {pad_id} != model pad_token_id {config_pad}")
    return Encoder(name=name, model=model, encode=encode, tokenizer=tokenizer, pad_id=pad_id,
                   pooling=spec.pooling, max_length=spec.max_length, source=describe_source(spec, directory))
