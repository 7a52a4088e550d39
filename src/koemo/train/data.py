"""What the trainer iterates: `Examples` (dataset + labels + the wav_id behind each row) and seeded batching.

Batch order comes from `EpochBatchSampler`, seeded by (seed, epoch) alone, so CPU runs repeat exactly and,
under several processes, every process draws the same order and reads its slice of each batch. Text batches are
length-grouped (similar lengths together, each padded only to its own longest) to spend little on padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

MEGABATCH = 50  # batches per length-sorted window: enough to group lengths, small enough to stay random


@dataclass
class Examples:
    """Rows one model reads. `ids[i]` is the wav_id row i came from (augmented copies share their original's)."""

    dataset: Dataset
    labels: np.ndarray
    ids: np.ndarray
    collate: Callable[[list], dict[str, Any]]
    lengths: np.ndarray | None = None  # token counts / samples: batch rows of similar length together
    gpu_workers: int = 0  # DataLoader workers when training on a GPU (decoding overlaps the GPU's steps); 0 on CPU

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.ids = np.asarray(self.ids, dtype=object)
        if not (len(self.dataset) == len(self.labels) == len(self.ids)):
            raise ValueError(f"Examples: dataset {len(self.dataset)}, labels {len(self.labels)}, ids {len(self.ids)} differ")

    def __len__(self) -> int:
        return len(self.labels)


class EpochBatchSampler:
    """Index batches: shuffled per epoch from `seed + epoch` (training) or in a fixed order (prediction).

    With `lengths`, training batches are drawn from length-sorted windows of `MEGABATCH` batches and then
    shuffled; prediction batches are sorted by length (the caller's order is restored by index).
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int = 0, lengths: Sequence[int] | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.lengths = None if lengths is None else np.asarray(lengths, dtype=np.int64)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[np.ndarray]:
        if not self.shuffle:
            order = np.arange(self.n) if self.lengths is None else np.argsort(-self.lengths, kind="stable")
            return [order[i:i + self.batch_size] for i in range(0, self.n, self.batch_size)]
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.n)
        if self.lengths is not None:
            window = self.batch_size * MEGABATCH
            order = np.concatenate([chunk[np.argsort(-self.lengths[chunk], kind="stable")]
                                    for chunk in np.array_split(order, max(1, -(-self.n // window)))]) if self.n else order
        batches = [order[i:i + self.batch_size] for i in range(0, self.n, self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))] if self.lengths is not None else batches

    def __iter__(self):
        for batch in self.batches():
            yield batch.tolist()

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)


def make_loader(examples: Examples, batch_size: int, shuffle: bool, seed: int = 0,
                shard: tuple[int, int] | None = None) -> DataLoader:
    """A DataLoader over `examples`' batches. On the CPU a single process (num_workers=0: nothing to fork on 2 cores);
    on a GPU, examples that decode per row (`gpu_workers`, the fine-tuning wavs) get that many workers, each
    prefetching batches while the GPU computes (the batches and their order are the sampler's either way). `shard`
    (processes, this one's index): each global batch of `batch_size` rows is cut in that many slices and this
    process reads its own (`distributed.ShardedBatchSampler`)."""
    sampler = EpochBatchSampler(len(examples), batch_size, shuffle, seed, examples.lengths)
    if shard is not None:
        from koemo.train.distributed import ShardedBatchSampler

        sampler = ShardedBatchSampler(sampler, *shard)
    workers = examples.gpu_workers if examples.gpu_workers and torch.cuda.is_available() else 0
    extra = {"prefetch_factor": 4, "pin_memory": True, "persistent_workers": True} if workers else {}
    return DataLoader(examples.dataset, batch_sampler=sampler, collate_fn=examples.collate, num_workers=workers, **extra)


class ArrayRows(Dataset):
    """Rows of a numeric array (or a callable fetching row i, for memory-mapped shards) with their labels."""

    def __init__(self, fetch: np.ndarray | Callable[[int], np.ndarray], labels: np.ndarray, n: int | None = None):
        self.fetch = fetch
        self.labels = np.asarray(labels, dtype=np.int64)
        self.n = len(self.labels) if n is None else n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        row = self.fetch[i] if isinstance(self.fetch, np.ndarray) else self.fetch(i)
        return np.asarray(row, dtype=np.float32), int(self.labels[i])


def stack_collate(items: list) -> dict[str, torch.Tensor]:
    """[(array, label)] → {"features": float32 [batch, ...], "labels": int64 [batch]}."""
    features = torch.from_numpy(np.stack([x for x, _ in items]))
    return {"features": features, "labels": torch.tensor([y for _, y in items], dtype=torch.long)}


class TokenRows(Dataset):
    """Token id lists with their labels (padding happens per batch in `PadCollate`)."""

    def __init__(self, ids: Sequence[Sequence[int]], labels: np.ndarray):
        self.ids = [list(row) for row in ids]
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        return self.ids[i], int(self.labels[i])


class PadCollate:
    """Dynamic padding: a batch is right-padded to its own longest row (a class, so it pickles for workers)."""

    def __init__(self, pad_id: int):
        self.pad_id = int(pad_id)

    def __call__(self, items: list) -> dict[str, torch.Tensor]:
        width = max(len(ids) for ids, _ in items)
        input_ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for i, (ids, _) in enumerate(items):
            input_ids[i, :len(ids)] = torch.as_tensor(ids, dtype=torch.long)
            mask[i, :len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": mask,
                "labels": torch.tensor([y for _, y in items], dtype=torch.long)}
