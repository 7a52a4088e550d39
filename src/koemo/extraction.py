"""One pass over a labels table's clips, the skeleton both feature caches share (`audio_features`, `ssl_features`):
decode (in a pool) → batch → compute → write → summarise.

Each step is a short function or object; a cache supplies only what differs: what the pool does with a clip
(`load`: decode, plus augmented copies for hand-made features), how a batch of waves becomes rows (`compute`)
and where rows go (`write`, a `ShardWriter`). Rows follow labels order and batches are cut in that order, so the
same params give the same bytes whatever the pool. A clip that cannot be used is a counted, listed failure
(`failures.csv`), never a silent gap; `check_failures` turns too many of them into an error.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from koemo.decode import Decoded, ordered_map
from koemo.errors import UserError

FAILURE_COLUMNS = ["wav_id", "wav_path", "aug", "aug_copy", "reason", "detail"]


class TooManyFailures(UserError):
    """More clips failed than `audio.max_failure_fraction` allows."""


@dataclass
class Loaded:
    """What the pool hands back for one labels row: the decoded clip, and any extra waves made from it
    (augmented copies: `(meta, wave)`) or the reasons they could not be made (`(aug, copy, reason, detail)`)."""

    decoded: Decoded
    extra: list[tuple[dict[str, Any], np.ndarray]] = field(default_factory=list)
    extra_failures: list[tuple[str, int, str, str]] = field(default_factory=list)


@dataclass
class PassStats:
    """Counts of one pass; `failures` rows follow FAILURE_COLUMNS."""

    clips_in: int = 0
    clips: int = 0
    seconds: float = 0.0          # audio seconds of the usable clips (as decoded)
    extra_seconds: float = 0.0    # audio seconds of the extra (augmented) waves
    batches: int = 0
    wall: float = 0.0
    lengths: list[int] = field(default_factory=list)  # samples of each usable clip, labels order
    source_rates: Counter = field(default_factory=Counter)
    stereo: int = 0
    failures: list[tuple] = field(default_factory=list)


class Batcher:
    """Collects waves (with their index metadata) and hands `max_items` at a time to `compute`, whose rows go to
    `write`; `close()` flushes the rest."""

    def __init__(self, compute: Callable[[list[np.ndarray]], np.ndarray],
                 write: Callable[[np.ndarray, list[dict[str, Any]]], None], max_items: int):
        self.compute, self.write, self.max_items = compute, write, max(1, int(max_items))
        self.waves: list[np.ndarray] = []
        self.meta: list[dict[str, Any]] = []
        self.batches = 0

    def add(self, wave: np.ndarray, meta: dict[str, Any]) -> None:
        self.waves.append(wave)
        self.meta.append(meta)
        while len(self.waves) >= self.max_items:
            self._flush(self.max_items)

    def _flush(self, count: int) -> None:
        waves, meta = self.waves[:count], self.meta[:count]
        del self.waves[:count], self.meta[:count]
        self.write(self.compute(waves), meta)
        self.batches += 1

    def close(self) -> None:
        if self.waves:
            self._flush(len(self.waves))


def format_rate(value: float | None) -> str:
    """Two significant digits, never "0×" for a slow run: 0.22, 3.4, 210, 2100."""
    if value is None or not np.isfinite(value) or value <= 0:
        return "0"
    digits = 1 - int(np.floor(np.log10(value)))
    return f"{value:.{digits}f}" if digits > 0 else f"{round(value, digits):,.0f}"


def run_pass(records: Sequence[Mapping[str, Any]], tasks: Iterable[Any], load: Callable[[Any], Loaded],
             batcher: Batcher, meta_of: Callable[[Mapping[str, Any]], dict[str, Any]], pool: Executor | None,
             window: int, desc: str, sample_rate: int, progress: bool = True) -> PassStats:
    """Decode every task in `pool` (results in order), feed each usable clip and its extra waves to `batcher`,
    list every failure. `records[i]` (wav_id, wav_path) is the labels row behind `tasks[i]`."""
    from tqdm import tqdm

    stats = PassStats(clips_in=len(records))
    start = time.perf_counter()
    bar = tqdm(total=len(records), desc=desc, unit="clip", disable=not progress)
    try:
        for record, loaded in zip(records, ordered_map(load, tasks, pool, window)):
            wav_id, path, clip = str(record["wav_id"]), str(record["wav_path"]), loaded.decoded
            if clip.wave is None:
                stats.failures.append((wav_id, path, "", 0, clip.reason, clip.detail))
            else:
                stats.clips += 1
                stats.seconds += len(clip.wave) / sample_rate
                stats.lengths.append(len(clip.wave))
                stats.source_rates[clip.source_rate] += 1
                stats.stereo += clip.channels > 1
                base = meta_of(record)
                batcher.add(clip.wave, base)
                for extra_meta, wave in loaded.extra:
                    batcher.add(wave, {**base, **extra_meta})
                    stats.extra_seconds += len(wave) / sample_rate
                for aug, copy, reason, detail in loaded.extra_failures:
                    stats.failures.append((wav_id, path, aug, copy, reason, detail))
            bar.update(1)
            bar.set_postfix_str(f"{format_rate(stats.seconds / max(time.perf_counter() - start, 1e-9))}× real time",
                                refresh=False)
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
    from koemo.io import write_csv

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
    from koemo.device import describe

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
