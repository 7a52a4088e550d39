"""Writing a built tiny model: its parts (`save_pretrained`) and the marker that says what it is, with one layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from koemo.core.hub import MARKER
from koemo.core.io import write_json


def save_tiny(out_dir: str | Path, model: Any, *parts: Any, description: str, shape: Mapping[str, Any],
              seed: int, train_texts: int | None = None) -> dict[str, Any]:
    """Save `model` and `parts` (tokenizer, feature extractor) into `out_dir` with the marker naming them "local-tiny";
    return the marker's content (the stage's metrics), its keys in this order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for part in (model, *parts):
        part.save_pretrained(out)
    info = {"source": "local-tiny", "architecture": type(model).__name__, "description": description, **shape,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            **({} if train_texts is None else {"train_texts": train_texts}), "seed": int(seed)}
    write_json(out / MARKER, info)
    return info
