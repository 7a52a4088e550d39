"""Where a registry entry's weights are: a local `path`, or a hub id in the Hugging Face cache.

Shared by the text (`encoders.<name>`) and audio (`audio_encoders.<name>`) registries. Hub models are looked
up in the cache first and downloaded only when the hub is allowed (HF_HUB_OFFLINE unset) and reachable;
otherwise one `EncoderUnavailable` says which entry, which hub id and how to provide it. Locally built tiny
models carry a marker file whose `source` ("local-tiny") wins over any name, so no output can call a
random-init model by a real model's name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from koemo.errors import UserError

MARKER = "koemo_encoder.json"  # written beside tiny models; says what they are (never a real model's name)
_TRUE = {"1", "true", "yes", "on"}


class EncoderUnavailable(UserError):
    """An encoder's weights are neither at its path, nor cached, nor downloadable."""


@dataclass(frozen=True)
class WeightsRef:
    """One registry entry, as much as locating its weights needs."""

    kind: str             # "Text encoder" | "Audio encoder": how messages name it
    section: str          # params section holding the entry: "encoders" | "audio_encoders"
    name: str
    hub_id: str | None
    path: str | None
    tiny_stage: str       # the stage that builds the local tiny models of this kind
    hub_files: tuple[str, ...]  # allow_patterns enough to load it; the .bin is fetched only without safetensors
    required: tuple[str, ...] = ("config.json",)  # files a usable directory must hold
    files_hint: str = "config.json, weights"      # what a hand-made model directory needs, for messages


def hub_cache_dir() -> Path:
    """The hub cache as the environment says now (huggingface_hub reads it only once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_offline() -> bool:
    from huggingface_hub import constants

    env = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").strip().lower()
    return env in _TRUE or bool(constants.HF_HUB_OFFLINE)


def _unavailable_message(ref: WeightsRef, cache: Path, reason: str) -> str:
    return (
        f"{ref.kind} '{ref.name}' (hub id {ref.hub_id}) is not in the Hugging Face cache at {cache} "
        f"and could not be downloaded: {reason}\n"
        f"To provide it, either\n"
        f"  - on a machine with internet run `hf download {ref.hub_id}` (older clients: "
        f"`huggingface-cli download {ref.hub_id}`), copy that machine's HF_HOME (default ~/.cache/huggingface) "
        f"here and point HF_HOME at it; or\n"
        f"  - put the model's files ({ref.files_hint}) in a directory and set "
        f"`{ref.section}.{ref.name}.path` to it in params.yaml (or `dvc exp run -S {ref.section}.{ref.name}.path=DIR`)."
    )


def _check_required(ref: WeightsRef, directory: Path, where: str) -> None:
    missing = [f for f in ref.required if not (directory / f).is_file()]
    if missing:
        raise EncoderUnavailable(f"{ref.kind} '{ref.name}': {where} {directory} lacks {', '.join(missing)}.")


def resolve_hub(ref: WeightsRef) -> Path:
    """The cached snapshot directory of `ref.hub_id`, downloading the needed files when allowed."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    cache = hub_cache_dir()
    try:
        snapshot = Path(snapshot_download(ref.hub_id, cache_dir=cache, local_files_only=True))
    except OSError as err:
        reason = f"not cached ({type(err).__name__})"
        if hub_offline():
            raise EncoderUnavailable(_unavailable_message(ref, cache, "HF_HUB_OFFLINE is set, so the hub was not asked.")) from None
        try:
            snapshot = Path(snapshot_download(ref.hub_id, cache_dir=cache, allow_patterns=list(ref.hub_files)))
            if not any(snapshot.glob("*.safetensors")):
                snapshot = Path(snapshot_download(ref.hub_id, cache_dir=cache, allow_patterns=["pytorch_model.bin"]))
        except (OSError, HfHubHTTPError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise EncoderUnavailable(_unavailable_message(ref, cache, f"{reason}; the hub said: {first_line}")) from err
    _check_required(ref, snapshot, f"the cached snapshot of {ref.hub_id} at")
    return snapshot


def resolve_path(ref: WeightsRef) -> Path:
    path = Path(ref.path)
    if not (path / "config.json").is_file():
        hint = (f"it is built by the {ref.tiny_stage} stage: run `dvc repro {ref.tiny_stage}`"
                if path.name.startswith("tiny-") else "point it at a directory holding the model's files")
        raise EncoderUnavailable(f"{ref.kind} '{ref.name}': {ref.section}.{ref.name}.path = {ref.path} has no config.json; {hint}.")
    _check_required(ref, path, f"{ref.section}.{ref.name}.path =")
    return path


def locate(ref: WeightsRef) -> Path:
    """The directory to load from (`path` wins over `hub_id` when both are set)."""
    if not ref.hub_id and not ref.path:
        raise ValueError(f"{ref.section}.{ref.name}: set `hub_id` (a Hugging Face model id) or `path` (a local model directory)")
    return resolve_path(ref) if ref.path else resolve_hub(ref)


def describe_source(ref: WeightsRef, directory: Path) -> str:
    """What the weights really are: the marker of a locally built model wins over any name or hub id."""
    marker = Path(directory) / MARKER
    if marker.is_file():
        return str(json.loads(marker.read_text(encoding="utf-8"))["source"])
    if ref.hub_id and not ref.path:
        return ref.hub_id
    return f"local:{ref.path}"

