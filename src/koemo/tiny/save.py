"""Writing a built tiny model (its parts and the marker that says what it is), and how a tiny stage runs its build."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping

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


def training_texts(labels_path: str | Path) -> list[str]:
    """The training-split text of the labels table: what a tiny model's tokenizer is trained on."""
    import pandas as pd

    labels = pd.read_parquet(labels_path, columns=["text", "split"])
    return labels.loc[labels["split"] == "train", "text"].astype(str).tolist()


def build_stage(stage: str, args: Any, build: Callable[[Path], dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """A tiny stage's run: `build(tmp)` into `args.out` atomically, then the built models' markers as its metrics."""
    from koemo.core.io import atomic_dir
    from koemo.core.metrics import data_headline, write_metrics

    start = time.perf_counter()
    with atomic_dir(args.out) as tmp:
        built = build(Path(tmp))
    write_metrics(args.metrics, data_headline(stage, built), args.report, built, args.runtime,
                  {"seconds": time.perf_counter() - start})
    return built
