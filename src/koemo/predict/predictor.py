"""`koemo predict`: class probabilities of every base model and of the stack for new utterances.

Everything comes from what `dvc repro` left under `data/models/` (fold weights, per-fold scalers, the
meta-learner) and is computed by the stages' own code: the same decoder and resampler, the same batched
feature extractor, the same registry encoders and pooling, the same model classes. A base model's output is
the mean over its fold models, exactly as its test probabilities in `data/predictions/<model>.parquet`.

Before anything is loaded, each model's recorded params (`koemo.models.registry.recorded_params`) are compared with params.yaml:
weights trained on other features or another encoder would give confident nonsense, so that is an error
naming every differing key. A model whose input is absent (no wav, or no text) is skipped (NaN), except the
fusion model, which was trained with modality dropout to predict from either modality alone; the stack needs
every base model it reads (just one when the stack stage chose a single member over the combination). A wav
without a text is first transcribed by `asr.model` when its weights are present (`koemo.asr`), so the text
models and the stack answer too; the notes say the text came from ASR (or why it could not).

`root` is a project checkout or a `koemo export` folder: the latter's `koemo-export.json` says where the copied
encoder and ASR weights are, so nothing outside the folder is read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from koemo.core.params import load_params
from koemo.models.registry import MODELS, recorded_params
# Utterance: also what callers pass to Predictor.predict; PredictError: also raised (and imported) from here
from koemo.predict.notices import PredictError, Utterance, given_value
from koemo.train.lineage import differences

MODELS_DIR = Path("data/models")
EXPORT_MANIFEST = "koemo-export.json"  # in a `koemo export` folder: {"weights": {"<section>.<name>": "<relative dir>"}}
WEIGHTS = {"tfidf": "weights.safetensors"}  # a fold's weights file, where it is not a network's model.safetensors
TEXT_ENCODER_MODELS = ("text", "multimodal", "fusion")  # read text.model's tokens (truncated at its max_length)


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise PredictError(f"{path} is missing ({what}). Build the models first: `dvc repro` (or `make demo`), "
                           "or `dvc pull` them from your remote; run `koemo predict` from the project root or pass --root.")
    return json.loads(path.read_text(encoding="utf-8"))


def _local(root: Path, spec: Mapping[str, Any]) -> dict:
    """A registry entry whose relative `path` is made absolute under `root` (so predict runs from anywhere)."""
    spec = dict(spec)
    if spec.get("path") and not Path(spec["path"]).is_absolute():
        spec["path"] = str(root / spec["path"])
    return spec


class Predictor:
    """Loads lazily what each model needs; `predict(utterances)` → {model: [n, classes] probabilities}."""

    def __init__(self, root: str | Path = ".", device: str = "auto", batch_size: int = 32, asr: bool = True):
        from koemo.core.device import resolve_device

        self.root = Path(root).resolve()
        params_path = self.root / "params.yaml"
        if not params_path.is_file():
            raise PredictError(f"no params.yaml in {self.root}: run from the koemo project root or pass --root DIR")
        self.params = load_params(params_path)
        manifest = self.root / EXPORT_MANIFEST
        self.exported = json.loads(manifest.read_text(encoding="utf-8")).get("weights", {}) if manifest.is_file() else {}
        self.use_asr = bool(asr)
        self.classes = list(self.params["labels"]["classes"])
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        models_dir = self.root / MODELS_DIR
        self.meta = _read_json(models_dir / "stack" / "meta.json", "the stack's meta-learner")
        self.models = list(self.meta["models"])
        self.configs = {m: _read_json(models_dir / m / "config.json", f"the {m} model") for m in self.models}
        self._check_params()
        self._cache: dict[str, Any] = {}
        self._decoded: dict[tuple[str, int], Any] = {}  # (path, rate) → Decoded, for one `predict` call
        self._row: dict[str, int] = {}                  # path → its utterance's row, for messages
        self.notes: list[list[str]] = []                # per utterance of the last `predict`: what no answer shows
        self.transcripts: list[str | None] = []         # per utterance of the last `predict`: the ASR text it used

    # ---- artefact checks -------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        problems = []
        stack_now = self.params["stack"]
        for line in differences({"stack": self.meta.get("params", {})}, {"stack": stack_now}):
            problems.append(f"  data/models/stack: {line}")
        if self.meta["classes"] != self.classes:
            problems.append(f"  data/models/stack: labels.classes {self.meta['classes']} → {self.classes}")
        for model, config in self.configs.items():
            for line in differences(config.get("params", {}), recorded_params(model, self.params)):
                problems.append(f"  data/models/{model}: {line}")
            for k in range(int(config["folds"])):
                weights = WEIGHTS.get(model, "model.safetensors")
                if not (self.root / MODELS_DIR / model / f"fold{k}" / weights).is_file():
                    problems.append(f"  data/models/{model}/fold{k}/{weights} is missing")
        if problems:
            raise PredictError("the models in data/models are incomplete or were built with other params than "
                               "params.yaml (recorded → now):\n" + "\n".join(problems[:20]) +
                               "\nRun `dvc repro` to rebuild them (or `dvc checkout` the commit whose params match).")

    def entry(self, section: str, name: str) -> dict:
        """params' `<section>.<name>` registry entry, its weights found under root: an export's copy, or `path`."""
        if f"{section}.{name}" in self.exported:
            spec = {k: v for k, v in self.params[section][name].items() if k not in ("hub_id", "revision")}
            return {**spec, "path": str(self.root / self.exported[f"{section}.{name}"])}
        return _local(self.root, self.params[section][name])

    def _asr_texts(self, paths: Sequence[str]) -> tuple[list[str] | None, str]:
        """(asr.model's transcripts of `paths`, what made them), or (None, why not: its weights are absent)."""
        from koemo.asr.registry import load_asr
        from koemo.asr.transcribe import transcribe
        from koemo.core.hub import EncoderUnavailable

        name = self.params.get("asr", {}).get("model")
        if not name or name not in self.params.get("asr_models", {}):
            return None, "params.yaml names no asr.model"
        try:
            recognizer = self.once("asr", lambda: load_asr(name, self.entry("asr_models", name)))
        except EncoderUnavailable as err:
            return None, " ".join(str(err).split())
        waves = self._waves(paths, recognizer.sample_rate, 1, "one sample")
        settings = self.params.get("transcribe", {})
        texts = transcribe(recognizer, waves, int(settings.get("batch_size", 16)), int(settings.get("max_new_tokens", 48)),
                           int(settings.get("num_beams", 1)), device=self.device)
        return texts, f"{name} ({recognizer.source})"

    # ---- shared inputs -------------------------------------------------------------------------------------
    def once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def _text_encoder(self):
        """The text.model registry encoder, frozen (sentence embeddings, as text_embeddings computed them)."""
        from koemo.text.registry import load_encoder

        name = self.params["text"]["model"]
        return self.once("text_encoder", lambda: load_encoder(name, self.entry("encoders", name)))

    def sentence_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        from koemo.text.embed import embed_texts

        return embed_texts(self._text_encoder(), texts, self.batch_size, device=self.device, progress=False)

    def _waves(self, paths: Sequence[str], rate: int, min_samples: int, needs: str) -> list[np.ndarray]:
        """Mono float32 at `rate`, as the stages decode them (each clip once per call, whichever models read it);
        every unusable clip listed in one error — a silent one too (`audio.min_rms_dbfs`): the stages drop those,
        and any model would still answer them with confidence."""
        from koemo.clips.decode import decode_clip, reject_silent

        waves, bad = [], []
        for path in paths:
            if (path, rate) not in self._decoded:
                self._decoded[(path, rate)] = reject_silent(decode_clip(path, rate), self.params["audio"].get("min_rms_dbfs"))
            clip, row = self._decoded[(path, rate)], self._row.get(path, "?")
            if clip.wave is None:
                bad.append(f"  row {row}: {path}: {clip.reason} ({clip.detail})")
            elif len(clip.wave) < min_samples:
                bad.append(f"  row {row}: {path}: {len(clip.wave)} samples at {rate} Hz, shorter than {needs} ({min_samples})")
            waves.append(clip.wave)
        if bad:
            raise PredictError("cannot use these wavs:\n" + "\n".join(bad[:10]) + "\nFix or remove them and run again.")
        return waves

    def features(self, kind: str, paths: Sequence[str]) -> np.ndarray:
        """`audio_features` rows of `kind` for un-augmented clips, each cropped as the stage crops it: [n, *shape] float32."""
        from koemo.features.mel.spectral import FeatureExtractor, FeatureSpec

        spec = FeatureSpec.from_params(kind, self.params["audio"])
        extractor = self.once(f"extractor:{kind}", lambda: FeatureExtractor(spec, self.device))
        waves = [w[:spec.crop_samples] for w in self._waves(paths, spec.sample_rate, spec.min_samples, f"one {kind} window")]
        return np.concatenate([extractor(waves[i:i + self.batch_size]) for i in range(0, len(waves), self.batch_size)])

    def egemaps(self, paths: Sequence[str]) -> np.ndarray:
        """`egemaps_features` rows [n, 88]: the functionals of each clip's first `egemaps.max_seconds`."""
        from koemo.features.egemaps import MIN_SECONDS, EgemapsError, egemaps_functionals

        rate = int(self.params["audio"]["sample_rate"])
        crop = int(round(float(self.params["egemaps"]["max_seconds"]) * rate))
        rows = []
        for path, wave in zip(paths, self._waves(paths, rate, int(MIN_SECONDS * rate), "openSMILE's shortest clip")):
            try:
                rows.append(egemaps_functionals(wave[:crop], rate))
            except EgemapsError as err:
                raise PredictError(f"row {self._row.get(path, '?')}: {path}: {err}") from None
        return np.stack(rows)

    def ssl_features(self, paths: Sequence[str]) -> np.ndarray:
        """`ssl_features@<ssl.model>` rows: [n, layers, dim], through the cache's float16 as training saw them."""
        from koemo.ssl.pooling import PoolStats, pool_clips, to_fp16
        from koemo.ssl.registry import load_audio_encoder

        name = self.params["ssl"]["model"]
        encoder = self.once("audio_encoder", lambda: load_audio_encoder(name, self.entry("audio_encoders", name)))
        waves = self._waves(paths, encoder.sample_rate, encoder.min_samples, f"{name}'s receptive field")
        settings = self.params["ssl_features"]
        stats = PoolStats()
        pooled = pool_clips(encoder, waves, float(settings["chunk_seconds"]), float(settings["batch_seconds"]),
                            device=self.device, stats=stats)
        return to_fp16(pooled, stats).astype(np.float32)

    # ---- fold models -----------------------------------------------------------------------------------------
    def batches(self, arrays: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
        n = len(next(iter(arrays.values())))
        return [{key: value[start:start + self.batch_size] for key, value in arrays.items()}
                for start in range(0, n, self.batch_size)]

    def fold_mean(self, model_name: str, network, batches: Callable[[int], Sequence[Mapping[str, np.ndarray]]]) -> np.ndarray:
        """Mean over fold models of softmax(network(**batch)) for `batches(fold)` in order: one network, each
        fold's weights loaded into it in turn (strict: a shape or name mismatch is an error, not a partial load)."""
        import torch
        from safetensors.torch import load_model

        folds = int(self.configs[model_name]["folds"])
        total = None
        network.to(self.device).eval()
        for k in range(folds):
            load_model(network, str(self.root / MODELS_DIR / model_name / f"fold{k}" / "model.safetensors"),
                       strict=True, device=str(self.device))
            probs = []
            with torch.inference_mode():
                for batch in batches(k):
                    inputs = {key: torch.as_tensor(np.asarray(value)).to(self.device) for key, value in batch.items()}
                    probs.append(torch.softmax(network(**inputs).float(), dim=-1).cpu().numpy())
            fold = np.concatenate(probs).astype(np.float64)
            total = fold if total is None else total + fold
        return (total / folds).astype(np.float32)

    def spec(self, model: str) -> dict:
        return self.params[f"train_{model}"]

    # ---- notices: what a model did not read ---------------------------------------------------------------------
    def _token_counts(self, texts: Sequence[str]) -> tuple[list[int], bool]:
        """(tokens of each text with special tokens, untruncated; exact?) under the text.model tokenizer. A tokenizer
        without an untruncated mode gives the truncated count (a text that fills max_length may have been longer)."""
        encoder = self._text_encoder()
        try:
            return [len(ids) for ids in encoder.tokenizer(list(texts), add_special_tokens=True,
                                                          truncation=False)["input_ids"]], True
        except Exception:  # noqa: BLE001 - e.g. the sentencepiece tokenizer: fall back to the truncated ids
            return [len(ids) for ids in encoder.encode(list(texts))], False

    def input_notes(self, texts: Sequence[str | None], paths: Sequence[str | None]) -> list[list[str]]:
        """Per utterance, what the answer cannot show: a text with no Hangul (no Korean model reads it), a text longer
        than the encoder's max_length (truncated), a clip longer than a model's crop (only its start is read)."""
        from koemo.corpus.manifest import has_hangul

        notes: list[list[str]] = [[] for _ in texts]
        for i, text in enumerate(texts):
            if text is not None and not has_hangul(text):
                notes[i].append("no_hangul: the text has no Korean letter; the text models' answer is not meaningful")
        reading = [i for i, t in enumerate(texts) if t is not None]
        if reading and any(m in self.models for m in TEXT_ENCODER_MODELS):
            name = self.params["text"]["model"]
            limit = int(self.params["encoders"][name].get("max_length", 64))
            counts, exact = self._token_counts([texts[i] for i in reading])
            for i, count in zip(reading, counts):
                if count > limit or (not exact and count >= limit):
                    how = f"{count} tokens" if exact else f"at least {count} tokens"
                    notes[i].append(f"text_truncated: {len(texts[i])} characters = {how}; "
                                    f"{', '.join(m for m in TEXT_ENCODER_MODELS if m in self.models)} read the first "
                                    f"{limit} (encoders.{name}.max_length)")
        from koemo.predict.recipes import audio_crops

        crops = audio_crops(self)
        for i, path in enumerate(paths):
            if path is None or not crops:
                continue
            try:
                import soundfile as sf

                seconds = float(sf.info(path).duration)
            except Exception:  # noqa: BLE001 - an unreadable wav is refused, with its reason, when decoded
                continue
            cut = [f"{models} read its first {limit:.1f} s" for models, limit in crops if seconds > limit + 1e-9]
            if cut:
                notes[i].append(f"audio_cropped: the wav is {seconds:.1f} s; " + ", ".join(cut))
        return notes

    # ---- public ------------------------------------------------------------------------------------------------
    def predict(self, utterances: Sequence[Utterance], first_row: int = 0) -> dict[str, np.ndarray]:
        """{base model…, "stack": [n, classes] float32}; NaN rows where a model's inputs are absent. Errors name
        an utterance as `row first_row + i` (a CSV's data rows counted from 0). `self.notes` then holds each
        utterance's notices (`input_notes`)."""
        from koemo.train.stack import MetaLearner

        n, c = len(utterances), len(self.classes)
        texts = [given_value(u.text) for u in utterances]
        paths = [given_value(u.wav) for u in utterances]
        self._decoded = {}
        self._row = {p: first_row + i for i, p in reversed(list(enumerate(paths))) if p is not None}
        self.transcripts = [None] * n
        speech_only = [i for i in range(n) if texts[i] is None and paths[i] is not None]
        asr_notes: dict[int, str] = {}
        if speech_only and self.use_asr:
            heard, by = self._asr_texts([paths[i] for i in speech_only])
            for k, i in enumerate(speech_only):
                if heard is not None:
                    texts[i] = self.transcripts[i] = given_value(heard[k]) or None
                    asr_notes[i] = (f"text_from_asr: no text was given; the text models read the transcript by {by}: "
                                    f"{heard[k]!r}" if texts[i] else f"text_from_asr: {by} heard no words; text models skipped")
                else:
                    asr_notes[i] = (f"no_asr: no text was given and the speech recognizer is not available ({by}); "
                                    "the answer is audio-only: give --text, or provide the ASR weights")
        self.notes = self.input_notes(texts, paths)
        for i, note in asr_notes.items():
            self.notes[i].insert(0, note)
        given = {"text": np.array([t is not None for t in texts], dtype=bool),
                 "wav": np.array([p is not None for p in paths], dtype=bool)}
        out: dict[str, np.ndarray] = {}
        from koemo.predict.recipes import RECIPES

        for model in self.models:
            probs = np.full((n, c), np.nan, dtype=np.float32)
            needs = MODELS[model].NEEDS  # fusion: () — it reads either modality, NaN where both are absent
            rows = np.flatnonzero(np.logical_and.reduce([given[need] for need in needs])) if needs else np.arange(n)
            if len(rows):
                probs[rows] = RECIPES[model](self, [texts[i] for i in rows], [paths[i] for i in rows])
            out[model] = probs
        learner = MetaLearner.from_json(self.meta)
        stack = np.full((n, c), np.nan, dtype=np.float32)
        complete = np.logical_and.reduce([np.isfinite(out[m]).all(axis=1) for m in learner.inputs]) if n else np.zeros(0, bool)
        if complete.any():
            stack[complete] = learner.predict_proba({m: out[m][complete].astype(np.float64) for m in learner.inputs})
        out["stack"] = stack
        return out


def answer(probs: Mapping[str, np.ndarray], classes: Sequence[str], notes: Sequence[str], row: int = 0,
           transcript: str | None = None) -> dict:
    """One utterance's answer as JSON (`koemo predict --json`, `koemo serve`): each model's probabilities and
    prediction (None when it could not read the inputs), the notes, and the ASR transcript when one was used."""
    models = {}
    for model, p in probs.items():
        values = p[row]
        models[model] = ({"probabilities": dict(zip(classes, map(float, values))), "predicted": classes[int(values.argmax())]}
                         if np.isfinite(values).all() else None)
    return {"classes": list(classes), "transcript": transcript, "notes": list(notes), "models": models}


def result_table(utterances: Sequence[Utterance], probs: Mapping[str, np.ndarray], classes: Sequence[str],
                 notes: Sequence[Sequence[str]] | None = None):
    """One row per utterance: its inputs, `notes` (what the answer cannot show, `; `-joined; empty when none), then
    `<model>_prob_<class>` and `<model>_predicted` per model."""
    import pandas as pd

    frame = pd.DataFrame({"wav": [u.wav for u in utterances], "text": [u.text for u in utterances],
                          "notes": ["; ".join(n) for n in notes] if notes is not None else ""})
    for model, p in probs.items():
        for k, name in enumerate(classes):
            frame[f"{model}_prob_{name}"] = p[:, k]
        finite = np.isfinite(p).all(axis=1)
        frame[f"{model}_predicted"] = [classes[int(i)] if ok else "" for i, ok in zip(np.nan_to_num(p).argmax(axis=1), finite)]
    return frame
