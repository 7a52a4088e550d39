"""Which params shape each trained model: recorded beside its weights, checked again before they are used.

A model's weights are only meaningful with the inputs it was trained on: the same encoder, the same feature
framing, the same class list. The training stages record `used_params(keys, params)` in
`data/models/<model>/config.json`, the keys being `koemo.models.<model>.used_keys(params)` (dvc.yaml declares the
same keys, so DVC reruns a model when one changes), and `koemo predict` refuses artefacts whose recorded values
differ from params.yaml, naming each key.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from koemo.core.io import jsonable


def lookup(params: Mapping[str, Any], key: str) -> Any:
    """`params["a"]["b"]` for key "a.b" (KeyError names the dotted key)."""
    value: Any = params
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(f"params.yaml has no `{key}`")
        value = value[part]
    return value


def used_params(keys: Sequence[str], params: Mapping[str, Any]) -> dict[str, Any]:
    """{dotted key: value} for `keys` (a model's `used_keys(params)`), as JSON will store it (floats rounded like
    every koemo JSON file)."""
    return jsonable({key: lookup(params, key) for key in keys})


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
