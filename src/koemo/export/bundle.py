"""Copy what `koemo predict` reads into one folder that needs neither this repository nor a DVC workspace.

Layout (OUT is a valid `Predictor` root):

    OUT/params.yaml                 the params the models were trained with (feature settings, registry entries)
    OUT/data/models/<model>/…       every fold's weights (safetensors; TF-IDF vocabularies as JSON), the stack
    OUT/weights/<section>/<name>/   the text encoder, audio encoder and ASR model they read, tokenizers included
    OUT/reports/                    the training stages' and the stack's reports (the card's numbers)
    OUT/koemo-export.json           where each registry entry's weights are, lineage, file hashes
    OUT/README.md                   the model card (Hugging Face convention)

Nothing is pickled: a file that is neither safetensors nor JSON/text is refused. Registry entries keep their
hub id and revision in params.yaml (the lineage check compares them with what each model recorded); the copied
weights are found through koemo-export.json.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from koemo.core.errors import UserError
from koemo.core.io import atomic_dir, write_json, write_text
from koemo.predict.predictor import EXPORT_MANIFEST, MODELS_DIR, Predictor

SAFE_SUFFIXES = (".safetensors", ".json", ".txt", ".model", ".md", ".yaml", ".csv")  # spiece.model: sentencepiece protobuf


class ExportError(UserError):
    """The models cannot be exported as asked; the message says what to do."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_tree(src: Path, dest: Path) -> None:
    """Copy `src` (symlinks followed: a hub cache snapshot links into its blobs), safe file types only."""
    for path in sorted(src.rglob("*")):
        if path.is_dir() or path.name.startswith("."):
            continue
        if not path.name.endswith(SAFE_SUFFIXES):
            raise ExportError(f"{path}: not a safetensors/JSON/text file; koemo exports no pickles or unknown formats. "
                              "Remove it (or convert it to safetensors) and export again.")
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _git_revision(root: Path) -> dict:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    rev = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": rev, "dirty": bool(status) if status is not None else None}


def _data_fingerprint(root: Path) -> dict:
    """The labels table and the wav fingerprints' hashes (as dvc.lock records them, else hashed here)."""
    out = {}
    lock = root / "dvc.lock"
    recorded = {}
    if lock.is_file():
        import yaml

        for stage in (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {}).values():
            for item in stage.get("outs", []) or []:
                recorded[item["path"]] = item.get("md5")
    for name in ("data/labels.parquet", "data/wavs.parquet", "data/texts.parquet"):
        if name in recorded:
            out[name] = {"md5": recorded[name]}
        elif (root / name).is_file():
            out[name] = {"sha256": _sha256(root / name)}
    return out


def export_models(root: str | Path, out: str | Path, force: bool = False) -> dict:
    """Write the export folder `out` from project `root`; returns a summary (models, files, bytes, asr)."""
    from koemo.asr.registry import asr_directory
    from koemo.core.hub import EncoderUnavailable, locate
    from koemo.ssl.registry import AudioEncoderSpec
    from koemo.text.registry import EncoderSpec

    root, out = Path(root).resolve(), Path(out)
    if out.exists() and not force:
        raise ExportError(f"{out} exists: pass --force to replace it, or choose another folder")
    if out.resolve() == root or root in out.resolve().parents and out.resolve().parts[len(root.parts)] == "data":
        raise ExportError(f"{out}: choose a folder outside the project's data/ (DVC owns it)")
    predictor = Predictor(root, device="cpu")  # the same checks predict makes: complete, params unchanged
    params = predictor.params
    needed = {}
    text_models = {"text", "multimodal", "fusion"} & set(predictor.models)
    if text_models:
        name = params["text"]["model"]
        needed[f"encoders.{name}"] = locate(EncoderSpec.from_params(name, params["encoders"][name]).weights())
    if {"wav2vec2", "fusion"} & set(predictor.models):
        name = params["ssl"]["model"]
        needed[f"audio_encoders.{name}"] = locate(AudioEncoderSpec.from_params(name, params["audio_encoders"][name]).weights())
    asr_name = params.get("asr", {}).get("model")
    asr = None
    if asr_name:
        try:
            asr = asr_directory(asr_name, predictor.entry("asr_models", asr_name))
            needed[f"asr_models.{asr_name}"] = asr
        except EncoderUnavailable:
            asr = None  # exported without ASR: a wav without text gets the audio-only answer
    with atomic_dir(out) as tmp:
        tmp = Path(tmp)
        _copy_tree(root / MODELS_DIR, tmp / MODELS_DIR)
        weights = {}
        for key, directory in needed.items():
            section, name = key.split(".", 1)
            relative = f"weights/{section}/{name}"
            _copy_tree(Path(directory), tmp / relative)
            weights[key] = relative
        shutil.copyfile(root / "params.yaml", tmp / "params.yaml")
        metrics = {}
        for model in predictor.models:
            source = root / "reports" / f"train_{model}.json"
            if source.is_file():
                metrics[model] = json.loads(source.read_text(encoding="utf-8"))
        stack = root / "reports" / "stack.json"
        stack_metrics = json.loads(stack.read_text(encoding="utf-8")) if stack.is_file() else {}
        asr_metrics = {}
        if asr_name and (root / "reports" / f"transcribe_{asr_name}.json").is_file():
            asr_metrics = json.loads((root / "reports" / f"transcribe_{asr_name}.json").read_text(encoding="utf-8"))
        (tmp / "reports").mkdir()
        for model, m in metrics.items():
            write_json(tmp / "reports" / f"train_{model}.json", m)
        if stack_metrics:
            write_json(tmp / "reports" / "stack.json", stack_metrics)
        if asr_metrics:
            write_json(tmp / "reports" / f"transcribe_{asr_name}.json", asr_metrics)
        sources = {model: {k: v for k, v in predictor.configs[model].items() if k.endswith("source") or k == "ssl_encoder"}
                   for model in predictor.models}
        registry = {key: {**params[key.split(".", 1)[0]][key.split(".", 1)[1]]} for key in needed}
        for key in needed:
            marker = Path(needed[key]) / "koemo_encoder.json"
            registry[key]["source"] = (json.loads(marker.read_text(encoding="utf-8"))["source"] if marker.is_file()
                                       else params[key.split(".", 1)[0]][key.split(".", 1)[1]].get("hub_id"))
        manifest = {
            "format": "koemo-export/1",
            "classes": predictor.classes,
            "models": predictor.models,
            "stack": {k: predictor.meta.get(k) for k in ("learner", "features", "inputs", "models") if k in predictor.meta},
            "weights": weights,
            "asr": asr_name if asr is not None else None,
            "lineage": {"git": _git_revision(root), "data": _data_fingerprint(root), "encoders": registry,
                        "model_sources": sources, "text_source": params["text"].get("source", "transcript")},
        }
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest["files"] = {p.relative_to(tmp).as_posix(): _sha256(p) for p in files}
        write_json(tmp / EXPORT_MANIFEST, manifest)
        from koemo.export.card import model_card

        write_text(tmp / "README.md", model_card(manifest, params, metrics, stack_metrics, asr_metrics))
        total = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        count = sum(1 for p in tmp.rglob("*") if p.is_file())
    return {"models": len(predictor.models), "files": count, "bytes": total, "asr": asr is not None}
