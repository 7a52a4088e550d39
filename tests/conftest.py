import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Test helper modules (aihub_files, …) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))

from hf_cache import hf_cache  # noqa: E402,F401  (fixture: an offline HF hub cache in a temp HF_HOME)


# The modules' longest test outside the demo repo's group: started first on the other worker (make test: -n 2).
LONGEST_ALONE = "tests/test_pipeline_e2e.py::test_aihub_source_on_a_release_shaped_directory"


# Tests that start torchrun on one machine: its default rendezvous port (29500) is one per machine, so they never
# run at the same time as each other (one xdist group).
TORCHRUN = ("tests/test_distributed.py::", "tests/test_gpu_paths.py::test_two_processes_fit_every_encoder_family")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # The workers share the cores: each gets its share for torch in-process and, through OMP_NUM_THREADS (which
    # core.device.thread_budget reads first), for every stage, DVC and koemo process its tests start. Two stages at
    # `runtime.threads: auto` (every core each) on two busy workers would oversubscribe the cores.
    THREADS = max(1, len(os.sched_getaffinity(0)) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


# The tests on the demo repo, in two xdist work units (each runs its tests in order on its worker's own copy of the
# one build): the pipeline's own e2e tests, and what DVC promises + export/serve. The two tests of those modules that
# read only dvc.yaml, and LONGEST_ALONE, are units of their own.
ON_DEMO = {"demo_repo": ("tests/test_pipeline_e2e.py::",),
           "demo_repo_2": ("tests/test_dvc_promises.py::", "tests/test_export_serve.py::")}
OFF_DEMO = (LONGEST_ALONE, "tests/test_dvc_promises.py::test_noop_status", "tests/test_dvc_promises.py::test_cache_false")


def group_of(nodeid: str) -> str:
    """The xdist work unit of a test: "torchrun", "demo_repo", "demo_repo_2", or the test alone."""
    if nodeid.startswith(TORCHRUN):
        return "torchrun"
    if not nodeid.startswith(OFF_DEMO):
        for group, modules in ON_DEMO.items():
            if nodeid.startswith(modules):
                return group
    return nodeid


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist 3.8's `--dist loadgroup` renames `item._nodeid`, which pytest 9 no longer reads (its node id is
    `_id`): the groups were silently ignored. This scheduler groups by `group_of(nodeid)` instead, and hands the
    units out in collection order (pytest_collection_modifyitems), not largest-first (xdist's default reorder)."""
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False

    class Groups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return Groups(config, log)


def pytest_collection_modifyitems(config, items):
    """The order xdist hands out the work units (`make test` runs `-n 2`; a worker takes the next unit when it has
    two tests left): the first demo unit (its worker builds the demo pipeline), the longest test that builds its own
    repo, the torchrun unit (the other worker's work while the build runs), the second demo unit (which then finds
    the build done), then everything else in file order."""
    stray = [item.nodeid for item in items if "demo_repo" in item.fixturenames and group_of(item.nodeid) not in ON_DEMO]
    assert not stray, f"tests on the demo repo outside its xdist units (tests/conftest.py ON_DEMO): {stray}"
    rank = {"demo_repo": 0, LONGEST_ALONE: 1, "torchrun": 2, "demo_repo_2": 3}
    items.sort(key=lambda item: rank.get(group_of(item.nodeid), len(rank)))  # stable: file order within a rank


def _shared_dir(tmp_path_factory) -> Path:
    """A temp folder every xdist worker of this run sees (the parent of the workers' own base temps)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory) -> Path:
    """The whole pipeline run once on a small demo corpus in a throwaway git + DVC copy of this repo, committed:
    built by the first worker that asks (the other waits on the lock), then never changed: tests use copies."""
    import fcntl

    from pipeline_repo import SMALL, PipelineRepo

    shared = _shared_dir(tmp_path_factory)
    root, done = shared / "demo-build", shared / "demo-build.done"
    with open(shared / "demo-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            repo = PipelineRepo.copy_of_this_repo(root)
            repo.set_params(**SMALL)
            repo.commit("small demo")
            repo.dvc("repro")
            repo.commit("repro")
            done.touch()
    return root


@pytest.fixture(scope="session")
def demo_repo(demo_build, tmp_path_factory):
    """This worker's copy of the demo build (`cp -a`: the workspace's hard links to its DVC cache stay links), shared
    by its e2e tests; each test leaves it as it found it: main checked out, status clean."""
    from pipeline_repo import PipelineRepo

    root = tmp_path_factory.mktemp("koemo-e2e") / "repo"
    subprocess.run(["cp", "-a", str(demo_build), str(root)], check=True)
    shutil.rmtree(root / ".dvc" / "tmp", ignore_errors=True)  # the build's state db is keyed by its files' inodes
    return PipelineRepo(root)
