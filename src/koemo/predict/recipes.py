"""Each base model's inference recipe: its inputs prepared as its training stage prepared them, its network, the mean
over its fold models (`Predictor.fold_mean`). `RECIPES[model](predictor, texts, paths)` answers the rows that carry
what `koemo.models.<model>.NEEDS` names; `audio_crops` says how much of a clip each audio model reads.

Kept out of every module a training stage imports, so editing a recipe reruns no stage (tests/test_dvc_deps.py).
"""

from __future__ import annotations

import numpy as np

from koemo.predict.predictor import MODELS_DIR, PredictError, Predictor


def predict_text(p: Predictor, texts: list[str]) -> np.ndarray:
    from koemo.models.text import TextClassifier
    from koemo.text.embed import pad_batch
    from koemo.text.registry import load_encoder

    name = p.params["text"]["model"]
    encoder = load_encoder(name, p.entry("encoders", name))  # its own copy: weights get replaced
    network = TextClassifier(encoder.model, len(p.classes), pooling=encoder.pooling,
                             dropout=float(p.spec("text")["dropout"]))
    ids = encoder.encode(texts)
    batches = []
    for start in range(0, len(ids), p.batch_size):  # each batch padded to its own longest, as in training
        input_ids, mask = pad_batch(ids[start:start + p.batch_size], encoder.pad_id)
        batches.append({"input_ids": input_ids.numpy(), "attention_mask": mask.numpy()})
    return p.fold_mean("text", network, lambda k: batches)

def predict_audio(p: Predictor, paths: list[str]) -> np.ndarray:
    from koemo.models.audio import AudioResNet

    features = p.features(p.spec("audio")["features"], paths)
    network = AudioResNet.from_params(len(p.classes), p.spec("audio"))
    return p.fold_mean("audio", network, lambda k: p.batches({"features": features}))

def predict_multimodal(p: Predictor, texts: list[str], paths: list[str]) -> np.ndarray:
    from koemo.models.multimodal import MultimodalConv1D

    x = np.concatenate([p.sentence_embeddings(texts),
                        p.features(p.spec("multimodal")["audio_features"], paths)], axis=1)
    return standardised_fold_mean(
        p, "multimodal", x, lambda width: MultimodalConv1D.from_params(width, len(p.classes), p.spec("multimodal")))

def predict_tfidf(p: Predictor, texts: list[str]) -> np.ndarray:
    """Mean over the fold models (vocabulary + idf + coefficients, no pickle) of their probabilities."""
    from koemo.models.tfidf import TfidfModel

    folds = [p.once(f"tfidf:{k}", lambda k=k: TfidfModel.load(p.root / MODELS_DIR / "tfidf" / f"fold{k}"))
             for k in range(int(p.configs["tfidf"]["folds"]))]
    return (sum(model.predict_proba(texts) for model in folds) / len(folds)).astype(np.float32)

def predict_egemaps(p: Predictor, paths: list[str]) -> np.ndarray:
    from koemo.models.egemaps import EgemapsMLP

    return standardised_fold_mean(p, "egemaps", p.egemaps(paths),
                                  lambda width: EgemapsMLP.from_params(width, len(p.classes), p.spec("egemaps")))

def standardised_fold_mean(p: Predictor, model: str, x: np.ndarray, make) -> np.ndarray:
    """A `VectorInputs` model: each fold standardises with its own saved scaler, then its network predicts."""
    from safetensors.numpy import load_file

    x = np.asarray(x, dtype=np.float32)

    def standardised(k: int) -> list[dict[str, np.ndarray]]:
        scaler = load_file(str(p.root / MODELS_DIR / model / f"fold{k}" / "scaler.safetensors"))
        return p.batches({"features": ((x - scaler["mean"]) / scaler["scale"]).astype(np.float32)})

    return p.fold_mean(model, make(x.shape[1]), standardised)

def predict_wav2vec2(p: Predictor, paths: list[str]) -> np.ndarray:
    from koemo.models.wav2vec2 import SSLClassifier

    if p.configs["wav2vec2"].get("mode", "frozen") == "finetune":
        return predict_finetuned(p, paths)
    features = p.ssl_features(paths)
    network = SSLClassifier.from_params(features.shape[1], features.shape[2], len(p.classes), p.spec("wav2vec2"))
    return p.fold_mean("wav2vec2", network, lambda k: p.batches({"features": features}))

