"""Where a registry entry's weights are (a local `path`, or a hub id in the Hugging Face cache) and loading them.

Shared by the text (`encoders.<name>`) and audio (`audio_encoders.<name>`) registries. Hub models are looked
up in the cache first (at the entry's pinned `revision`, when set) and downloaded only when the hub is allowed
(HF_HUB_OFFLINE unset) and reachable; otherwise one `EncoderUnavailable` says which entry, which hub id and how
to provide it. Only safetensors weights are loaded: a `pytorch_model.bin` is a pickle, which can run code when
read. Several real repos hold safetensors only in a conversion pull request's commit, so params.yaml pins every
hub entry to a commit; the one download hint (`download_command`) fetches only the files a load reads, at that
commit, and lineage names the commit actually loaded (the snapshot directory's name), never a branch.
Locally built tiny models carry a marker file whose `source` ("local-tiny") wins over any name, so no
output can call a random-init model by a real model's name.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

from koemo.core.errors import UserError

MARKER = "koemo_encoder.json"  # written beside tiny models; says what they are (never a real model's name)
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"  # a sharded checkpoint: the index and every shard it lists
SHARDS = (WEIGHTS_INDEX, "model-*-of-*.safetensors")  # also fetched by the stage's own download, for sharded repos
_TRUE = {"1", "true", "yes", "on"}
_log = logging.getLogger(__name__)


def unknown_entry(kind: str, section: str, name: str, registry, key: str = "the stage argument") -> "EncoderUnavailable":
    """The error for an encoder name that params.yaml's `section` (encoders | audio_encoders) does not list."""
    return EncoderUnavailable(f"{key} names {kind.lower()} {name!r}, which params.yaml `{section}` does not list "
                              f"(known: {', '.join(registry)}); add `{section}.{name}` or pick a listed one.")


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
    hub_files: tuple[str, ...]  # the files a load reads (safetensors weights only): the download's --include list
    required: tuple[str, ...] = ("config.json",)  # files besides the weights a usable directory must hold
    files_hint: str = "config.json, model.safetensors"  # what a hand-made model directory needs, for messages
    revision: str | None = None  # a hub commit (or tag/branch) to pin; None: the cached/latest main

    @property
    def hub_source(self) -> str:
        return f"{self.hub_id}@{self.revision}" if self.revision else str(self.hub_id)

    @property
    def download_command(self) -> str:
        return download_command(self.hub_id, self.revision, self.hub_files)

    @property
    def hub_kwargs(self) -> dict[str, Any]:
        """What every hub call (snapshot_download, from_pretrained) gets: the pinned revision."""
        return {"revision": self.revision} if self.revision and not self.path else {}


@dataclass(frozen=True)
class HubEntry:
    """What every registry entry (`encoders.<name>`, `audio_encoders.<name>`, `asr_models.<name>`) holds: a local
    `path` or a `hub_id` pinned to a `revision`. A registry subclasses it with its own keys and constants."""

    name: str
    hub_id: str | None
    path: str | None
    revision: str | None  # a hub commit pinning the weights

    kind: ClassVar[str]                      # how messages name it: "Text encoder", …
    section: ClassVar[str]                   # the params section: "encoders", …
    tiny_stage: ClassVar[str]                # the stage that builds this kind's local tiny models
    hub_files: ClassVar[tuple[str, ...]]     # the files a load reads (`WeightsRef.hub_files`)
    required: ClassVar[tuple[str, ...]] = ("config.json",)
    files_hint: ClassVar[str] = "config.json, model.safetensors"

    @classmethod
    def location(cls, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """The entry's shared fields from params (a ValueError when neither hub_id nor path is set)."""
        hub_id, path = spec.get("hub_id"), spec.get("path")
        if not hub_id and not path:
            raise ValueError(f"{cls.section}.{name}: set `hub_id` (a Hugging Face model id) or `path` (a local model "
                             "directory)")
        return {"name": name, "hub_id": hub_id or None, "path": path or None, "revision": spec.get("revision") or None}

    def weights(self) -> WeightsRef:
        return WeightsRef(self.kind, self.section, self.name, self.hub_id, self.path, self.tiny_stage, self.hub_files,
                          required=self.required, files_hint=self.files_hint, revision=self.revision)


def download_command(hub_id: str, revision: str | None, files: tuple[str, ...]) -> str:
    """The one download hint (stage errors, `koemo check`, README): the files a load reads, at the pinned commit
    (a plain `hf download` of an XLS-R fine-tune also fetches its optimizer state and pickles: ~5 GB for 1.3 GB)."""
    return (f"hf download {hub_id}" + (f" --revision {revision}" if revision else "")
            + " --include " + " ".join(files))


def is_commit(revision: str | None) -> bool:
    """A full commit hash: the only revision that cannot move under a cache (a branch or `refs/pr/N` can)."""
    return bool(revision) and len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)


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
        f"{ref.kind} '{ref.name}' (hub id {ref.hub_source}) is not in the Hugging Face cache at {cache} "
        f"and could not be downloaded: {reason}\n" + _how_to_provide(ref)
    )


