"""Pooled sentence embeddings, fast: tokenise once, sort by length, pad each batch only to its own longest.

Masked pooling ignores padding and padding never reaches real tokens through attention, so a sentence's
vector does not depend on which batch it lands in (up to float rounding), and sorting is safe.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import pandas as pd

from koemo.core.device import autocast_dtype, resolve_device  # noqa: F401  (re-exported for the stage)
from koemo.core.errors import UserError


class TooManyUnknownTokens(UserError):
    """The tokenizer maps too much of the corpus to its unknown token: the embeddings would be of [UNK]s."""


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, longest first (a GPU out-of-memory shows at once)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int, length: int | None = None):
    """Right-padded `input_ids` and `attention_mask` tensors, `length` wide (default: the longest row)."""
    import torch

    width = length if length is not None else max(len(row) for row in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, :len(row)] = torch.as_tensor(row, dtype=torch.long)
        mask[i, :len(row)] = 1
    return input_ids, mask


def pool(hidden, mask, pooling: str):
    """[batch, tokens, dim] → [batch, dim] float32: the first token, or the mean over unmasked tokens."""
    hidden = hidden.float()
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")


def embed_ids(model, ids: Sequence[Sequence[int]], pad_id: int, pooling: str, batch_size: int,
              device=None, progress: bool = True, desc: str = "embedding") -> np.ndarray:
    """float32 [len(ids), hidden] in input order."""
    import torch

    from koemo.core.progress import Progress

    device = device if device is not None else resolve_device()
    dim = int(model.config.hidden_size)
    result = np.zeros((len(ids), dim), dtype=np.float32)
    if not len(ids):
        return result
    model.to(device).eval()
    amp = autocast_dtype(device)
    batches = length_sorted_batches([len(row) for row in ids], batch_size)
    with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=amp, enabled=amp is not None), \
            Progress(len(ids), desc, unit="text", disable=not progress) as bar:  # per text: batches differ in length
        for batch in batches:
            input_ids, mask = pad_batch([ids[i] for i in batch], pad_id)
            input_ids = input_ids.to(device, non_blocking=True)
            mask = mask.to(device, non_blocking=True)
            hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            result[batch] = pool(hidden, mask, pooling).cpu().numpy()
            bar.update(len(batch))
    return result


def embed_texts(encoder, texts: Sequence[str], batch_size: int, device=None, progress: bool = True) -> np.ndarray:
    """Embed `texts` with a loaded `registry.Encoder`."""
    return embed_ids(encoder.model, encoder.encode(list(texts)), encoder.pad_id, encoder.pooling, batch_size,
                     device=device, progress=progress, desc=f"embedding ({encoder.name})")


def unknown_token_share(encoder, ids: Sequence[Sequence[int]]) -> tuple[float, np.ndarray]:
    """(share of all text tokens, special tokens excluded, that are the unknown token; that share per row)."""
    if encoder.unk_id is None:
        return 0.0, np.zeros(len(ids))
    text_tokens = [[t for t in row if t not in encoder.special_ids] for row in ids]
    unknown = np.array([sum(t == encoder.unk_id for t in row) for row in text_tokens], dtype=np.float64)
    counts = np.array([len(row) for row in text_tokens], dtype=np.float64)
    per_row = np.divide(unknown, counts, out=np.zeros_like(unknown), where=counts > 0)
    return float(unknown.sum() / counts.sum()) if counts.sum() else 0.0, per_row


def check_unknown_share(encoder, texts: Sequence[str], ids: Sequence[Sequence[int]], max_share: float) -> float:
    """The unknown-token share, or a `TooManyUnknownTokens` naming the likely cause when it exceeds `max_share`."""
    share, per_row = unknown_token_share(encoder, ids)
    if share > max_share:
        worst = int(per_row.argmax())
        raise TooManyUnknownTokens(
            f"{share:.1%} of the tokens of {len(texts)} distinct texts are the unknown token (more than "
            f"text_embeddings.max_unknown_share = {max_share:.1%}), e.g. {per_row[worst]:.0%} of {texts[worst]!r}. "
            f"The tokenizer of encoders.{encoder.name} ({encoder.source}) does not cover this Korean text: either it "
            "lower-cases / strips accents, which splits Hangul into jamo its vocabulary lacks (a KoELECTRA or BERT copy "
            "whose tokenizer_config.json lacks `\"do_lower_case\": false` does this; add it), or it is not a Korean "
            "vocabulary (a wrong hub_id / path, or tokenizer files from another model). Fix the tokenizer files or the "
            "encoder entry; raise text_embeddings.max_unknown_share only if this share is expected."
        )
    return share


def embed_labels(labels: pd.DataFrame, encoder, batch_size: int, device=None, progress: bool = True,
                 max_unknown_share: float = 1.0):
    """One row per labels row (labels order); each distinct text is embedded once and mapped back. Refuses, before
    embedding, a tokenizer that maps more than `max_unknown_share` of the text's tokens to its unknown token.

    Returns (embeddings, index frame `wav_id,row`, deterministic metrics, runtime figures).
    """
    import torch

    device = device if device is not None else resolve_device()
    codes, unique_texts = pd.factorize(labels["text"].astype(str), sort=True)
    ids = encoder.encode(list(unique_texts))
    unknown_share = check_unknown_share(encoder, list(unique_texts), ids, max_unknown_share)
    start = time.perf_counter()
    unique_vectors = embed_ids(encoder.model, ids, encoder.pad_id, encoder.pooling, batch_size, device=device,
                               progress=progress, desc=f"embedding ({encoder.name})")
    seconds = time.perf_counter() - start
    embeddings = unique_vectors[codes] if len(codes) else np.zeros((0, encoder.dim), dtype=np.float32)
    index = pd.DataFrame({"wav_id": labels["wav_id"].astype(str).to_numpy(), "row": np.arange(len(labels), dtype=np.int64)})
    metrics = {
        "encoder": encoder.name,
        "source": encoder.source,
        "architecture": encoder.architecture,
        "rows": int(len(labels)),
        "unique_texts": int(len(unique_texts)),
        "dim": encoder.dim,
        "pooling": encoder.pooling,
        "max_length": encoder.max_length,
        "texts_at_max_length": int(sum(len(row) >= encoder.max_length for row in ids)),  # possibly truncated
        "mean_tokens": float(np.mean([len(row) for row in ids])) if ids else 0.0,
        "unknown_token_share": unknown_share,  # of the distinct texts' tokens, special tokens excluded
    }
    runtime = {
        "seconds": seconds,
        "sentences_per_second": len(unique_texts) / seconds if seconds > 0 else None,
        "device": str(device) if device.type != "cuda" else f"cuda ({torch.cuda.get_device_name(device)})",
        "autocast": str(autocast_dtype(device)).replace("torch.", "") if autocast_dtype(device) else "off",
    }
    return embeddings, index, metrics, runtime
