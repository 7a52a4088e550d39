"""The one atomic writer: every output goes to a temp file beside its target, then os.replace.

An interrupted stage therefore never leaves a half-written file that DVC could hash and cache.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temps(target: Path) -> list[Path]:
    """Delete what an earlier, killed writer of `target` left beside it (`.<name>.*.tmp`, `.<name>.old`): a `kill -9`
    runs no cleanup, and nothing else would ever remove them. Returns what was removed."""
    stale = [*target.parent.glob(f".{glob_escape(target.name)}.*.tmp"), target.with_name(f".{target.name}.old")]
    removed = []
    for leftover in stale:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        elif leftover.exists() or leftover.is_symlink():
            leftover.unlink(missing_ok=True)
        else:
            continue
        removed.append(leftover)
    return removed


def sweep_stale_temps(paths) -> list[Path]:
    """Remove every `.<name>.*.tmp` / `.<name>.old` beside each of `paths` (any name: a killed writer of a sibling
    output counts too). Stages call this on the paths they read and write (`stage_runner.run_stage`), so what a `kill -9`
    left is gone after the next stage that works there, even when DVC restores the killed stage from its run cache
    instead of rerunning it. DVC runs one stage at a time in a workspace, so no live writer's temp is touched; of a
    stage's several processes (torchrun sets RANK) only rank 0 writes, and only it sweeps."""
    removed = []
    if os.environ.get("RANK", "0") != "0":
        return removed
    for parent in {Path(p).parent for p in paths}:
        if parent.is_dir():
            for leftover in [*parent.glob(".*.tmp"), *parent.glob(".*.old")]:
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
                removed.append(leftover)
    return removed


def glob_escape(name: str) -> str:
    """`name` with glob metacharacters escaped, so a file called `a[1]` matches only itself."""
    import glob

    return glob.escape(name)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path in the target's directory; move it onto `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as err:
        _raise_if_disk_full(err, target)
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temp directory; on success it replaces `path` as a whole."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
    try:
        try:
            yield tmp
        except OSError as err:
            _raise_if_disk_full(err, target)
            raise
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def disk_full_message(err: BaseException, target: str | os.PathLike | None) -> str | None:
    """One line for a full disk (ENOSPC, or numpy's "Not enough free space to write N bytes"): which output, the
    bytes needed and free, and where to make room; None for any other error."""
    import errno
    import re

    said = str(err)
    if not (isinstance(err, OSError) and (err.errno == errno.ENOSPC or "Not enough free space" in said)):
        return None
    where = Path(target if target is not None else (err.filename or "."))
    folder = where.parent if where.parent.exists() else Path(".")
    asked = re.search(r"(\d+) bytes", said)
    need = f"needs {_size(int(asked.group(1)))}" if asked else "needs more room"
    return (f"disk full writing {where}: {need}, {_size(shutil.disk_usage(folder).free)} free on its filesystem; "
            "nothing half-written was kept. Make room there, or move the outputs' disk: the DVC cache with "
            "`dvc cache dir /larger/disk/dvc-cache` (then `dvc checkout --relink`), or the repo itself")


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} TiB"


def _raise_if_disk_full(err: OSError, target: Path) -> None:
    from koemo.core.errors import UserError

    message = disk_full_message(err, target)
    if message:
        raise UserError(message) from None


def jsonable(obj: Any) -> Any:
    """Plain JSON types with floats rounded to 6 digits, so reruns give byte-identical files."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return None if math.isnan(value) or math.isinf(value) else round(value, 6)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return obj.as_posix()
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(jsonable(obj), indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def write_parquet(path: str | os.PathLike, frame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv(path: str | os.PathLike, frame, encoding: str = "utf-8") -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, encoding=encoding)


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