def predict_finetuned(p: Predictor, paths: list[str]) -> np.ndarray:
    """`train_wav2vec2.mode: finetune` folds: the whole encoder is in the weights; waveforms prepared as in training."""
    from koemo.models.wav2vec2_finetune import SSLFineTuner, UndecodableClip, WaveRows, crop_collate, wave_collate
    from koemo.ssl.registry import load_audio_encoder

    name, config = p.params["ssl"]["model"], p.configs["wav2vec2"]
    encoder = load_audio_encoder(name, p.entry("audio_encoders", name))
    rows = WaveRows(paths, np.zeros(len(paths), dtype=np.int64), encoder.sample_rate, encoder.normalize,
                    int(config["max_samples"]), encoder.min_samples)
    if encoder.uses_attention_mask:  # padded + masked: each clip's result whatever its batch
        order, collate = np.arange(len(paths)), wave_collate
    else:  # a group-norm encoder: as in training, length-sorted batches cropped to their shortest clip, no mask
        try:
            lengths = np.array([len(rows[i][0]) for i in range(len(paths))])
        except UndecodableClip as err:
            raise PredictError(str(err)) from None
        order, collate = np.argsort(-lengths, kind="stable"), crop_collate
    batches, positions = [], []
    for start in range(0, len(paths), p.batch_size):
        chosen = order[start:start + p.batch_size]
        try:
            items = [rows[int(i)] for i in chosen]
        except UndecodableClip as err:
            raise PredictError(str(err)) from None
        batch = collate(items)
        batch.pop("labels")
        batches.append({k: v.numpy() for k, v in batch.items()})
        positions.append(chosen)
    network = SSLFineTuner.from_params(encoder, len(p.classes), p.spec("wav2vec2"))
    probs = p.fold_mean("wav2vec2", network, lambda k: batches)
    out = np.empty_like(probs)
    out[np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)] = probs
    return out

def predict_fusion(p: Predictor, texts: list[str | None], paths: list[str | None]) -> np.ndarray:
    """Absent modalities are zero rows, which the model reads as missing (its learned 'absent' vector)."""
    from koemo.models.fusion import GatedFusion

    config = p.configs["fusion"]
    text = np.zeros((len(texts), int(config["text_dim"])), dtype=np.float32)
    audio = np.zeros((len(paths), int(config["layers"]), int(config["dim"])), dtype=np.float32)
    has_text = [i for i, t in enumerate(texts) if t is not None]
    has_wav = [i for i, p in enumerate(paths) if p is not None]
    if has_text:
        text[has_text] = p.sentence_embeddings([texts[i] for i in has_text])
    if has_wav:
        audio[has_wav] = p.ssl_features([paths[i] for i in has_wav])
    network = GatedFusion.from_params(text.shape[1], audio.shape[1], audio.shape[2], len(p.classes), p.spec("fusion"))
    batches = p.batches({"text": text, "audio": audio})
    probs = p.fold_mean("fusion", network, lambda k: batches)
    probs[[i for i in range(len(texts)) if texts[i] is None and paths[i] is None]] = np.nan
    return probs

def audio_crops(p: Predictor) -> list[tuple[str, float]]:
    """(models, seconds) each audio model reads of a clip, for the models this stack uses; the frozen SSL
    features (wav2vec2, fusion) chunk the whole clip and crop nothing."""
    from koemo.features.mel.spectral import FeatureSpec

    audio, crops = p.params["audio"], {}
    if "audio" in p.models:
        spec = FeatureSpec.from_params(p.spec("audio")["features"], audio)
        crops.setdefault(spec.crop_samples / spec.sample_rate, []).append("audio")
    if "multimodal" in p.models:
        spec = FeatureSpec.from_params(p.spec("multimodal")["audio_features"], audio)
        crops.setdefault(spec.crop_samples / spec.sample_rate, []).append("multimodal")
    if "egemaps" in p.models:
        crops.setdefault(float(p.params["egemaps"]["max_seconds"]), []).append("egemaps")
    if "wav2vec2" in p.models and p.configs["wav2vec2"].get("mode", "frozen") == "finetune":
        crops.setdefault(float(p.spec("wav2vec2")["max_seconds"]), []).append("wav2vec2")
    return sorted(((", ".join(models), seconds) for seconds, models in crops.items()), key=lambda item: item[1])


RECIPES = {"text": lambda p, texts, paths: predict_text(p, texts), "audio": lambda p, texts, paths: predict_audio(p, paths),
           "multimodal": predict_multimodal, "wav2vec2": lambda p, texts, paths: predict_wav2vec2(p, paths),
           "fusion": predict_fusion, "tfidf": lambda p, texts, paths: predict_tfidf(p, texts),
           "egemaps": lambda p, texts, paths: predict_egemaps(p, paths)}
