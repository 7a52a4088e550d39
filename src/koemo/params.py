"""Reading params.yaml: stages call `load_params()` and take the sections they declare in dvc.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from koemo.errors import UserError


class MissingParams(UserError, FileNotFoundError):
    """No params.yaml where a stage runs."""


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise MissingParams(f"{path} not found: run stages from the repository root (dvc repro does).")
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)
