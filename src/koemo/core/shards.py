"""Cached per-clip arrays in a few large `.npy` shards plus one `index.parquet`, never one file per clip.

Both feature caches use this: `audio_features` (hand-made features, one row per clip or augmented copy) and
`ssl_features` (pooled SSL layers, one row per clip). Rows are buffered and written shard by shard (≤ 4096 rows
and ≤ 256 MiB each), so memory stays at one shard whatever the corpus size; `ShardStore` reads them back through
memory maps, row by row, or whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from koemo.core.io import save_npy, write_parquet

MAX_SHARD_ROWS = 4096
MAX_SHARD_BYTES = 256 * 2**20
INDEX = "index.parquet"


def shard_rows(row_shape: tuple[int, ...], dtype=np.float32) -> int:
    """Rows per shard for this row shape: 4096, fewer when that would exceed 256 MiB."""
    row_bytes = int(np.prod(row_shape)) * np.dtype(dtype).itemsize
    return max(1, min(MAX_SHARD_ROWS, MAX_SHARD_BYTES // max(1, row_bytes)))


def shard_name(k: int) -> str:
    return f"shard-{k:03d}.npy"


class ShardWriter:
    """Appends rows with their index metadata; `close()` writes the last shard and the index.

    `columns` maps each metadata key to its dtype (index column order); `shard` and `row` are appended.
    """

    def __init__(self, directory: str | Path, row_shape: tuple[int, ...], columns: Mapping[str, Any],
                 dtype=np.float32, rows_per_shard: int | None = None):
        self.directory = Path(directory)
        self.row_shape = tuple(row_shape)
        self.columns = dict(columns)
        self.dtype = np.dtype(dtype)
        self.rows_per_shard = int(rows_per_shard or shard_rows(self.row_shape, self.dtype))
        self.buffer = np.zeros((self.rows_per_shard, *self.row_shape), dtype=self.dtype)
        self.fill = 0
        self.shards = 0
        self.records: list[dict[str, Any]] = []

    def add(self, rows: np.ndarray, meta: Sequence[Mapping[str, Any]]) -> None:
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
            save_npy(self.directory / shard_name(0), np.zeros((0, *self.row_shape), dtype=self.dtype))
            self.shards = 1
        columns = {**self.columns, "shard": "int64", "row": "int64"}
        index = pd.DataFrame(self.records, columns=list(columns)).astype(columns)
        write_parquet(self.directory / INDEX, index)
        return index


class ShardStore:
    """A shard directory read lazily: `index` (one row per stored array) and memory-mapped shards."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.index = pd.read_parquet(self.directory / INDEX)
        self._shards: dict[int, np.ndarray] = {}
        self._shard = self.index["shard"].to_numpy(dtype=np.int64)
        self._row = self.index["row"].to_numpy(dtype=np.int64)

    def shard(self, k: int) -> np.ndarray:
        if k not in self._shards:
            self._shards[k] = np.load(self.directory / shard_name(k), mmap_mode="r", allow_pickle=False)
        return self._shards[k]

    @property
    def row_shape(self) -> tuple[int, ...]:
        return tuple(self.shard(0).shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.shard(0).dtype

    def row(self, position: int) -> np.ndarray:
        """The stored array of index row `position` (a memory-mapped view)."""
        return self.shard(int(self._shard[position]))[int(self._row[position])]

    def rows(self, positions: Sequence[int], dtype=np.float32) -> np.ndarray:
        """[len(positions), *row_shape] in `dtype`, read front to back through the memory maps."""
        positions = np.asarray(positions, dtype=np.int64)
        out = np.zeros((len(positions), *self.row_shape), dtype=dtype)
        for i in np.argsort(positions, kind="stable"):
            out[i] = self.row(positions[i])
        return out

    def originals(self, wav_ids: Sequence[str], missing: str = "raise") -> np.ndarray:
        """Index positions of the un-augmented row of each of `wav_ids`, in that order. A wav_id without one
        raises (`missing="raise"`) or gets -1 (`missing="mark"`: e.g. a clip whose decoding failed)."""
        original = self.index[self.index["aug"].astype(str) == ""] if "aug" in self.index else self.index
        position = pd.Series(original.index.to_numpy(), index=original["wav_id"].astype(str).to_numpy())
        if position.index.has_duplicates:
            raise ValueError(f"{self.directory}: duplicate original rows for a wav_id")
        absent = pd.Index(wav_ids).difference(position.index)
        if len(absent) and missing == "raise":
            raise ValueError(f"{self.directory}: {len(absent)} labels row(s) have no cached row (e.g. {absent[0]}); "
                             "rerun the stage that writes it")
        return position.reindex(list(wav_ids)).fillna(-1).to_numpy(dtype=np.int64)

    def augmented(self) -> dict[str, np.ndarray]:
        """wav_id → index positions of its augmented copies (index order)."""
        if "aug" not in self.index:
            return {}
        aug = self.index[self.index["aug"].astype(str) != ""]
        return {str(k): v.to_numpy(dtype=np.int64) for k, v in aug.groupby(aug["wav_id"].astype(str), sort=True).groups.items()}

    def aligned(self, wav_ids: Sequence[str]) -> np.ndarray:
        """`[len(wav_ids), *row_shape]` in the stored dtype and that order; zeros where a clip has no row."""
        return self.aligned_with_absent(wav_ids)[0]

    def aligned_with_absent(self, wav_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """`aligned(wav_ids)` and the positions (into `wav_ids`) that have no row: clips the stage listed as failed."""
        positions = self.originals(wav_ids, missing="mark")
        out = np.zeros((len(wav_ids), *self.row_shape), dtype=self.dtype)
        found = np.flatnonzero(positions >= 0)
        if len(found):
            out[found] = self.rows(positions[found], dtype=self.dtype)
        return out, np.flatnonzero(positions < 0)


def load_shards(directory: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """(index, every row as one array): `array[i]` belongs to `index.iloc[i]`, checked. Loads everything into
    memory: for the full AI Hub caches use `ShardStore`."""
    store = ShardStore(directory)
    shards = sorted(store.directory.glob("shard-*.npy"))
    if not shards:
        raise FileNotFoundError(f"{store.directory}: no shard-*.npy files")
    arrays = [store.shard(k) for k in range(len(shards))]
    offsets = np.cumsum([0] + [len(a) for a in arrays])
    if len(store.index) != offsets[-1] or not np.array_equal(offsets[store._shard] + store._row, np.arange(len(store.index))):
        raise ValueError(f"{store.directory}: {INDEX} does not list the shards' {offsets[-1]} rows in order")
    return store.index, np.concatenate([np.asarray(a) for a in arrays])