def _how_to_provide(ref: WeightsRef) -> str:
    local = (f"put the model's files ({ref.files_hint}) in a directory and set `{ref.section}.{ref.name}.path` to it "
             f"in params.yaml (or `dvc exp run -S {ref.section}.{ref.name}.path=DIR`).")
    if ref.path and Path(ref.path).name.startswith("tiny-"):
        return f"It is built by the {ref.tiny_stage} stage: run `dvc repro {ref.tiny_stage}`; or {local}"
    if not ref.hub_id:
        return f"To provide it, {local}"
    return (
        f"To provide it, either\n"
        f"  - on a machine with internet run `{ref.download_command}` (older clients: "
        f"`huggingface-cli {ref.download_command.removeprefix('hf ')}`), copy that machine's HF_HOME "
        f"(default ~/.cache/huggingface) here and point HF_HOME at it; or\n"
        f"  - {local}"
    )


def _pickle_only_hint(ref: WeightsRef) -> str:
    return (
        f"koemo loads only safetensors weights (a .bin is a pickle, which can run code when it is read). Convert it "
        f"once, on a trusted machine: `python -c \"from transformers import AutoModel; "
        f"AutoModel.from_pretrained('DIR', use_safetensors=False).save_pretrained('OUT')\"` (it writes config.json "
        f"and {WEIGHTS}), copy DIR's other files (of {ref.files_hint}) into OUT and set `{ref.section}.{ref.name}.path` "
        f"to OUT; or set "
        f"`{ref.section}.{ref.name}.revision` to a hub commit that has {WEIGHTS} (e.g. the repo's safetensors "
        f"conversion pull request)."
    )


def cached_snapshot(cache: Path, hub_id: str, revision: str | None) -> Path | None:
    """The snapshot directory the hub would load offline: refs/<revision or main> → snapshots/<commit>, or a commit
    hash given directly as the revision."""
    repo = cache / f"models--{hub_id.replace('/', '--')}"
    ref = repo / "refs" / (revision or "main")
    commit = ref.read_text().strip() if ref.is_file() else (revision or "")
    snapshot = repo / "snapshots" / commit
    return snapshot if commit and snapshot.is_dir() else None


def weights_problem(directory: Path) -> str | None:
    """Why `directory` holds no loadable safetensors weights (None: it does)."""
    if (directory / WEIGHTS).is_file():
        return None
    index = directory / WEIGHTS_INDEX
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        absent = [shard for shard in shards if not (directory / shard).is_file()]
        if not absent:
            return None
        return f"{len(absent)} of the {len(shards)} shards its {WEIGHTS_INDEX} lists ({', '.join(absent[:3])})"
    return f"{WEIGHTS} (the weights)"


def _check_required(ref: WeightsRef, directory: Path, where: str) -> None:
    missing = [f for f in ref.required if not (directory / f).is_file()]
    weights = weights_problem(directory)
    if not missing and weights is None:
        return
    message = f"{ref.kind} '{ref.name}': {where} {directory} lacks {', '.join(missing + ([weights] if weights else []))}."
    pickles = sorted(p.name for p in directory.glob("*.bin"))
    if weights and pickles:
        message += f" It holds {', '.join(pickles)} instead: " + _pickle_only_hint(ref)
    else:
        if ref.hub_id and not ref.path:
            message += f" An interrupted download? Fetch the needed files again: `{ref.download_command}`."
        message += f"\n{_how_to_provide(ref)}"
    raise EncoderUnavailable(message)


