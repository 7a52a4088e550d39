"""Which params shape each trained model: recorded beside its weights, checked again before they are used.

A model's weights are only meaningful with the inputs it was trained on: the same encoder, the same feature
framing, the same class list. The training stages record `used_params(model, params)` in
`data/models/<model>/config.json` (dvc.yaml declares the same keys, so DVC reruns a model when one changes),
and `koemo predict` refuses artefacts whose recorded values differ from params.yaml, naming each key.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from koemo.core.io import jsonable

BASE_MODELS = ("text", "audio", "multimodal", "wav2vec2", "fusion", "tfidf", "egemaps")


def lookup(params: Mapping[str, Any], key: str) -> Any:
    """`params["a"]["b"]` for key "a.b" (KeyError names the dotted key)."""
    value: Any = params
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(f"params.yaml has no `{key}`")
        value = value[part]
    return value


def used_keys(model: str, params: Mapping[str, Any]) -> list[str]:
    """Dotted params keys `model`'s training stage reads, its input features and encoders included."""
    if model not in BASE_MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {BASE_MODELS}")
    keys = ["labels.classes", "train", f"train_{model}"]
    if model in ("text", "multimodal", "fusion", "tfidf"):  # the text they read: the corpus' or an ASR transcript
        keys += ["text.source"]
    if model in ("text", "multimodal", "fusion"):
        keys += ["text.model", f"encoders.{params['text']['model']}"]
    if model == "audio":  # its training rows include the augmented copies
        keys += ["audio.sample_rate", "audio.min_rms_dbfs", "audio.augment", f"audio.{params['train_audio']['features']}"]
    if model == "multimodal":  # originals only
        keys += ["audio.sample_rate", "audio.min_rms_dbfs", f"audio.{params['train_multimodal']['audio_features']}"]
    if model == "egemaps":
        keys += ["audio.sample_rate", "audio.min_rms_dbfs", "egemaps"]
    if model in ("wav2vec2", "fusion"):
        keys += ["ssl.model", f"audio_encoders.{params['ssl']['model']}", "ssl_features.chunk_seconds", "audio.min_rms_dbfs"]
    return keys


def used_params(model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """{dotted key: value} for `used_keys`, as JSON will store it (floats rounded like every koemo JSON file)."""
    return jsonable({key: lookup(params, key) for key in used_keys(model, params)})


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings → {dotted key: leaf}; lists stay whole."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """'key: recorded → current' for every leaf that differs (missing on either side included)."""
    old, new = flatten(jsonable(dict(recorded))), flatten(jsonable(dict(current)))
    missing = object()
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, missing), new.get(key, missing)
        if a != b:
            show = lambda v: "(absent)" if v is missing else json.dumps(v, ensure_ascii=False)  # noqa: E731
            lines.append(f"{key}: {show(a)} → {show(b)}")
    return lines
