"""Cached audio features (`audio_features@<kind>`): decoding, augmentation, batched torch features, shards."""

from koemo.audio.features import KINDS, FeatureSpec
from koemo.audio.shards import load_features

__all__ = ["KINDS", "FeatureSpec", "load_features"]
