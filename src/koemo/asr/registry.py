"""`asr_models.<name>` in params → a loaded Whisper (model, feature extractor, tokenizer), local `path` or hub cache.

Locating the weights is `koemo.core.hub`'s, shared with the text and audio encoder registries: the Hugging Face cache
first (at the pinned `revision`), a download only when the hub is allowed, one `EncoderUnavailable` naming the
entry and how to provide it otherwise. Safetensors only, no remote code. A locally built model's marker
(`koemo_encoder.json`, source "local-tiny") names it in every output, never a real model's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

from koemo.core.hub import EncoderUnavailable, HubEntry, describe_source, from_pretrained, locate, unknown_entry

HUB_FILES = ("config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json",
              "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt",
              "normalizer.json", "*.safetensors", "*.safetensors.index.json")


def unknown_asr(name: str, registry: Mapping[str, Any], key: str = "the stage argument") -> EncoderUnavailable:
    return unknown_entry("Speech recognizer", "asr_models", name, registry, key)


@dataclass(frozen=True)
class AsrSpec(HubEntry):
    language: str = "ko"

    kind: ClassVar[str] = "Speech recognizer"
    section: ClassVar[str] = "asr_models"
    tiny_stage: ClassVar[str] = "tiny_asr"
    hub_files: ClassVar[tuple[str, ...]] = HUB_FILES
    required: ClassVar[tuple[str, ...]] = ("config.json", "preprocessor_config.json")
    files_hint: ClassVar[str] = ("config.json, generation_config.json, preprocessor_config.json, model.safetensors, "
                                 "tokenizer files")

    @classmethod
    def from_params(cls, name: str, spec: Mapping[str, Any]) -> "AsrSpec":
        return cls(**cls.location(name, spec), language=str(spec.get("language", "ko")))


@dataclass
class Recognizer:
    """A loaded Whisper; `sample_rate` and `window_seconds` come from its feature extractor."""

    name: str
    model: Any
    features: Any      # WhisperFeatureExtractor
    tokenizer: Any
    language: str
    source: str        # hub id (@revision), "local-tiny" or "local:<path>"

    @property
    def sample_rate(self) -> int:
        return int(self.features.sampling_rate)

    @property
    def window_seconds(self) -> float:
        return float(self.features.n_samples) / self.sample_rate

    @property
    def architecture(self) -> str:
        return type(self.model).__name__


def asr_directory(name: str, spec_params: Mapping[str, Any]) -> Path:
    """Where `asr_models.<name>`'s files are; `EncoderUnavailable` (with how to provide them) when nowhere."""
    return locate(AsrSpec.from_params(name, spec_params).weights())


def load_asr(name: str, spec_params: Mapping[str, Any]) -> Recognizer:
    """Load `asr_models.<name>` in float32 eval mode."""
    import torch
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    spec = AsrSpec.from_params(name, spec_params)
    ref = spec.weights()
    directory = locate(ref)
    model = from_pretrained(ref, directory, WhisperForConditionalGeneration, use_safetensors=True, dtype=torch.float32)
    model.eval()
    features = from_pretrained(ref, directory, WhisperFeatureExtractor)
    tokenizer = from_pretrained(ref, directory, WhisperTokenizer)
    return Recognizer(name, model, features, tokenizer, spec.language, describe_source(ref, directory))
