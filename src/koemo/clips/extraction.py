"""One pass over a labels table's clips, the skeleton both feature caches share (`audio_features`, `ssl_features`):
decode (in a pool) → batch → compute → write → summarise.

Each step is a short function or object; a cache supplies only what differs: how the pool decodes a clip
(`load`: cropped, checked) and what a batch becomes (`process`: augmented copies, features or encoder states,
written to `ShardWriter`s). Rows follow labels order and batches are cut in that order by an audio budget, so the
same params give the same bytes whatever the pool, and memory stays flat whatever the clip lengths. A clip that cannot be used is a counted, listed failure
(`failures.csv`), never a silent gap; `check_failures` turns too many of them into an error.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from koemo.clips.decode import Decoded, decode_clip, ordered_map, reject_silent
from koemo.core.errors import UserError

FAILURE_COLUMNS = ["wav_id", "wav_path", "aug", "aug_copy", "reason", "detail"]
# the index of a labelled cache (audio_features, egemaps_features): what each row is and where it trains
INDEX_COLUMNS = {"wav_id": str, "aug": str, "aug_copy": "int64", "split": str, "fold": "int64", "label": str,
                 "label_id": "int64"}
LABEL_COLUMNS = ["wav_id", "wav_path", "split", "fold", "label", "label_id"]


@dataclass(frozen=True)
class ClipTask:
    """What a decoding thread needs for one labels row."""

    path: str
    sample_rate: int
    max_seconds: float       # the pass's crop: the longest any of its kinds reads
    min_samples: int         # the longest analysis window of its kinds
    min_rms_dbfs: float | None


def load_clip(task: ClipTask) -> Decoded:
    """Decode the clip's crop; reject it when silent or shorter than one analysis window."""
    clip = reject_silent(decode_clip(task.path, task.sample_rate, task.max_seconds), task.min_rms_dbfs)
    if clip.wave is not None and len(clip.wave) < task.min_samples:
        return Decoded(None, "too_short", f"{len(clip.wave)} samples at {task.sample_rate} Hz < one window "
                                          f"({task.min_samples})", clip.source_rate, clip.channels, clip.file_seconds)
    return clip


class TooManyFailures(UserError):
    """More clips failed than `audio.max_failure_fraction` allows."""


@dataclass
class PassStats:
    """Counts of one pass; `failures` rows follow FAILURE_COLUMNS."""

    clips_in: int = 0
    clips: int = 0
    seconds: float = 0.0          # audio seconds of the usable clips' files (before any crop)
    seconds_read: float = 0.0     # audio seconds actually decoded (after the crop)
    batches: int = 0
    wall: float = 0.0
    file_seconds: list[float] = field(default_factory=list)  # each usable clip's file duration, labels order
    lengths: list[int] = field(default_factory=list)         # each usable clip's decoded samples (after the crop)
    source_rates: Counter = field(default_factory=Counter)
    stereo: int = 0
    failures: list[tuple] = field(default_factory=list)


def budget_slices(lengths: Sequence[int], max_samples: int) -> Iterator[tuple[int, int]]:
    """Consecutive [start, stop) runs whose padded size (count × longest) stays within `max_samples`; a longer
    single item is a run of its own."""
    start = 0
    while start < len(lengths):
        stop, longest = start + 1, lengths[start]
        while stop < len(lengths) and (stop - start + 1) * max(longest, lengths[stop]) <= max_samples:
            longest = max(longest, lengths[stop])
            stop += 1
        yield start, stop
        start = stop


class Batcher:
    """Collects decoded waves (with their index metadata) into batches and hands each to `process(waves, metas)`.

    A batch closes before it would exceed `max_items` waves or `max_samples` padded samples (count × longest, what
    a padded torch batch holds), so memory follows the budget, not the longest clip (a longer single clip is a
    batch of its own; the caller crops clips to bound that). `close()` flushes the rest.
    """

    def __init__(self, process: Callable[[list[np.ndarray], list[dict[str, Any]]], None], max_items: int | None = None,
                 max_samples: int | None = None):
        self.process, self.max_items, self.max_samples = process, max_items, max_samples
        self.progress = None  # set by `run_pass` for the batch in flight: `update(n)` as its clips are done
        self.waves: list[np.ndarray] = []
        self.meta: list[dict[str, Any]] = []
        self.longest = 0
        self.batches = 0

    def add(self, wave: np.ndarray, meta: dict[str, Any]) -> None:
        longest = max(self.longest, len(wave))
        if self.waves and ((self.max_items and len(self.waves) + 1 > self.max_items)
                           or (self.max_samples and (len(self.waves) + 1) * longest > self.max_samples)):
            self.flush()
            longest = len(wave)
        self.waves.append(wave)
        self.meta.append(meta)
        self.longest = longest

    def flush(self) -> None:
        if self.waves:
            self.process(self.waves, self.meta)
            self.batches += 1
        self.waves, self.meta, self.longest = [], [], 0

    close = flush


