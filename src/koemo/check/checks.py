"""`koemo check`: everything the current params.yaml will need, checked in seconds before hours of stages.

The real job fails late: a missing encoder snapshot surfaces when `text_embeddings` starts, a full disk during
`audio_features`, both after tens of minutes of data stages. This module looks at what params.yaml names — the
data directory, every encoder, this machine — without running a stage: it reads the release CSVs (no pandas frame
per row), walks the directory once, reads a sample of wav *headers* (never decodes audio), looks encoders up on
disk (no hub call, no model load) and asks `nvidia-smi`, not torch, about the GPU. Each check is one `Row`:
check | state | the fix; a `BLOCKER` row makes `koemo check` exit 1.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from koemo.core.device import driver_version, gpus  # noqa: F401  (nvidia-smi's answers, shared with the stages)
from koemo.core.hub import download_command

OK, WARN, BLOCKER = "ok", "warn", "BLOCKER"
HEADER_SAMPLE = 32          # wav headers read (evenly spaced over the rows): enough to see rates/channels/lengths
MARGIN = 1.2                # projected disk × this must be free: temp siblings of an output exist while it is renamed
PEAK_RSS = 1.5 * 2**30      # `make scale`: data stages' peak RSS ≤ 1.35 GiB, flat in N (benchmarks/README.md)
# Files a release directory may hold besides CSVs and wavs, silently skipped by the reader: named, never ignored.
_HARMLESS = {".md", ".txt"}
# Sizes of the registry's hub models when their config.json is not cached yet (hidden, layers, params, vocab).
_KNOWN = {"skt/kobert-base-v1": (768, 12, 92e6), "klue/roberta-base": (768, 12, 111e6),
          "monologg/koelectra-base-v3-discriminator": (768, 12, 112e6),
          "kresnik/wav2vec2-large-xlsr-korean": (1024, 24, 317e6), "facebook/wav2vec2-base": (768, 12, 95e6)}


@dataclass
class Row:
    check: str
    state: str
    detail: str
    fix: str = ""


# ---- the data -------------------------------------------------------------------------------------------------
def check_data(params: Mapping[str, Any], root: Path) -> tuple[list[Row], int]:
    """Rows about data.dir, and the projected number of clips (for the disk estimate)."""
    from koemo.core.params import DEMO_DIR

    data = params.get("data", {})
    source, directory = data.get("source", "demo"), data.get("dir", DEMO_DIR)
    path = Path(directory) if Path(directory).is_absolute() else root / directory
    if source == "demo":
        size = int(params.get("demo", {}).get("size", 1200))
        if not path.is_dir() and str(directory).rstrip("/") == DEMO_DIR:
            return [Row("data", OK, f"demo: {size} utterances, synthesised by the demo stage into {directory}")], size
    if source in ("kemdy20", "kemdy19"):  # ETRI KEMDy: annotation/SessNN_eval.csv + wav/SessionNN/ (koemo.corpus.kemdy)
        found = (path / "annotation").is_dir() and (path / "wav").is_dir()
        clips = sum(1 for _ in (path / "wav").rglob("*.wav")) if found else 0
        return [Row("data.dir", OK if found else BLOCKER,
                    f"{source}: {'annotation/ and wav/ found' if found else 'no annotation/ and wav/'} below {directory}"
                    + (f", {clips} wavs" if found else ""),
                    "" if found else f"point data.dir at the {source} copy holding annotation/ and wav/")], clips
    rows: list[Row] = []
    if not path.is_dir():
        near = _csvs_near(path)
        return [Row("data.dir", BLOCKER, f"{directory} does not exist" + (f"; CSVs nearby: {near}" if near else ""),
                    "put the release CSVs and unzipped wavs there, or `koemo profile aihub-gpu --dir /path/to/copy`")], 0
    from koemo.corpus.aihub import BadCSV, NotAnAIHubCSV, read_release_csv, release_name

    csvs, others, index = _walk(path)
    if not csvs:
        near = _csvs_near(path)
        xlsx = [p for p in others if p.suffix.lower() == ".xlsx"]
        fix = ("save the .xlsx as CSV (cp949 or UTF-8) below data.dir" if xlsx else
               f"move the release CSVs below {directory}" + (f" (found {near})" if near else "")
               + ", or point data.dir at the folder holding them")
        return [Row("release CSVs", BLOCKER, f"no *.csv below {directory} ({len(index)} wavs)", fix)], 0
    total, ids = 0, []
    for csv_path in csvs:
        name = csv_path.relative_to(path).as_posix()
        try:
            frame, encoding, width = read_release_csv(csv_path)
        except (BadCSV, NotAnAIHubCSV) as err:
            rows.append(Row(f"CSV {name}", BLOCKER, str(err).split("\n")[0][:300],
                            "move it out of data.dir (not an AI Hub release)" if isinstance(err, NotAnAIHubCSV)
                            else "fix or re-export that file"))
            continue
        total += len(frame)
        ids += list(frame["wav_id"])
        rows.append(Row(f"CSV {name}", OK if len(frame) else BLOCKER,
                        f"{release_name(csv_path)}: {len(frame):,} rows, {encoding}, header {width} fields",
                        "" if len(frame) else "re-export it with its rows"))
    found = [i for i in ids if i in index]
    share = len(found) / len(ids) if ids else 0.0
    if ids:
        state = OK if share == 1 else (BLOCKER if not found else WARN)
        rows.append(Row("wavs", state, f"{len(found):,} of {len(ids):,} rows have their <wav_id>.wav ({share:.1%})",
                        "" if state == OK else f"unzip the wav folders below {directory} (rows without a wav are "
                                                "dropped as missing_wav)"))
        rows.append(_header_sample([index[i] for i in found]))
    unused = len(set(index) - set(ids))
    if unused:
        rows.append(Row("unlisted wavs", WARN, f"{unused:,} wavs below {directory} are in no CSV row (ignored)",
                        "add the CSV that lists them, or remove them"))
    skipped = {}
    for other in others:
        skipped.setdefault(other.suffix.lower() or "(none)", []).append(other)
    for suffix, files in sorted(skipped.items()):
        if suffix in _HARMLESS:
            continue
        hint = {".zip": "unzip it (the reader does not open archives)", ".xlsx": "save it as CSV",
                ".flac": "convert to wav", ".mp3": "convert to wav"}.get(suffix, "remove it or convert it")
        rows.append(Row(f"other files ({suffix})", WARN, f"{len(files)} below {directory} not read, e.g. "
                        f"{files[0].relative_to(path).as_posix()}", hint))
    return rows, total  # every row as a clip: an upper bound (labels keeps fewer), and the figure once wavs are fixed


def _walk(path: Path) -> tuple[list[Path], list[Path], dict[str, Path]]:
    """(CSVs, other files, wav stem → path) below `path` in one walk; the wav index as `aihub.index_wavs` builds it
    (sorted walk, first path of a stem wins), so the share of found wavs is the one the corpus stage will see."""
    csvs, others, wavs = [], [], {}
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames):
            suffix = os.path.splitext(name)[1].lower()
            if suffix == ".wav":
                wavs.setdefault(name[:-4], Path(dirpath) / name)
            elif suffix == ".csv":
                csvs.append(Path(dirpath) / name)
            elif not name.startswith("."):
                others.append(Path(dirpath) / name)
    return csvs, others, wavs


def _csvs_near(path: Path) -> str:
    """CSVs in the parent of `path` and its siblings (one level): where a misplaced release usually is."""
    parent = path.parent if path.parent.is_dir() else None
    if parent is None:
        return ""
    found = sorted(p for p in list(parent.glob("*.csv")) + list(parent.glob("*/*.csv")) if path not in p.parents)
    return ", ".join(str(p) for p in found[:3])


def _header_sample(paths: Sequence[Path]) -> Row:
    """Rate, channels and length of up to HEADER_SAMPLE wavs, evenly spaced; headers only (soundfile.info)."""
    import soundfile as sf

    from koemo.clips.decode import wav_truncation

    if not paths:
        return Row("wav headers", BLOCKER, "no wav to sample", "see the wavs row")
    step = max(1, len(paths) // HEADER_SAMPLE)
    sample = list(paths[::step])[:HEADER_SAMPLE]
    rates, channels, seconds, bad = {}, {}, [], []
    for p in sample:
        try:
            info = sf.info(str(p))
        except Exception as err:  # soundfile raises several types for a broken header
            bad.append(f"{p.name}: {str(err).splitlines()[0][:80]}")
            continue
        cut = wav_truncation(str(p))
        if cut:
            bad.append(f"{p.name}: {cut}")
        rates[info.samplerate] = rates.get(info.samplerate, 0) + 1
        channels[info.channels] = channels.get(info.channels, 0) + 1
        seconds.append(info.duration)
    detail = (f"{len(sample)} sampled: rate {_counts(rates, ' Hz')}, channels {_counts(channels)}"
              + (f", {min(seconds):.1f}-{max(seconds):.1f} s (median {sorted(seconds)[len(seconds) // 2]:.1f})"
                 if seconds else ""))
    if bad:
        return Row("wav headers", WARN if len(bad) < len(sample) else BLOCKER, f"{detail}; {len(bad)} unreadable or "
                   f"cut short, e.g. {bad[0]}", "copy those wavs again (the stages drop them as unreadable/truncated)")
    return Row("wav headers", OK, detail)


def _counts(counts: Mapping[Any, int], unit: str = "") -> str:
    return ", ".join(f"{k}{unit}" + (f" ×{n}" if len(counts) > 1 else "") for k, n in sorted(counts.items()))


# ---- the encoders -----------------------------------------------------------------------------------------------
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
    from koemo.core.hub import _weights_problem, hub_cache_dir, is_commit
    from koemo.ssl.registry import HUB_FILES as SSL_FILES
    from koemo.text.registry import HUB_FILES as TEXT_FILES, tokenizer_problem

    needs = ("config.json", "preprocessor_config.json") if kind in ("ssl", "asr") else ("config.json",)
    path, hub_id, revision = spec.get("path"), spec.get("hub_id"), spec.get("revision")
    tokenizer = spec.get("tokenizer", "auto")
    download = ("" if not hub_id else
                download_command(hub_id, revision, SSL_FILES if kind == "ssl" else TEXT_FILES.get(tokenizer, ())))
    if path:
        directory = Path(path) if Path(path).is_absolute() else root / path
        if not directory.is_dir() and directory.name.startswith("tiny-"):
            return OK, f"local-tiny, built by the {tiny_stage} stage (random init, no download)", ""
        if not directory.is_dir():
            return BLOCKER, f"path {path} does not exist", f"point {registry}.{name}.path at the model directory"
        snapshot, where = directory, f"path {path}"
    else:
        cache = hub_cache_dir()
        snapshot = _cached_snapshot(cache, hub_id, revision)
        if snapshot is None:
            at = f" at revision {revision}" if revision else ""
            return (BLOCKER, f"{hub_id}{at}: weights not in the Hugging Face cache ({cache})",
                    f"`{download}` (on a machine with internet; copy its HF_HOME here and set HF_HOME)")
        where = f"{hub_id}@{snapshot.name[:10]}"
    problem = tokenizer_problem(name, tokenizer, snapshot) if kind == "text" else None
    if problem:  # first: the other files it would ask for are the wrong tokenizer's
        return BLOCKER, f"{where}: {problem[0]}", problem[1]
    missing = [f for f in needs if not (snapshot / f).is_file()]
    weights = _weights_problem(snapshot)
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


def _cached_snapshot(cache: Path, hub_id: str, revision: str | None) -> Path | None:
    """The snapshot directory the hub would load offline: refs/<revision or main> → snapshots/<commit>, or a commit
    hash given directly as the revision."""
    repo = cache / f"models--{hub_id.replace('/', '--')}"
    ref = repo / "refs" / (revision or "main")
    commit = ref.read_text().strip() if ref.is_file() else (revision or "")
    snapshot = repo / "snapshots" / commit
    return snapshot if commit and snapshot.is_dir() else None


# ---- the machine --------------------------------------------------------------------------------------------------
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
        from koemo.core.hub import hub_cache_dir

        snap = _cached_snapshot(hub_cache_dir(), spec["hub_id"], spec.get("revision"))
        config = snap / "config.json" if snap else None
    if config is not None and config.is_file():
        conf = json.loads(config.read_text(encoding="utf-8"))
        hidden, layers = int(conf.get("hidden_size", 768)), int(conf.get("num_hidden_layers", 12))
        vocab = int(conf.get("vocab_size", 0) or 0) if registry == "encoders" else 0
        return hidden, layers, 12 * layers * hidden**2 + vocab * hidden + (4.2e6 if registry != "encoders" else 0)
    return _KNOWN.get(spec.get("hub_id", ""), (768, 12, 110e6))[:2] + (_KNOWN.get(spec.get("hub_id", ""), (0, 0, 110e6))[2],)


def gpu_estimate(params: Mapping[str, Any]) -> list[tuple[str, float, str]]:
    """(job, bytes per GPU, how) of the GPU-heavy jobs. Fine-tuning: 16 B per parameter (fp32 weights + grads + two
    Adam moments; DDP keeps a full copy on every GPU) + activations ≈ 34·rows·tokens·hidden·layers bytes (half
    precision, Korthikanti et al. 2022) for this GPU's rows: `runtime.processes` share every global batch, so each
    GPU holds batch ÷ processes rows; gradient checkpointing keeps about two layers' worth. Frozen extraction (one
    process): fp32 weights (4 B per parameter) + every layer's hidden states for one batch (batch_seconds × 50
    frames/s) + the feature encoder's first conv block (conv output, norm, activation) at fp32 — the figure for the
    CPU's fp32; under the GPU's bf16/fp16 autocast the activations take about half. An estimate:
    `benchmarks/gpu_check.py` measures the real ones."""
    from math import ceil

    from koemo.train.distributed import processes as process_count

    try:
        procs = process_count(params.get("runtime"))
    except Exception:  # a bad value is the params schema's to report
        procs = 1
    per_gpu = f" on each of {procs} GPUs" if procs > 1 else ""
    jobs = []
    text = params.get("text", {}).get("model")
    if text:
        hidden, layers, count = model_size(params, "encoders", text)
        settings = params.get("train_text", {})
        batch = int(settings.get("batch_size", 16))
        rows = ceil(batch / procs)
        tokens = int(params.get("encoders", {}).get(text, {}).get("max_length", 64))
        depth = min(layers, 2) if settings.get("gradient_checkpointing") else layers
        act = 34 * rows * tokens * hidden * depth
        jobs.append((f"train_text ({text}, batch {batch}{f', {rows} rows per GPU' if procs > 1 else ''})",
                     16 * count + act, f"16 B × {count / 1e6:.0f} M params + activations {act / 2**30:.2f} GiB{per_gpu}"))
    ssl = params.get("ssl", {}).get("model")
    if ssl:
        hidden, layers, count = model_size(params, "audio_encoders", ssl)
        seconds = float(params.get("ssl_features", {}).get("batch_seconds", 64))
        frames = seconds * 50
        act = frames * hidden * (layers + 1) * 4 + 3 * seconds * 16000 / 5 * 512 * 4  # hidden states + first conv block
        jobs.append((f"ssl_features ({ssl}, {seconds:.0f} s batches)", 4 * count + act,
                     f"fp32: 4 B × {count / 1e6:.0f} M params + hidden states and first conv block {act / 2**30:.2f} GiB"
                     " (about half the activations under bf16/fp16 autocast)"))
        w2v = params.get("train_wav2vec2", {})
        if w2v.get("mode") == "finetune":
            batch, crop = int(w2v.get("batch_size", 16)), float(w2v.get("max_seconds", 15))
            rows = ceil(batch / procs)
            depth = min(layers, 2) if w2v.get("gradient_checkpointing") else layers
            act = 34 * rows * crop * 50 * hidden * depth
            jobs.append((f"train_wav2vec2 finetune ({ssl}, batch {batch} × {crop:.0f} s"
                         f"{f', {rows} rows per GPU' if procs > 1 else ''})", 16 * count + act,
                         f"16 B × {count / 1e6:.0f} M params + activations {act / 2**30:.1f} GiB{per_gpu}"))
    return jobs


def _memory_fix(job: str) -> str:
    """The params keys that lower a job's GPU memory (the ones `stage_runner` names after a CUDA out of memory)."""
    from koemo.core.runner import memory_advice

    stage = job.split()[0]
    return f"{stage}: {memory_advice(stage)[0].lower()}{memory_advice(stage)[1:]}"


