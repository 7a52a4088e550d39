import os
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

if os.environ.get("PYTEST_XDIST_WORKER"):  # two workers on two cores: one torch thread each in-process
    import torch

    torch.set_num_threads(1)


# Modules whose tests (but LONGEST_ALONE and the two that read only dvc.yaml) use the demo repo.
ON_DEMO = ("tests/test_dvc_promises.py::", "tests/test_export_serve.py::", "tests/test_pipeline_e2e.py::")


def group_of(nodeid: str) -> str:
    """The xdist work unit of a test: "demo_repo", "torchrun", or the test alone."""
    if nodeid.startswith(TORCHRUN):
        return "torchrun"
    if nodeid.startswith(ON_DEMO) and nodeid != LONGEST_ALONE and "::test_noop_status" not in nodeid \
            and "::test_cache_false_outputs" not in nodeid:
        return "demo_repo"
    return nodeid


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist 3.8's `--dist loadgroup` renames `item._nodeid`, which pytest 9 no longer reads (its node id is
    `_id`): the groups were silently ignored. This scheduler groups by `group_of(nodeid)` instead."""
    from xdist.scheduler import LoadScopeScheduling

    class Groups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return Groups(config, log)


def pytest_collection_modifyitems(config, items):
    """Every test of the shared demo repo goes first, as one xdist work unit (`make test` runs `-n 2`): one worker
    builds the pipeline once and runs those tests in their order (they share one workspace, each leaving it as it
    found it), while the other worker takes the longest test that builds its own repo, then everything else."""
    on_demo = [item for item in items if "demo_repo" in item.fixturenames]
    stray = [item.nodeid for item in on_demo if group_of(item.nodeid) != "demo_repo"]
    assert not stray, f"tests on the demo repo outside its xdist group (tests/conftest.py ON_DEMO): {stray}"
    first = {id(item) for item in on_demo}
    longest = [item for item in items if item.nodeid == LONGEST_ALONE]
    first.update(id(item) for item in longest)
    items[:] = on_demo + longest + [item for item in items if id(item) not in first]


@pytest.fixture(scope="session")
def demo_repo(tmp_path_factory):
    """The whole pipeline run once on a small demo corpus in a throwaway git + DVC copy of this repo, committed;
    shared by the end-to-end test modules (each test leaves it as it found it: main checked out, status clean)."""
    from pipeline_repo import SMALL, PipelineRepo

    repo = PipelineRepo.copy_of_this_repo(tmp_path_factory.mktemp("koemo-e2e"))
    repo.set_params(**SMALL)
    repo.commit("small demo")
    repo.first_repro = repo.dvc("repro").stdout
    repo.commit("repro")
    return repo
