"""A tiny random-init wav2vec 2.0 encoder ("local-tiny") for the demo and tests, where no weights can be downloaded.

Same `Wav2Vec2Model` class, feature extractor and loading path as the real checkpoints, XLS-R's layout (layer-norm
conv stack, stable layer norm, attention mask) so padding is maskable — but random weights: its features carry no
pretrained speech knowledge. Built from params alone (no data), byte-identical for the same params.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from koemo.tiny.save import save_tiny

TINY_AUDIO_ENCODERS = ("tiny-wav2vec2",)
SAMPLE_RATE = 16000


def tiny_config(params: Mapping[str, Any]):
    from transformers import Wav2Vec2Config

    hidden = int(params["hidden_size"])
    conv_dim = [int(c) for c in params["conv_dim"]]
    conv_kernel = [int(k) for k in params["conv_kernel"]]
    conv_stride = [int(s) for s in params["conv_stride"]]
    if not len(conv_dim) == len(conv_kernel) == len(conv_stride):
        raise ValueError("tiny_audio_encoders: conv_dim, conv_kernel and conv_stride need one entry per conv layer")
    return Wav2Vec2Config(
        hidden_size=hidden, num_hidden_layers=int(params["layers"]), num_attention_heads=int(params["heads"]),
        intermediate_size=4 * hidden, conv_dim=conv_dim, conv_kernel=conv_kernel, conv_stride=conv_stride,
        num_conv_pos_embeddings=int(params["pos_conv_kernel"]), num_conv_pos_embedding_groups=int(params["pos_conv_groups"]),
        feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)


def build_tiny_audio_encoder(params: Mapping[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Write the tiny encoder (weights, config, feature extractor config, marker) into `out_dir`; return its description."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    config = tiny_config(params)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(params["seed"]))
        model = Wav2Vec2Model(config)
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=True)
    stride = 1
    for s in config.conv_stride:
        stride *= s
    description = ("random-init wav2vec 2.0 encoder (XLS-R layout); not a pretrained model, so its features "
                   "carry no speech knowledge")
    shape = {"hidden_size": int(config.hidden_size), "layers": int(config.num_hidden_layers),
             "heads": int(config.num_attention_heads), "conv_layers": len(config.conv_dim),
             "frame_ms": 1000 * stride / SAMPLE_RATE}
    return save_tiny(out_dir, model, extractor, description=description, shape=shape, seed=params["seed"])


def build_tiny_audio_encoders(params: Mapping[str, Any], out_root: str | Path) -> dict[str, dict[str, Any]]:
    """All of `TINY_AUDIO_ENCODERS` under `out_root/<name>/`."""
    return {name: build_tiny_audio_encoder(params, Path(out_root) / name) for name in TINY_AUDIO_ENCODERS}
