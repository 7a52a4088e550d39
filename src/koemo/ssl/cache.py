"""The `ssl_features` cache for a whole labels table, on the shared clip pass (`koemo.clips.extraction`): the pool decodes,
the frozen encoder pools `block_clips` clips at a time, shards keep float16 `[layers, dim]` rows.

Memory stays flat on the 44k-clip corpus (one block of waves and one shard buffer at a time), and rows follow
labels order, so the same params give the same bytes. A clip that cannot be decoded or is too short for one frame
is a counted, listed failure (`failures.csv`). `ssl.inputs.SSLStore` reads the cache back for training.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from koemo.clips.decode import Decoded, decode_clip, reject_silent
from koemo.clips.extraction import Batcher, pass_metrics, pass_runtime, run_pass, write_failures
from koemo.core.shards import ShardWriter
from koemo.ssl.pooling import ClipTooShort, PoolStats, pool_clips, to_fp16

ENCODER_FILE = "encoder.json"  # read back by `ssl.inputs.SSLStore`


def extract_features(encoder, labels: pd.DataFrame, out_dir: str | Path, chunk_seconds: float, batch_seconds: float,
                     block_clips: int, workers: int = 2, device=None, progress: bool = True,
                     decode: Callable[[str, int], Decoded] = decode_clip,
                     min_rms_dbfs: float | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write float16 shards of `[layers, dim]` rows, `index.parquet` (`wav_id, shard, row`), `failures.csv` and
    `encoder.json` (what made them) into `out_dir`; return (deterministic metrics, runtime figures)."""
    import torch

    from koemo.core.device import autocast_dtype, resolve_device, steady_heap
    from koemo.core.io import write_json

    device = device if device is not None else resolve_device()
    steady_heap()  # flat peak RSS over the whole corpus (see there)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(out, (encoder.layers, encoder.dim), {"wav_id": str}, dtype=np.float16)
    records = labels[["wav_id", "wav_path"]].astype(str).to_dict("records")
    stats = PoolStats()

    def load(path: str) -> Decoded:
        clip = reject_silent(decode(path, encoder.sample_rate), min_rms_dbfs)
        if clip.wave is not None and len(clip.wave) < encoder.min_samples:
            clip = Decoded(None, "too_short", f"{len(clip.wave)} samples < receptive field {encoder.min_samples}",
                           clip.source_rate, clip.channels, clip.file_seconds)
        return clip

    def process(waves: list[np.ndarray], metas: list[dict]) -> None:
        try:
            pooled = pool_clips(encoder, waves, chunk_seconds, batch_seconds, device=device, stats=stats,
                                progress=batcher.progress)  # the bar moves per encoder batch, not per block
        except ClipTooShort as err:  # filtered in `load`; reaching here would be a bug, not bad input
            raise AssertionError(str(err)) from err
        writer.add(to_fp16(pooled, stats), metas)

    workers = int(workers)
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 0 else None
    batcher = Batcher(process, max_items=block_clips)
    passed = run_pass(records, (r["wav_path"] for r in records), load, batcher,
                      lambda r: {"wav_id": r["wav_id"]}, pool, window=8 * max(1, workers),
                      desc=f"ssl_features ({encoder.name})", sample_rate=encoder.sample_rate, progress=progress)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    writer.close()
    write_failures(out, passed)
    write_json(out / ENCODER_FILE, {"encoder": encoder.name, "source": encoder.source, "architecture": encoder.architecture,
                                    "layers": encoder.layers, "dim": encoder.dim, "sample_rate": encoder.sample_rate})
    amp = autocast_dtype(device)
    metrics = {
        "encoder": encoder.name,
        "source": encoder.source,
        "architecture": encoder.architecture,
        **pass_metrics(passed),
        "layers": encoder.layers,
        "dim": encoder.dim,
        "dtype": "float16",
        "sample_rate": encoder.sample_rate,
        "chunk_seconds": float(chunk_seconds),
        "chunked_clips": stats.chunked_clips,
        "chunks": stats.chunks,
        "mean_frames_per_clip": stats.frames / passed.clips if passed.clips else 0.0,
        "padding": "attention mask" if encoder.uses_attention_mask else "none (equal-length batches: group-norm model)",
        "fp16_clipped_values": stats.fp16_clipped,
    }
    runtime = {**pass_runtime(passed, device), "batches": stats.batches,
               "autocast": str(amp).replace("torch.", "") if amp is not None else "off"}
    return metrics, runtime