def run_pass(records: Sequence[Mapping[str, Any]], tasks: Iterable[Any], load: Callable[[Any], Decoded],
             batcher: Batcher, meta_of: Callable[[Mapping[str, Any]], dict[str, Any]], pool: Executor | None,
             window: int, desc: str, sample_rate: int, stats: PassStats | None = None, progress: bool = True) -> PassStats:
    """Decode every task in `pool` (results in labels order), hand each usable clip to `batcher`, list every failure.
    `records[i]` (wav_id, wav_path) is the labels row behind `tasks[i]`; `stats` may already hold failures that the
    batches' processing adds (e.g. an unusable augmented copy)."""
    from collections import deque

    from koemo.core.progress import Progress

    stats = stats if stats is not None else PassStats()
    stats.clips_in = len(records)
    start = time.perf_counter()
    # The bar counts clips whose features are computed, not decoded (decoding runs a batch ahead); the processor
    # may advance it within a batch through `batcher.progress.update` (the SSL encoder does, per encoder batch).
    bar = Progress(len(records), desc, disable=not progress, extra_unit="× real time")
    queued: deque[float] = deque()  # file seconds of the clips handed to the batcher, not yet processed
    inner = batcher.process

    class _Within:
        def __init__(self, size: int):
            self.left = size

        def update(self, n: int) -> None:
            n = min(n, self.left)
            self.left -= n
            bar.update(n, sum(queued.popleft() for _ in range(n)))

    def process(waves: list[np.ndarray], metas: list[dict[str, Any]]) -> None:
        batcher.progress = _Within(len(waves))
        inner(waves, metas)
        batcher.progress.update(batcher.progress.left)

    batcher.process = process
    try:
        for record, clip in zip(records, ordered_map(load, tasks, pool, window)):
            if clip.wave is None:
                stats.failures.append((str(record["wav_id"]), str(record["wav_path"]), "", 0, clip.reason, clip.detail))
                bar.update(1)  # nothing left to compute for it
            else:
                stats.clips += 1
                stats.seconds += clip.file_seconds
                stats.seconds_read += len(clip.wave) / sample_rate
                stats.file_seconds.append(clip.file_seconds)
                stats.lengths.append(len(clip.wave))
                stats.source_rates[clip.source_rate] += 1
                stats.stereo += clip.channels > 1
                queued.append(clip.file_seconds)
                batcher.add(clip.wave, meta_of(record))
        batcher.close()
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    stats.batches = batcher.batches
    stats.wall = time.perf_counter() - start
    return stats


def write_failures(out_dir: str | Path, stats: PassStats) -> pd.DataFrame:
    """`failures.csv` (FAILURE_COLUMNS): every labels row or extra wave that produced no row."""
    from koemo.core.io import write_csv

    failed = pd.DataFrame(stats.failures, columns=FAILURE_COLUMNS)
    write_csv(Path(out_dir) / "failures.csv", failed)
    return failed


def pass_metrics(stats: PassStats) -> dict[str, Any]:
    """The deterministic counts every cache reports (failures of original clips only)."""
    reasons = Counter(f[4] for f in stats.failures if f[2] == "")
    return {"clips_in": stats.clips_in, "clips": stats.clips, "failed": sum(reasons.values()),
            "failures_by_reason": dict(sorted(reasons.items())), "audio_seconds": stats.seconds}


def pass_runtime(stats: PassStats, device) -> dict[str, Any]:
    """Wall-clock figures every cache reports."""
    from koemo.core.device import describe

    wall = stats.wall
    return {"seconds": wall, "x_real_time": stats.seconds / wall if wall > 0 else None,
            "clips_per_second": stats.clips / wall if wall > 0 else None, "batches": stats.batches,
            "device": describe(device)}


def check_failures(metrics: Mapping[str, Any], out_dir: str | Path, limit: float, stage: str) -> None:
    """Raise `TooManyFailures` (count, fraction, reasons, the first files, the param) above `limit`."""
    failed, total = int(metrics["failed"]), int(metrics["clips_in"])
    if failed == 0 or failed <= limit * total:
        return
    listed = pd.read_csv(Path(out_dir) / "failures.csv", keep_default_na=False)
    listed = listed[listed["aug"] == ""]
    examples = "\n".join(f"  {r.wav_path}: {r.reason} ({r.detail})" for r in listed.head(5).itertuples())
    raise TooManyFailures(
        f"{stage}: {failed} of {total} clips failed ({failed / total:.1%}; "
        f"{metrics['failures_by_reason']}), more than audio.max_failure_fraction={limit} allows. First files:\n"
        f"{examples}\nFix or remove those files, or raise audio.max_failure_fraction in params.yaml.")
