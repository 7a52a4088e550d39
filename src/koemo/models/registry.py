"""Every base model, by name: `koemo predict`, `koemo report` and the tests iterate it. No training stage
imports it (each stage imports its own `koemo.models.<m>`: a registry there would make every stage depend on every
model, `tests/test_dvc_deps.py`). Adding a model: its module, one entry here."""

from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping

from koemo.models import audio, egemaps, fusion, multimodal, text, tfidf, wav2vec2
from koemo.train.lineage import used_params

# stack.base_models' order (core/params.py's Literal spells the same names; tests/test_params.py ties them)
MODELS: dict[str, ModuleType] = {m.NAME: m for m in (text, audio, multimodal, wav2vec2, fusion, tfidf, egemaps)}
BASE_MODELS = tuple(MODELS)


def model_module(model: str) -> ModuleType:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {BASE_MODELS}")
    return MODELS[model]


def used_keys(model: str, params: Mapping[str, Any]) -> list[str]:
    """Dotted params keys `model`'s training stage reads, its input features and encoders included."""
    return model_module(model).used_keys(params)


def recorded_params(model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """What `model`'s config.json records of `params` (`lineage.used_params` of its `used_keys`)."""
    return used_params(used_keys(model, params), params)
