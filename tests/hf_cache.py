"""A Hugging Face hub cache built on disk, so real hub ids load with the hub unreachable.

`HFCache.install(repo_id, files_dir)` lays files out exactly as `huggingface_hub` does:
`models--org--name/blobs/<hash>`, `snapshots/<commit>/<file>` symlinks to the blobs, `refs/main` naming the
commit. The `hf_cache` fixture points HF_HOME / HF_HUB_CACHE at an empty temp cache and sets HF_HUB_OFFLINE=1;
reuse it for any model family (text encoders, wav2vec2, …).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest


class HFCache:
    def __init__(self, home: Path):
        self.home = home
        self.hub = home / "hub"
        self.hub.mkdir(parents=True, exist_ok=True)

    def install(self, repo_id: str, files_dir: str | os.PathLike, commit: str | None = None,
                ref: str | None = "main") -> Path:
        """Copy every file under `files_dir` into the cache as `repo_id`'s `commit`, named by `refs/<ref>` (None: no
        ref, as a download by commit hash leaves it); returns the snapshot dir."""
        files = sorted(p for p in Path(files_dir).rglob("*") if p.is_file())
        if not files:
            raise ValueError(f"{files_dir}: nothing to install as {repo_id}")
        repo = self.hub / f"models--{repo_id.replace('/', '--')}"
        digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
        if commit is None:
            listing = "".join(f"{p.relative_to(files_dir).as_posix()}:{digests[p]}\n" for p in files)
            commit = hashlib.sha1(listing.encode()).hexdigest()
        snapshot = repo / "snapshots" / commit
        for path in files:
            blob = repo / "blobs" / digests[path]
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(path.read_bytes())
            link = snapshot / path.relative_to(files_dir)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)  # installing a commit again replaces its files
            link.symlink_to(os.path.relpath(blob, link.parent))
        if ref is not None:
            (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
            (repo / "refs" / ref).write_text(commit)
        return snapshot


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> HFCache:
    """An empty offline HF cache in a temp HF_HOME (the hub is never contacted)."""
    cache = HFCache(tmp_path / "hf_home")
    monkeypatch.setenv("HF_HOME", str(cache.home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache.hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return cache


def assert_how_to_provide(load, section: str, name: str, spec: dict, cache: HFCache, *also: str) -> None:
    """`load(name, spec)` of an entry in no cache raises one `EncoderUnavailable` naming the entry, its hub id, the
    download hint, HF_HOME, the `<section>.<name>.path` alternative and the cache looked in (and `also`)."""
    from koemo.core.hub import EncoderUnavailable

    with pytest.raises(EncoderUnavailable) as caught:
        load(name, spec)
    message = str(caught.value)
    for needed in (f"'{name}'", spec["hub_id"], f"hf download {spec['hub_id']}", "HF_HOME", f"{section}.{name}.path",
                   str(cache.hub), *also):
        assert needed in message
