import sys
from pathlib import Path

# Test helper modules (aihub_files, …) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))

from hf_cache import hf_cache  # noqa: E402,F401  (fixture: an offline HF hub cache in a temp HF_HOME)