def resolve_hub(ref: WeightsRef) -> Path:
    """The cached snapshot directory of `ref.hub_id` (at `ref.revision`), downloading the needed files when allowed."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    cache = hub_cache_dir()
    try:
        snapshot = Path(snapshot_download(ref.hub_id, cache_dir=cache, local_files_only=True, **ref.hub_kwargs))
    except OSError as err:
        reason = f"not cached ({type(err).__name__})"
        if hub_offline():
            raise EncoderUnavailable(_unavailable_message(ref, cache, "HF_HUB_OFFLINE is set, so the hub was not asked.")) from None
        try:
            snapshot = Path(snapshot_download(ref.hub_id, cache_dir=cache, allow_patterns=[*ref.hub_files, *SHARDS],
                                              **ref.hub_kwargs))
        except (OSError, HfHubHTTPError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise EncoderUnavailable(_unavailable_message(ref, cache, f"{reason}; the hub said: {first_line}")) from err
    _check_required(ref, snapshot, f"the cached snapshot of {ref.hub_source} at")
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
    """What the weights really are: the marker of a locally built model wins over any name or hub id; a hub model is
    `<hub id>@<the commit loaded>` (a moved branch in the cache changes this, so `dvc metrics diff` shows it)."""
    marker = Path(directory) / MARKER
    if marker.is_file():
        return str(json.loads(marker.read_text(encoding="utf-8"))["source"])
    if ref.hub_id and not ref.path:  # the snapshot directory is named by the commit the revision resolved to
        return f"{ref.hub_id}@{Path(directory).name}"
    return f"local:{ref.path}"


def from_pretrained(ref: WeightsRef, directory: Path, loader: Any, **kwargs: Any) -> Any:
    """`loader.from_pretrained(directory)` at the pinned revision; an OSError (a file transformers still could not
    find or read) becomes an `EncoderUnavailable` saying how to provide the model."""
    try:
        return loader.from_pretrained(directory, **ref.hub_kwargs, **kwargs)
    except OSError as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        where = ref.hub_source if ref.hub_id and not ref.path else f"{ref.section}.{ref.name}.path = {ref.path}"
        pickles = any(Path(directory).glob("*.bin"))
        raise EncoderUnavailable(f"{ref.kind} '{ref.name}' ({where}): {loader.__name__} could not load {directory}: "
                                 f"{first_line}\nOnly safetensors weights ({WEIGHTS}) are loaded. "
                                 + (_pickle_only_hint(ref) if pickles else _how_to_provide(ref))) from None


class _HeldLoadReport(logging.Filter):
    """Holds back transformers' per-load report table, to be summarised in one line (or shown if the load fails)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if "LOAD REPORT" in str(record.msg):
            self.held.append(record)
            return False
        return True


def _top_modules(keys: set[str]) -> str:
    return ", ".join(sorted({f"{key.split('.')[0]}.*" for key in keys}))


def load_model(ref: WeightsRef, directory: Path, gradient_checkpointing: bool = False, **kwargs: Any) -> Any:
    """`AutoModel` of the entry, safetensors only, in eval mode.

    Gradient checkpointing is off unless asked for: XLS-R fine-tunes often save `"gradient_checkpointing": true`
    in config.json, which transformers turns on at load, trading training speed for memory nobody chose to save.
    The load report's expected lines (a CTC or pretraining head dropped when a checkpoint is read as an encoder)
    become one line instead of a table per load.
    """
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a "Loading weights" bar per load buries the stage's own progress in logs
    config = from_pretrained(ref, directory, AutoConfig)
    config.gradient_checkpointing = False  # read when the model is built; enabled below only on request
    report = _HeldLoadReport()
    transformers_log = logging.getLogger("transformers.modeling_utils")
    transformers_log.addFilter(report)
    try:
        model, info = from_pretrained(ref, directory, AutoModel, config=config, use_safetensors=True,
                                      output_loading_info=True, **kwargs)
    except Exception:
        transformers_log.removeFilter(report)
        for record in report.held:  # the details of what failed
            transformers_log.handle(record)
        raise
    finally:
        transformers_log.removeFilter(report)
    if model.supports_gradient_checkpointing:
        (model.activation_checkpointing_enable if gradient_checkpointing else model.activation_checkpointing_disable)()
    model.eval()
    if info["unexpected_keys"]:
        _log.warning(f"{ref.name}: {len(info['unexpected_keys'])} checkpoint tensors not used "
                     f"({_top_modules(info['unexpected_keys'])}); expected when a fine-tuned/pretraining checkpoint "
                     "is read as an encoder")
    if info["missing_keys"]:
        unused_here = all(key.startswith(("pooler.", "masked_spec_embed")) for key in info["missing_keys"])
        _log.warning(f"{ref.name}: {len(info['missing_keys'])} tensors not in the checkpoint, newly initialised "
                     f"({_top_modules(info['missing_keys'])}); " +
                     ("koemo does not use them (it pools the hidden states)" if unused_here
                      else "the checkpoint may not be this architecture's: check the hub id / path"))
    return model

