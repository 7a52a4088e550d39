"""Content fingerprints of the wavs the manifest names: the one way the audio stages depend on the wav files.

Only the corpus stage declares the wav directory as a DVC dependency: DVC stats every file of a dependency
directory on each `dvc status`, and five stages doing that for 44,000 wavs made a no-op take seconds. The stages that
decode wavs depend instead on this small table (one row per manifest wav: its id, size and BLAKE2b of its bytes), so an
edited, replaced, added or removed wav changes exactly their input, while a text-only stage never sees it. A
content hash, not a file time: copying the release to another disk, or a fresh checkout, must not rerun hours of
audio work.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import pandas as pd

COLUMNS = ["wav_id", "bytes", "blake2b"]  # no path: the same bytes moved elsewhere are the same input


def file_digest(path: str | os.PathLike) -> tuple[int, str]:
    """(size, BLAKE2b-128 hex) of a file's bytes, read in 4 MiB blocks (hashlib releases the GIL while hashing)."""
    digest = hashlib.blake2b(digest_size=16)
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def fingerprint_wavs(wav_ids: Sequence[str], wav_paths: Sequence[str], workers: int = 4,
                     progress: bool = True) -> pd.DataFrame:
    """One row per wav, in the given order: wav_id, bytes, blake2b (threads overlap reads and hashing)."""
    from koemo.core.progress import Progress

    digests = []
    with ThreadPoolExecutor(max(1, workers)) as pool, \
            Progress(len(wav_paths), "corpus: fingerprint wavs", unit="wav", disable=not progress) as bar:
        for digest in pool.map(file_digest, wav_paths):
            digests.append(digest)
            bar.update(1)
    return pd.DataFrame({"wav_id": pd.Series(list(wav_ids), dtype=object),
                         "bytes": pd.Series([size for size, _ in digests], dtype="int64"),
                         "blake2b": pd.Series([digest for _, digest in digests], dtype=object)}, columns=COLUMNS)