def _needs_gpu(params: Mapping[str, Any]) -> list[str]:
    """What makes a GPU effectively required: fine-tuning wav2vec2, or pretrained (hub) encoders to run."""
    why = []
    if params.get("train_wav2vec2", {}).get("mode") == "finetune":
        why.append("train_wav2vec2.mode=finetune")
    for kind, registry in (("text", "encoders"), ("ssl", "audio_encoders")):
        chosen = params.get(kind, {})
        for name in dict.fromkeys(list(chosen.get("encoders") or []) + [chosen.get("model")]):
            if name and params.get(registry, {}).get(name, {}).get("hub_id"):
                why.append(f"{registry}.{name}")
    return why


def projected_bytes(params: Mapping[str, Any], clips: int) -> dict[str, float]:
    """Bytes the outputs will take for `clips` labelled clips, per feature kind, from the params alone: stored rows ×
    row bytes. Training rows (1 − split.test_size) get augmented copies (noise × copies, stretch, pitch) for kinds with
    `augment: true`. DVC links outputs to its cache, so each byte counts once (`make scale` measures the same:
    342 KiB per labelled clip with the defaults, mel dominating)."""
    audio = params.get("audio", {})
    aug = audio.get("augment", {})
    methods = aug.get("methods", [])
    copies = (int(aug.get("copies", 1)) if "noise" in methods else 0) + sum(m in methods for m in ("stretch", "pitch"))
    train_share = 1 - float(params.get("split", {}).get("test_size", 0.2))
    size = {"float16": 2, "float32": 4}
    out: dict[str, float] = {}
    for kind in ["mel", "melmean"] + list(audio.get("extra_features", [])):
        spec = audio.get(kind, {})
        dims = (spec.get("n_mels", 128) * spec.get("max_frames", 400) if kind == "mel" else
                spec.get("n_mfcc", 40) * spec.get("max_frames", 400) if kind == "mfcc" else spec.get("n_mels", 13))
        rows = 1 + (copies * train_share if spec.get("augment", False) else 0)
        out[f"features/{kind}"] = clips * rows * dims * size.get(spec.get("dtype", "float32"), 4)
    out["features/egemaps"] = clips * 88 * 4
    for name in params.get("ssl", {}).get("encoders", []):
        hidden, layers, _ = model_size(params, "audio_encoders", name)
        out[f"ssl/{name}"] = clips * (layers + 1) * hidden * 2
    for name in params.get("text", {}).get("encoders", []):
        hidden, _, _ = model_size(params, "encoders", name)
        out[f"embeddings/{name}"] = clips * hidden * 4
    text = params.get("text", {}).get("model")
    if text:  # one fine-tuned encoder per training fold, float32
        out[f"models/text ({text} × {params.get('train', {}).get('folds', 2)} folds)"] = (
            model_size(params, "encoders", text)[2] * 4 * int(params.get("train", {}).get("folds", 2)))
    out["manifest, labels, other models"] = clips * 2048 + 50 * 2**20
    return out


