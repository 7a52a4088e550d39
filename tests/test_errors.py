"""Stage scripts end a user-fixable error with its message (no traceback), and keep tracebacks for bugs."""

import subprocess
from pathlib import Path

import pytest

from koemo.core.errors import UserError
from koemo.core.runner import run_stage
from pipeline_repo import stage_argv

REPO = Path(__file__).resolve().parents[1]


def test_run_stage_turns_a_user_error_into_its_message():
    def fail():
        raise UserError("data.aihub_dir x does not exist; run with -S data.aihub_dir=…")

    with pytest.raises(SystemExit) as exit_:
        run_stage("corpus", fail)
    assert str(exit_.value.code) == "corpus: data.aihub_dir x does not exist; run with -S data.aihub_dir=…"
    with pytest.raises(ZeroDivisionError):  # a bug is not dressed up as a message
        run_stage("corpus", lambda: 1 / 0)


def test_a_stage_with_a_missing_aihub_dir_prints_the_fix_not_a_traceback(tmp_path):
    (tmp_path / "params.yaml").write_text("data: {source: aihub, dir: nowhere}\n", encoding="utf-8")
    done = subprocess.run(stage_argv("corpus", params_path=tmp_path / "params.yaml"), cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 1
    assert done.stderr.startswith("corpus: data.dir nowhere does not exist") and "Traceback" not in done.stderr
