"""`audio_encoders.<name>` in params → a frozen wav2vec 2.0-family model + its feature extractor settings.

Locating weights is `koemo.core.hub`'s (the text registry's rules and error). Any checkpoint `AutoModel` maps to a
raw-waveform SSL encoder with `_get_feat_extract_output_lengths` works (wav2vec2, XLS-R, HuBERT, WavLM); a CTC
fine-tuned checkpoint loads as its base model (the CTC head is dropped). No remote code and no pickles: only
safetensors weights are loaded (see `koemo.core.hub`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np

from koemo.core.hub import EncoderUnavailable, HubEntry, describe_source, from_pretrained, load_model, locate, unknown_entry

# What a load reads: the download's --include list (not the optimizer state or pickles a fine-tune repo also holds)
HUB_FILES = ("config.json", "preprocessor_config.json", "model.safetensors")


def unknown_audio_encoder(name: str, registry: Mapping[str, Any], key: str = "the stage argument") -> EncoderUnavailable:
    """The error for a name that params.yaml's `audio_encoders` does not list."""
    return unknown_entry("Audio encoder", "audio_encoders", name, registry, key)


@dataclass(frozen=True)
class AudioEncoderSpec(HubEntry):
    kind: ClassVar[str] = "Audio encoder"
    section: ClassVar[str] = "audio_encoders"
    tiny_stage: ClassVar[str] = "tiny_audio_encoders"
    hub_files: ClassVar[tuple[str, ...]] = HUB_FILES
    required: ClassVar[tuple[str, ...]] = ("config.json", "preprocessor_config.json")
    files_hint: ClassVar[str] = "config.json, preprocessor_config.json, model.safetensors"

    @classmethod
    def from_params(cls, name: str, spec: Mapping[str, Any]) -> "AudioEncoderSpec":
        location = cls.location(name, spec)
        unknown = set(spec) - {"hub_id", "path", "revision"}
        if unknown:
            raise ValueError(f"audio_encoders.{name}: unknown keys {sorted(unknown)} (expected hub_id and/or path, "
                             "optionally revision)")
        return cls(**location)


@dataclass
class AudioEncoder:
    """A loaded speech encoder in float32 eval mode, with what feature extraction needs to know about it."""

    name: str
    model: Any
    sample_rate: int          # the rate it was trained on; clips are resampled to it
    normalize: bool           # zero-mean unit-variance per clip before the model (the checkpoint's preprocessing)
    uses_attention_mask: bool  # False for group-norm models (wav2vec2-base): padding would change their output
    source: str               # "<hub id>@<commit loaded>", "local-tiny", or "local:<path>"

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def layers(self) -> int:
        """Hidden states returned: the transformer input plus one per transformer layer."""
        return int(self.model.config.num_hidden_layers) + 1

    @property
    def architecture(self) -> str:
        return type(self.model).__name__

    def frames(self, samples) -> np.ndarray:
        """Valid output frames for clips of `samples` samples (the conv stack's exact arithmetic)."""
        import torch

        lengths = torch.as_tensor(np.asarray(samples, dtype=np.int64))
        frames = self.model._get_feat_extract_output_lengths(lengths, add_adapter=False)
        return np.maximum(np.asarray(frames, dtype=np.int64), 0)

    @property
    def min_samples(self) -> int:
        """The receptive field: the shortest input that yields one frame."""
        config = self.model.config
        field, jump = 1, 1
        for kernel, stride in zip(config.conv_kernel, config.conv_stride):
            field += (kernel - 1) * jump
            jump *= stride
        return field


def load_audio_encoder(name: str, spec_params: Mapping[str, Any], gradient_checkpointing: bool = False) -> AudioEncoder:
    """Load `audio_encoders.<name>` (`path` wins over `hub_id` when both are set), frozen; gradient checkpointing
    only when asked for (fine-tuning XLS-R on a small GPU)."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor

    spec = AudioEncoderSpec.from_params(name, spec_params)
    ref = spec.weights()
    directory = locate(ref)
    extractor = from_pretrained(ref, directory, Wav2Vec2FeatureExtractor)
    if int(extractor.feature_size) != 1:
        raise ValueError(f"audio_encoders.{name}: {directory} expects {extractor.feature_size}-channel features, not a raw waveform")
    model = load_model(ref, directory, gradient_checkpointing, dtype=torch.float32)
    if not hasattr(model, "_get_feat_extract_output_lengths"):
        raise ValueError(f"audio_encoders.{name}: {type(model).__name__} is not a wav2vec 2.0-family speech encoder")
    model.requires_grad_(False)
    return AudioEncoder(name=name, model=model, sample_rate=int(extractor.sampling_rate),
                        normalize=bool(extractor.do_normalize),
                        uses_attention_mask=bool(extractor.return_attention_mask),
                        source=describe_source(ref, directory))
