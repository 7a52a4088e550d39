"""`koemo profile NAME`: the params of a whole job (demo, or the real AI Hub job on a GPU or a CPU) in one command.

Moving from the demo to the real job used to mean editing a dozen keys by hand (source, directory, encoders,
training sizes). A profile is those keys and nothing else: every profile sets the same keys, so switching between
them is exact both ways, and the file is edited in place with its comments kept (ruamel round trip), so
`dvc params diff` shows exactly what changed. A new source (e.g. KEMDy20) is a new profile setting `data.source`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

from koemo.core.errors import UserError
from koemo.core.params import DEMO_DIR, validate_params

_REAL_TRAINING = {"train.folds": 4, "train_text.epochs": 5, "train_wav2vec2.batch_size": 64,
                  "train_fusion.batch_size": 64}
PROFILES: dict[str, dict[str, Any]] = {
    # the committed params.yaml (tests/test_profiles.py keeps them equal)
    "demo": {"data.source": "demo", "data.dir": DEMO_DIR,
             "text.encoders": ["tiny-bert", "tiny-roberta", "tiny-electra"], "text.model": "tiny-electra",
             "ssl.encoders": ["tiny-wav2vec2"], "ssl.model": "tiny-wav2vec2",
             "asr.models": ["tiny-whisper"], "asr.model": "tiny-whisper",
             "train.folds": 2, "train_text.lr": 1.0e-3, "train_text.epochs": 6,
             "train_audio.width": 16, "train_audio.blocks": [1, 1, 1], "train_audio.pool": [2, 2],
             "train_audio.epochs": 12, "train_wav2vec2.batch_size": 16, "train_fusion.batch_size": 16},
    # the three Korean text encoders and XLS-R Korean, fine-tuned / extracted on a GPU
    "aihub-gpu": {"data.source": "aihub",
                  "text.encoders": ["kobert", "klue-roberta", "koelectra"], "text.model": "koelectra",
                  "ssl.encoders": ["wav2vec2-ko"], "ssl.model": "wav2vec2-ko",
                  "asr.models": ["whisper-large-v3-turbo"], "asr.model": "whisper-large-v3-turbo",
                  **_REAL_TRAINING, "train_text.lr": 2.0e-5,
                  "train_audio.width": 32, "train_audio.blocks": [2, 2, 2, 2], "train_audio.pool": [1, 1],
                  "train_audio.epochs": 30},
    # nothing to download, no GPU: tfidf and egemaps carry it; one local-tiny text encoder, the tiny wav2vec2,
    # the demo-sized audio ResNet (the GPU-sized one would take days on a CPU)
    "aihub-cpu": {"data.source": "aihub",
                  "text.encoders": ["tiny-electra"], "text.model": "tiny-electra",
                  "ssl.encoders": ["tiny-wav2vec2"], "ssl.model": "tiny-wav2vec2",
                  "asr.models": ["tiny-whisper"], "asr.model": "tiny-whisper",  # Whisper on 44k clips needs a GPU
                  **_REAL_TRAINING, "train_text.lr": 1.0e-3, "train_text.epochs": 6,
                  "train_audio.width": 16, "train_audio.blocks": [1, 1, 1], "train_audio.pool": [2, 2],
                  "train_audio.epochs": 12},
}
AIHUB_DEFAULT_DIR = "data/raw/aihub"


class UnknownProfile(UserError, ValueError):
    """A profile name no PROFILES entry has."""


def profile_values(name: str, current: Mapping[str, Any], directory: str | None = None) -> dict[str, Any]:
    """The dotted keys → values `name` sets. A real source reads `directory`, else the current data.dir when it is
    not the demo's, else data/raw/aihub (the repo's placeholder)."""
    if name not in PROFILES:
        raise UnknownProfile(f"profile {name!r}: choose one of {', '.join(PROFILES)}")
    values = dict(PROFILES[name])
    if values["data.source"] == "demo":
        if directory is not None:
            raise UnknownProfile("--dir is for a real source: the demo profile reads the demo stage's output, "
                                 f"{DEMO_DIR}")
        return values
    now = str(current.get("data", {}).get("dir", ""))
    values["data.dir"] = directory if directory is not None else (now if now and now.rstrip("/") != DEMO_DIR
                                                                  else AIHUB_DEFAULT_DIR)
    return {"data.source": values.pop("data.source"), "data.dir": values.pop("data.dir"), **values}


def apply_profile(params_path: Path, name: str, directory: str | None = None,
                  dry_run: bool = False) -> list[tuple[str, Any, Any]]:
    """Set the profile's keys in params.yaml, comments and order kept, validated first, written atomically.
    Returns (key, old, new) for every key whose value changed."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedSeq

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.representer.add_representer(float, _float)
    with open(params_path, encoding="utf-8") as handle:
        document = yaml.load(handle)
    plain = _plain(document)
    changes = []
    for key, value in profile_values(name, plain, directory).items():
        *parents, leaf = key.split(".")
        node = document
        for part in parents:
            node = node.setdefault(part, {})
        old = _plain(node.get(leaf))
        if old != value:
            changes.append((key, old, value))
            if isinstance(value, list):
                seq = CommentedSeq(value)
                seq.fa.set_flow_style()
                value = seq
            node[leaf] = value
    validate_params(_plain(document), f"{params_path} with profile {name}")
    if changes and not dry_run:
        temp = params_path.with_name(f".{params_path.name}.profile-tmp")
        with open(temp, "w", encoding="utf-8") as handle:
            yaml.dump(document, handle)
        os.replace(temp, params_path)
    return changes


def _float(representer: Any, value: float) -> Any:
    """A float as params.yaml writes them: `2.0e-5`, not ruamel's `2e-05`."""
    text = repr(value) if value == 0 or 1e-2 <= abs(value) < 1e6 else re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{value:.1e}")
    return representer.represent_scalar("tag:yaml.org,2002:float", text.replace("e+", "e"))


def _plain(value: Any) -> Any:
    """ruamel's commented containers → plain dict/list (for validation and comparison)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
