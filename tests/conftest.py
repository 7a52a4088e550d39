import sys
from pathlib import Path

import pytest

# Test helper modules (aihub_files, …) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))

from hf_cache import hf_cache  # noqa: E402,F401  (fixture: an offline HF hub cache in a temp HF_HOME)


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