def check_machine(params: Mapping[str, Any], root: Path, clips: int, free_disk: int | None = None,
                  gpu_list: list[tuple[str, int]] | None = None) -> list[Row]:
    """GPU vs the models, cores vs runtime.jobs, free disk vs the projected outputs, available RAM."""
    rows = []
    found = gpus() if gpu_list is None else gpu_list
    estimate = gpu_estimate(params)
    need_gpu = _needs_gpu(params)
    unusable = None
    if found and gpu_list is None:  # a real nvidia-smi answered: can this torch use what it lists?
        from koemo.core.device import unusable_gpu_reason

        unusable = unusable_gpu_reason([n for n, _ in found], driver_version())
    if unusable:  # a blocker where the job needs the GPU; the tiny demo runs on the CPU anyway
        rows.append(Row("GPU", BLOCKER if need_gpu else WARN, unusable.split(" Fix: ")[0].rstrip(".")
                        + ("; `device: auto` would train on the CPU (" + ", ".join(need_gpu) + ")" if need_gpu
                           else "; nothing here needs a GPU (local-tiny encoders)"),
                        unusable.split(" Fix: ")[-1]))
    elif found:
        name, memory = found[0]
        biggest = max(estimate, key=lambda e: e[1]) if estimate else None
        over = [job for job in estimate if job[1] > memory]
        try:
            from koemo.train.distributed import processes as process_count

            procs = process_count(params.get("runtime"))
        except Exception:
            procs = 1
        if over:
            rows.append(Row("GPU memory", BLOCKER, "; ".join(f"{name} {memory / 2**30:.0f} GiB < {job} ≈ "
                                                             f"{size / 2**30:.1f} GiB ({how})" for job, size, how in over),
                            "; ".join(_memory_fix(job) for job, _, _ in over)))
        elif procs > len(found):
            rows.append(Row("GPU", BLOCKER, f"runtime.processes {procs} > {len(found)} GPU(s) on this machine",
                            f"runtime.processes: {len(found)} (one process per GPU)"))
        else:
            rows.append(Row("GPU", OK, f"{len(found)} × {name} {memory / 2**30:.0f} GiB; largest job "
                            + (f"{biggest[0]} ≈ {biggest[1] / 2**30:.1f} GiB ({biggest[2]})" if biggest else "none")))
    elif "train_wav2vec2.mode=finetune" in need_gpu:
        rows.append(Row("GPU", BLOCKER, "none (nvidia-smi not found); train_wav2vec2.mode=finetune needs one",
                        "run on a GPU machine, or `koemo profile aihub-cpu` (mode frozen, no-download models)"))
    elif need_gpu:
        biggest = max(estimate, key=lambda e: e[1])
        rows.append(Row("GPU", WARN, f"none; pretrained encoders on the CPU ({', '.join(need_gpu)}): a few sentences/"
                        "clips per second, days to weeks for the full corpus; a GPU needs ≈ "
                        f"{biggest[1] / 2**30:.1f} GiB for {biggest[0]} ({biggest[2]})",
                        "a GPU machine, or `koemo profile aihub-cpu`"))
    else:
        rows.append(Row("GPU", OK, "none needed: local-tiny encoders, tfidf and egemaps run on the CPU"))
    from koemo.core.device import thread_budget

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    runtime = params.get("runtime", {})
    jobs = int(runtime.get("jobs", 1))
    threads, why = thread_budget(runtime)
    over = jobs * threads > cores
    rows.append(Row("CPU cores", WARN if over or jobs > cores else OK,
                    f"{cores} usable; runtime.jobs {jobs} × {threads} threads ({why})",
                    "lower runtime.jobs / runtime.threads to fit the cores (oversubscription: ~19× slower steps)"
                    if over or jobs > cores else ""))
    need = projected_bytes(params, clips)
    total = sum(need.values())
    free = shutil.disk_usage(_existing(root / "data")).free if free_disk is None else free_disk
    top = sorted(need.items(), key=lambda kv: -kv[1])[:3]
    per_clip = f"{total / clips / 1024:.0f} KiB/clip: " if clips else ""
    detail = (f"{free / 2**30:.1f} GiB free; outputs ≈ {total / 2**30:.1f} GiB for {clips:,} clips "
              f"({per_clip}" + ", ".join(f"{k} {v / 2**30:.1f} GiB" for k, v in top) + ")")
    if free < total * MARGIN:
        rows.append(Row("disk", BLOCKER, detail, f"free {(total * MARGIN - free) / 2**30:.1f} GiB more (need ×{MARGIN} "
                        "the outputs), or move the repo / DVC cache (`dvc cache dir`) to a larger disk"))
    else:
        rows.append(Row("disk", OK, detail))
    available = _mem_available()
    if available is not None:
        text = params.get("text", {}).get("model")
        train = 16 * model_size(params, "encoders", text)[2] if text and not found else 0
        ram = max(PEAK_RSS, train + 2**30)
        rows.append(Row("RAM", OK if available >= ram else WARN,
                        f"{available / 2**30:.1f} GiB available; stages peak ≈ {ram / 2**30:.1f} GiB"
                        + (" (text fine-tuning on the CPU: 16 B/param)" if train + 2**30 > PEAK_RSS
                           else " (make scale: flat in N)"),
                        "" if available >= ram else "close other programs, or runtime.jobs 1"))
    return rows


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


