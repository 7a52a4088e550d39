"""The `ssl_features` cache for a whole labels table: decoded block by block, pooled, written as it goes.

Blocks keep memory flat on the 44k-clip corpus (the cache itself is filled through a memory map), and rows
follow labels order, so the same params give the same bytes. A clip that cannot be decoded or is too short
for one frame is a counted, listed failure (`failures.csv`), never a silent gap; `index.parquet` maps each
cached wav_id to its row.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from koemo.audio.decode import Decoded
from koemo.speech.features import ClipTooShort, PoolStats, pool_clips, to_fp16

Decoder = Callable[[Sequence[str], int], Sequence[Decoded]]  # (wav paths, rate) → one Decoded per path, e.g. audio.decode.decode_clips


def _compact(path: Path, rows: int) -> None:
    """Keep the first `rows` rows of the .npy at `path` (failures left the tail unused), copying in slices."""
    from numpy.lib.format import open_memmap

    full = np.load(path, mmap_mode="r")
    smaller = path.with_name(path.name + ".part")
    out = open_memmap(smaller, mode="w+", dtype=full.dtype, shape=(rows, *full.shape[1:]))
    step = 4096
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        out[start:stop] = full[start:stop]
    out.flush()
    del out, full
    smaller.replace(path)


def _encode_block(encoder, block, decoded, wav_ids, paths, cache, kept, failures, stats, chunk_seconds,
                  batch_seconds, device) -> float:
    """Pool one decoded block into the next free cache rows; record its failures; return its audio seconds."""
    if len(decoded) != len(block):
        raise AssertionError(f"decoder returned {len(decoded)} clips for {len(block)} paths")
    good, waves = [], []
    for i, clip in zip(block, decoded):
        if clip.wave is None:
            failures.append((wav_ids[i], paths[i], clip.reason or "undecodable", clip.detail))
        elif len(clip.wave) < encoder.min_samples:
            failures.append((wav_ids[i], paths[i], "too_short",
                             f"{len(clip.wave)} samples < receptive field {encoder.min_samples}"))
        else:
            good.append(i)
            waves.append(clip.wave)
    if not waves:
        return 0.0
    try:
        pooled = pool_clips(encoder, waves, chunk_seconds, batch_seconds, device=device, stats=stats)
    except ClipTooShort as err:  # filtered above; reaching here would be a bug, not bad input
        raise AssertionError(str(err)) from err
    cache[len(kept):len(kept) + len(good)] = to_fp16(pooled, stats)
    kept.extend(good)
    return sum(len(w) for w in waves) / encoder.sample_rate


def extract_features(encoder, labels: pd.DataFrame, decode: Decoder, out_dir: str | Path, chunk_seconds: float,
                     batch_seconds: float, block_clips: int, device=None, progress: bool = True):
    """Write `features.npy` (float16 `[clips, layers, dim]`), `index.parquet` (`wav_id, row`), `failures.csv`
    (`wav_id, wav_path, reason, detail`) and `encoder.json` (what made them) into `out_dir`; return
    (deterministic metrics, runtime figures)."""
    import torch
    from numpy.lib.format import open_memmap
    from tqdm import tqdm

    from koemo.device import autocast_dtype, describe, resolve_device
    from koemo.io import write_csv, write_json, write_parquet

    device = device if device is not None else resolve_device()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wav_ids = labels["wav_id"].astype(str).to_numpy()
    paths = labels["wav_path"].astype(str).to_numpy()
    n = len(labels)
    cache = open_memmap(out / "features.npy", mode="w+", dtype=np.float16, shape=(n, encoder.layers, encoder.dim))
    stats = PoolStats()
    kept, failures, seconds = [], [], 0.0
    start = time.perf_counter()
    bar = tqdm(total=n, desc=f"ssl_features ({encoder.name})", unit="clip", disable=not progress)
    blocks = [np.arange(first, min(n, first + block_clips)) for first in range(0, n, max(1, block_clips))]
    with ThreadPoolExecutor(max_workers=1) as prefetch:  # decode block k+1 while the encoder runs on block k
        pending = prefetch.submit(decode, list(paths[blocks[0]]), encoder.sample_rate) if blocks else None
        for k, block in enumerate(blocks):
            decoded = pending.result()
            if k + 1 < len(blocks):
                pending = prefetch.submit(decode, list(paths[blocks[k + 1]]), encoder.sample_rate)
            seconds += _encode_block(encoder, block, decoded, wav_ids, paths, cache, kept, failures, stats,
                                     chunk_seconds, batch_seconds, device)
            bar.update(len(block))
            bar.set_postfix_str(f"{seconds / max(time.perf_counter() - start, 1e-9):.0f}× real time")
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - start
    cache.flush()
    del cache
    if len(kept) < n:
        _compact(out / "features.npy", len(kept))
    write_parquet(out / "index.parquet", pd.DataFrame({"wav_id": wav_ids[np.asarray(kept, dtype=np.int64)],
                                                       "row": np.arange(len(kept), dtype=np.int64)}))
    write_csv(out / "failures.csv", pd.DataFrame(failures, columns=["wav_id", "wav_path", "reason", "detail"]))
    write_json(out / "encoder.json", {"encoder": encoder.name, "source": encoder.source, "architecture": encoder.architecture,
                                      "layers": encoder.layers, "dim": encoder.dim, "sample_rate": encoder.sample_rate})
    reasons = pd.Series([f[2] for f in failures], dtype=object).value_counts().sort_index()
    amp = autocast_dtype(device)
    metrics = {
        "encoder": encoder.name,
        "source": encoder.source,
        "architecture": encoder.architecture,
        "clips_in": int(n),
        "clips": int(len(kept)),
        "failed": int(len(failures)),
        "failures_by_reason": {str(k): int(v) for k, v in reasons.items()},
        "layers": encoder.layers,
        "dim": encoder.dim,
        "dtype": "float16",
        "sample_rate": encoder.sample_rate,
        "audio_seconds": seconds,
        "chunk_seconds": float(chunk_seconds),
        "chunked_clips": stats.chunked_clips,
        "chunks": stats.chunks,
        "mean_frames_per_clip": stats.frames / len(kept) if kept else 0.0,
        "padding": "attention mask" if encoder.uses_attention_mask else "none (equal-length batches: group-norm model)",
        "fp16_clipped_values": stats.fp16_clipped,
    }
    runtime = {
        "seconds": wall,
        "x_real_time": seconds / wall if wall > 0 else None,
        "clips_per_second": len(kept) / wall if wall > 0 else None,
        "batches": stats.batches,
        "device": describe(device),
        "autocast": str(amp).replace("torch.", "") if amp is not None else "off",
    }
    return metrics, runtime
