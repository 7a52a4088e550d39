"""How every `stages/<stage>.py` runs its `main`: one message for a user error, a thread budget, no stale temps;
and the parser its `main` starts from (`stage_parser`).

A `UserError` ends the stage with its message and exit status 1 instead of a traceback (raised inside
`io.atomic_dir`, it has already removed the half-written output); any other exception is a bug and keeps its
traceback. Before `main`, the stage's CPU thread budget is applied (`device.configure_threads`) and what a killed
stage left beside the paths this one reads and writes is cleared (`io.sweep_stale_temps`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from koemo.core.device import configure_threads
from koemo.core.errors import UserError
from koemo.core.io import sweep_stale_temps
from koemo.core.metrics import add_metrics_args
from koemo.core.params import load_params


LABELS_HELP = "the labels stage's table (parquet)"


def stage_parser(description: str, *paths: tuple[str, str]) -> argparse.ArgumentParser:
    """A stage script's parser: each `(flag, help)` a required path option, then the --metrics/--report/--runtime
    files every stage writes; the stage adds what is its own (a registry name, other options)."""
    parser = argparse.ArgumentParser(description=description)
    for flag, help_text in paths:
        parser.add_argument(flag, type=Path, required=True, help=help_text)
    add_metrics_args(parser)
    return parser


def run_stage(stage: str, main: Callable[..., Any], *args: Any) -> None:
    try:
        configure_threads(load_params().get("runtime"))
        sweep_stale_temps(a for a in sys.argv[1:] if "/" in a and not a.startswith("-"))  # the stage's paths
        main(*args)
    except UserError as err:
        message = str(err)
        raise SystemExit(message if message.startswith(f"{stage}:") else f"{stage}: {message}") from None
    except (MemoryError, OSError, RuntimeError) as err:  # torch.OutOfMemoryError is a RuntimeError
        message = resource_message(stage, err)
        if message is None:
            raise
        raise SystemExit(f"{stage}: {message}") from None


# What lowers a stage's GPU memory, most effective first (`koemo check` names the same keys).
MEMORY_KEYS = {
    "train_text": ("train_text.batch_size", "encoders.<text.model>.max_length", "train_text.gradient_checkpointing: true"),
    "train_wav2vec2": ("train_wav2vec2.batch_size", "train_wav2vec2.max_seconds",
                       "train_wav2vec2.gradient_checkpointing: true"),
    "ssl_features": ("ssl_features.batch_seconds",),
    "text_embeddings": ("text_embeddings.batch_size",),
    "audio_features": ("audio.batch_seconds",),
}


def resource_message(stage: str, err: BaseException) -> str | None:
    """One line for CUDA out of memory (what to lower) or a full disk (see `io.disk_full_message`); None otherwise."""
    from koemo.core.io import disk_full_message

    full = disk_full_message(err, None)
    if full:
        return full
    torch = sys.modules.get("torch")
    oom = getattr(torch, "OutOfMemoryError", ()) if torch is not None else ()
    if not (oom and isinstance(err, oom)):
        return None
    said = " ".join(str(err).split())
    said = said.split(" Including non-PyTorch memory")[0].split(" If reserved but unallocated")[0][:240]
    keys = MEMORY_KEYS.get(stage, (f"{stage}.batch_size",))
    return (f"{said.rstrip('.')}. {memory_advice(stage)} (e.g. `dvc exp run -S {keys[0]}=...`), or use a GPU with "
            "more memory" + (" / more GPUs (runtime.processes splits each batch)" if stage.startswith("train_") else ""))


def memory_advice(stage: str) -> str:
    """"Lower a, b or c, or set d: true" for a stage's GPU memory keys."""
    keys = MEMORY_KEYS.get(stage, (f"{stage}.batch_size",))
    lower = [k for k in keys if ":" not in k]
    switch = [k for k in keys if ":" in k]
    return ("Lower " + (", ".join(lower[:-1]) + " or " + lower[-1] if len(lower) > 1 else lower[0])
            + (f", or set {' / '.join(switch)}" if switch else ""))
