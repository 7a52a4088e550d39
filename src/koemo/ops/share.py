"""`koemo share`: send a colleague everything DVC needs to restore any run made here, not only the committed one.

`dvc push --run-cache` sends the run records (.dvc/cache/runs) but not the outputs of those runs: DVC 3 pushes only
the outputs of committed revisions (a maintainer on treeverse/dvc#10472: the run-cache transfer moves "the runs
files" only). A record whose outputs are missing cannot be restored, so a colleague's `dvc repro` of a setting run
here recomputes it. The `cache: false` metrics and plots of a run are never pushed either, although DVC's restore
needs them. `share` pushes the workspace (`dvc push`), every run record, and every object those records name that
this machine's cache holds; the colleague then runs `dvc pull --run-cache` once and `dvc repro --pull` (or
`dvc exp run --pull`), which fetches a restored run's outputs on demand.
"""

from __future__ import annotations

import os
from pathlib import Path


def run_records(repo) -> list[tuple[str, str]]:
    """(key, value) of every run record in the local run cache."""
    root = Path(repo.stage_cache.cache_dir)
    if not root.is_dir():
        return []
    return sorted((key.name, value.name) for prefix in root.iterdir() if prefix.is_dir()
                  for key in prefix.iterdir() if key.is_dir() for value in key.iterdir() if value.is_file())


def share(root: str | os.PathLike = ".", remote: str | None = None, jobs: int | None = None) -> dict:
    """Push the workspace, the run cache and every cached output of every run; return what was sent."""
    from dvc.repo import Repo

    with Repo(os.fspath(root)) as repo:
        pushed = repo.push(remote=remote, jobs=jobs, run_cache=True)      # the workspace's outputs + run records
        records = run_records(repo)
        present, missing = set(), 0
        with repo.lock:
            for odb, objs in repo.stage_cache.get_used_objs(records).items():
                for obj in objs:   # outputs removed from this cache since (dvc gc) cannot be sent: counted
                    if repo.cache.local.exists(obj.value):
                        present.add(obj)
                    else:
                        missing += 1
            result = repo.cloud.push(present, jobs=jobs, remote=remote)
    return {"workspace_files": pushed, "run_records": len(records), "run_objects": len(present),
            "run_objects_transferred": len(result.transferred), "run_objects_failed": len(result.failed),
            "run_objects_not_in_cache": missing}
