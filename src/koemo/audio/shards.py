"""Feature rows in a few large `.npy` shards plus one `index.parquet`, never one file per clip.

Rows are buffered and written shard by shard (≤ 4096 rows and ≤ 256 MiB each), so memory stays at one shard
whatever the corpus size; readers memory-map the shards (`koemo.train.inputs.FeatureStore`) or load them
whole with `load_features`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from koemo.io import save_npy, write_parquet

MAX_SHARD_ROWS = 4096
MAX_SHARD_BYTES = 256 * 2**20
INDEX_COLUMNS = ["wav_id", "aug", "aug_copy", "split", "fold", "label", "label_id", "shard", "row"]


def shard_rows(row_shape: tuple[int, ...], dtype=np.float32) -> int:
    """Rows per shard for this row shape: 4096, fewer when that would exceed 256 MiB."""
    row_bytes = int(np.prod(row_shape)) * np.dtype(dtype).itemsize
    return max(1, min(MAX_SHARD_ROWS, MAX_SHARD_BYTES // max(1, row_bytes)))


def shard_name(k: int) -> str:
    return f"shard-{k:03d}.npy"


class ShardWriter:
    """Appends float32 rows with their index metadata; `close()` writes the last shard and the index."""

    def __init__(self, directory: str | Path, row_shape: tuple[int, ...], rows_per_shard: int | None = None):
        self.directory = Path(directory)
        self.row_shape = tuple(row_shape)
        self.rows_per_shard = int(rows_per_shard or shard_rows(self.row_shape))
        self.buffer = np.zeros((self.rows_per_shard, *self.row_shape), dtype=np.float32)
        self.fill = 0
        self.shards = 0
        self.records: list[dict[str, Any]] = []

    def add(self, rows: np.ndarray, meta: list[dict[str, Any]]) -> None:
        if len(rows) != len(meta) or tuple(rows.shape[1:]) != self.row_shape:
            raise ValueError(f"{len(rows)} rows of shape {rows.shape[1:]} for {len(meta)} records (expected {self.row_shape})")
        start = 0
        while start < len(rows):
            take = min(len(rows) - start, self.rows_per_shard - self.fill)
            self.buffer[self.fill:self.fill + take] = rows[start:start + take]
            for j in range(take):
                self.records.append({**meta[start + j], "shard": self.shards, "row": self.fill + j})
            self.fill += take
            start += take
            if self.fill == self.rows_per_shard:
                self._flush()

    def _flush(self) -> None:
        if self.fill:
            save_npy(self.directory / shard_name(self.shards), self.buffer[:self.fill])
            self.shards += 1
            self.fill = 0

    def close(self) -> pd.DataFrame:
        self._flush()
        if self.shards == 0:  # no usable clip at all: one empty shard keeps the row shape readable
            save_npy(self.directory / shard_name(0), np.zeros((0, *self.row_shape), dtype=np.float32))
            self.shards = 1
        index = pd.DataFrame(self.records, columns=INDEX_COLUMNS)
        index = index.astype({"wav_id": str, "aug": str, "aug_copy": "int64", "split": str, "fold": "int64",
                              "label": str, "label_id": "int64", "shard": "int64", "row": "int64"})
        write_parquet(self.directory / "index.parquet", index)
        return index


def load_features(kind_dir: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """(index, features): `features[i]` belongs to `index.iloc[i]` (the shards concatenated in index order).

    Loads everything into memory; for the full AI Hub `mel` cache prefer the memory-mapped
    `koemo.train.inputs.FeatureStore`.
    """
    directory = Path(kind_dir)
    index = pd.read_parquet(directory / "index.parquet")
    shard = index["shard"].to_numpy(dtype=np.int64)
    row = index["row"].to_numpy(dtype=np.int64)
    shards = sorted(directory.glob("shard-*.npy"))
    arrays = [np.load(directory / shard_name(k), mmap_mode="r", allow_pickle=False) for k in range(len(shards))]
    if not arrays:
        raise FileNotFoundError(f"{directory}: no shard-*.npy files")
    offsets = np.cumsum([0] + [len(a) for a in arrays])
    expected = offsets[shard] + row
    if len(index) != offsets[-1] or not np.array_equal(expected, np.arange(len(index))):
        raise ValueError(f"{directory}: index.parquet does not list the shards' {offsets[-1]} rows in order")
    return index, np.concatenate([np.asarray(a) for a in arrays]) if len(arrays) > 1 else np.array(arrays[0])