# ---- all of it ------------------------------------------------------------------------------------------------------
def run_checks(params: Mapping[str, Any], root: Path = Path("."), free_disk: int | None = None,
               gpu_list: list[tuple[str, int]] | None = None) -> list[Row]:
    data_rows, clips = check_data(params, root)
    return data_rows + check_encoders(params, root) + check_machine(params, root, clips, free_disk, gpu_list)


def render(rows: Iterable[Row]) -> str:
    """check | state | detail — the fix, one line per check (wrapped fix on its own line when long)."""
    import unicodedata

    def cells(text: str) -> int:  # terminal columns: Hangul takes two
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    rows = list(rows)
    width = max(cells(r.check) for r in rows)
    lines = [f"{'check':<{width}}  {'state':<7}  detail — the fix", "-" * (width + 40)]
    for r in rows:
        pad = " " * (width - cells(r.check))
        lines.append(f"{r.check}{pad}  {r.state:<7}  {r.detail}" + (f"\n{'':<{width}}  {'':<7}  → {r.fix}" if r.fix else ""))
    blockers = sum(r.state == BLOCKER for r in rows)
    lines.append(f"{blockers} blocker(s), {sum(r.state == WARN for r in rows)} warning(s)"
                 + (": fix the BLOCKER rows before `dvc repro`" if blockers else ": ready for `dvc repro`"))
    return "\n".join(lines)
