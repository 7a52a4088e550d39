"""A tiny random-init wav2vec2 with a group-norm feature encoder (wav2vec2-base's kind), for the tests."""

from pathlib import Path


def write_group_norm_wav2vec2(directory: Path) -> None:
    """Model + a feature extractor that, like wav2vec2-base's, returns no attention mask."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                 conv_dim=[16, 16], conv_kernel=[10, 8], conv_stride=[5, 8], num_conv_pos_embeddings=16,
                                 num_conv_pos_embedding_groups=4, feat_extract_norm="group")).save_pretrained(directory)
    Wav2Vec2FeatureExtractor(return_attention_mask=False, do_normalize=True).save_pretrained(directory)
