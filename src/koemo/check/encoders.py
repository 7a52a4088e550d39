"""`koemo check`, the encoders: every text, SSL and ASR encoder params.yaml names, looked up on disk alone (HF_HUB_OFFLINE
semantics: no hub call, no model load), and their sizes for the machine's estimates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from koemo.check.report import BLOCKER, OK, WARN, Row
from koemo.core.hub import download_command

# Sizes of the registry's hub models when their config.json is not cached yet (hidden, layers, params, vocab).
_KNOWN = {"skt/kobert-base-v1": (768, 12, 92e6), "klue/roberta-base": (768, 12, 111e6),
          "monologg/koelectra-base-v3-discriminator": (768, 12, 112e6),
          "kresnik/wav2vec2-large-xlsr-korean": (1024, 24, 317e6), "facebook/wav2vec2-base": (768, 12, 95e6)}
_TEXT_FILES = {"auto": (("tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model"), "tokenizer_config.json"),
               "sentencepiece": (("spiece.model", "tokenizer.model", "sentencepiece.model"), None)}


def check_encoders(params: Mapping[str, Any], root: Path = Path(".")) -> list[Row]:
    """One row per encoder the params name: registered, then present offline with weights and tokenizer files."""
    rows = []
    for kind, registry, stage, tiny_stage in (("text", "encoders", "text_embeddings", "tiny_encoders"),
                                             ("ssl", "audio_encoders", "ssl_features", "tiny_audio_encoders"),
                                             ("asr", "asr_models", "transcribe", "tiny_asr")):
        chosen = params.get(kind, {})
        known = params.get(registry, {})
        list_key = "models" if kind == "asr" else "encoders"
        listed = list(chosen.get(list_key) or [])
        names = list(dict.fromkeys(listed + ([chosen["model"]] if chosen.get("model") else [])))
        for name in names:
            where = f"{kind}.{list_key}" if name in listed else f"{kind}.model"
            if name not in known:
                rows.append(Row(f"{registry}.{name}", BLOCKER, f"{where} names {name!r}, not in {registry}",
                                f"add {registry}.{name} (hub_id or path) to params.yaml"))
                continue
            problems, fixes = [], []
            state, detail, fix = _locate(kind, registry, name, known[name], tiny_stage, root)
            if state == BLOCKER:
                problems.append(detail)
                fixes.append(fix)
            if name == chosen.get("model") and name not in listed:
                problems.insert(0, f"{kind}.model={name} is not in {kind}.{list_key} {listed} (no {stage} stage "
                                   f"makes its {'transcripts' if kind == 'asr' else 'embeddings'})")
                fixes.append(f"`dvc exp run -S {kind}.model={name} -S '{kind}.{list_key}=[{','.join(listed + [name])}]'`"
                             f" (or put {name} in {kind}.{list_key} in params.yaml)")
            if problems:
                rows.append(Row(f"{registry}.{name}", BLOCKER, "; ".join(problems), ", then ".join(fixes)))
            else:
                rows.append(Row(f"{registry}.{name}", state, detail, fix))
    return rows


def _locate(kind: str, registry: str, name: str, spec: Mapping[str, Any], tiny_stage: str,
            root: Path = Path(".")) -> tuple[str, str, str]:
    """(state, what was found, the fix) for one registry entry, from the disk alone (HF_HUB_OFFLINE semantics)."""
    from koemo.core.hub import cached_snapshot, hub_cache_dir, is_commit, weights_problem
    from koemo.asr.registry import HUB_FILES as ASR_FILES
    from koemo.ssl.registry import HUB_FILES as SSL_FILES
    from koemo.text.registry import HUB_FILES as TEXT_FILES, tokenizer_problem

    needs = ("config.json", "preprocessor_config.json") if kind in ("ssl", "asr") else ("config.json",)
    path, hub_id, revision = spec.get("path"), spec.get("hub_id"), spec.get("revision")
    tokenizer = spec.get("tokenizer", "auto")
    download = ("" if not hub_id else
                download_command(hub_id, revision, {"ssl": SSL_FILES, "asr": ASR_FILES}.get(kind) or TEXT_FILES.get(tokenizer, ())))
    if path:
        directory = Path(path) if Path(path).is_absolute() else root / path
        if not directory.is_dir() and directory.name.startswith("tiny-"):
            return OK, f"local-tiny, built by the {tiny_stage} stage (random init, no download)", ""
        if not directory.is_dir():
            return BLOCKER, f"path {path} does not exist", f"point {registry}.{name}.path at the model directory"
        snapshot, where = directory, f"path {path}"
    else:
        cache = hub_cache_dir()
        snapshot = cached_snapshot(cache, hub_id, revision)
        if snapshot is None:
            at = f" at revision {revision}" if revision else ""
            return (BLOCKER, f"{hub_id}{at}: weights not in the Hugging Face cache ({cache})",
                    f"`{download}` (on a machine with internet; copy its HF_HOME here and set HF_HOME)")
        where = f"{hub_id}@{snapshot.name[:10]}"
    problem = tokenizer_problem(name, tokenizer, snapshot) if kind == "text" else None
    if problem:  # first: the other files it would ask for are the wrong tokenizer's
        return BLOCKER, f"{where}: {problem[0]}", problem[1]
    missing = [f for f in needs if not (snapshot / f).is_file()]
    weights = weights_problem(snapshot)
    if weights:
        missing.append(weights if "shards" in weights else "model.safetensors")
    if kind == "text":
        choices, also = _TEXT_FILES[tokenizer]
        if not any((snapshot / f).is_file() for f in choices):
            missing.append(f"a tokenizer file ({' / '.join(choices)})")
    if missing:
        pickles = sorted(p.name for p in snapshot.glob("*.bin"))
        fix = ("koemo loads safetensors only (a .bin is a pickle): "
               + (f"pin {registry}.{name}.revision to a commit with model.safetensors (the repo's safetensors conversion "
                  "pull request; docs/real-data.md, The real models as published), then " if hub_id and not path else "")
               + ("convert it once on a trusted machine, `AutoModel.from_pretrained(DIR, use_safetensors=False)"
                  f".save_pretrained(OUT)`, and set {registry}.{name}.path to OUT")
               if pickles and weights else f"`{download}`" if hub_id and not path
               else f"put {', '.join(missing)} in {path}")
        return BLOCKER, f"{where} lacks {', '.join(missing)}" + (f" (has {', '.join(pickles)})" if pickles else ""), fix
    if hub_id and not path and not is_commit(revision):
        return (WARN, f"{where}: weights + files present offline, but "
                + (f"revision {revision} is a ref, which can move" if revision else "no revision is pinned")
                + ": results follow whatever the cache's ref names", f"set {registry}.{name}.revision: {snapshot.name} "
                "(the commit cached now)")
    return OK, f"{where}: weights + {'tokenizer ' if kind == 'text' else ''}files present offline", ""


def model_size(params: Mapping[str, Any], registry: str, name: str) -> tuple[int, int, float]:
    """(hidden, layers, parameter count) of a registry entry: its cached/local config.json, else known figures."""
    spec = params.get(registry, {}).get(name, {})
    if spec.get("path") and Path(spec["path"]).name.startswith("tiny-"):
        tiny = params.get("tiny_encoders" if registry == "encoders" else "tiny_audio_encoders", {})
        hidden, layers = int(tiny.get("hidden_size", 64)), int(tiny.get("layers", 2))
        return hidden, layers, 12 * layers * hidden**2 + int(tiny.get("vocab_size", 2000)) * hidden
    config = None
    if spec.get("path"):
        config = Path(spec["path"]) / "config.json"
    elif spec.get("hub_id"):
        from koemo.core.hub import cached_snapshot, hub_cache_dir

        snap = cached_snapshot(hub_cache_dir(), spec["hub_id"], spec.get("revision"))
        config = snap / "config.json" if snap else None
    if config is not None and config.is_file():
        conf = json.loads(config.read_text(encoding="utf-8"))
        hidden, layers = int(conf.get("hidden_size", 768)), int(conf.get("num_hidden_layers", 12))
        vocab = int(conf.get("vocab_size", 0) or 0) if registry == "encoders" else 0
        return hidden, layers, 12 * layers * hidden**2 + vocab * hidden + (4.2e6 if registry != "encoders" else 0)
    return _KNOWN.get(spec.get("hub_id", ""), (768, 12, 110e6))[:2] + (_KNOWN.get(spec.get("hub_id", ""), (0, 0, 110e6))[2],)
