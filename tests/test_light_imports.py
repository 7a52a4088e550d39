"""What a process imports before it needs it: every stage imports the runner and the metrics writer, every training
stage the trainer, and `koemo predict` refuses a bad argument; none of these may pull in a heavy library it does not
use (sklearn + scipy ~1 s, transformers.optimization ~2 s, the predictor's torch + transformers ~4 s, in each of
the suite's ~150 stage and CLI processes). Checked as imported modules in a fresh interpreter, not as timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("sklearn", "scipy", "torch", "transformers", "pandas", "pyarrow", "dvclive")


def loaded_after(code: str, cwd: Path | None = None) -> set[str]:
    """The HEAVY top-level packages in sys.modules after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_stage_plumbing_imports_no_sklearn():
    loaded = loaded_after("import koemo.core.runner, koemo.core.metrics, koemo.core.io, koemo.core.params")
    assert not loaded & {"sklearn", "scipy", "torch", "transformers", "pandas"}, loaded


def test_the_metrics_still_come_from_sklearn():
    loaded = loaded_after("from koemo.core.metrics import classification_report\n"
                          "classification_report([0, 1, 1], [0, 1, 0], ['a', 'b'])")
    assert "sklearn" in loaded


def test_a_training_schedule_imports_no_transformers():
    loaded = loaded_after(
        "import torch\nfrom koemo.train.trainer import TrainConfig, make_scheduler\n"
        "opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)\n"
        "for s in ('constant', 'linear', 'cosine'):\n"
        "    make_scheduler(opt, TrainConfig(epochs=1, batch_size=1, lr=0.1, schedule=s, warmup_ratio=0.2), 10).step()")
    assert "transformers" not in loaded


@pytest.mark.parametrize("args", [
    [], ["--text", " "], ["--wav", "clips"], ["--csv", "batch.csv", "--text", "x"], ["--csv", "clips"],
    ["--csv", "empty.csv"], ["--csv", "bad.csv"], ["--text", "x", "--out", "clips"], ["--text", "x", "--out", "p.csv"],
])
def test_predict_refuses_bad_arguments_before_importing_the_models(tmp_path, args):
    (tmp_path / "clips").mkdir()
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "bad.csv").write_text("path,sentence\na.wav,x\n", encoding="utf-8")
    (tmp_path / "p.csv").write_text("exists\n", encoding="utf-8")
    loaded = loaded_after(f"from koemo.cli import main\nrc = main(['predict', *{args!r}])\nassert rc == 2, rc", tmp_path)
    assert not loaded, f"koemo predict {' '.join(args)} imported {loaded} before refusing"


def test_koemo_help_and_every_command_help_format_and_import_nothing_heavy():
    """(A `%` in a subcommand's help= once made `koemo --help` itself raise.)"""
    assert not loaded_after("import argparse\nfrom koemo.cli import _parser\nparser = _parser()\nparser.format_help()\n"
                            "commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))\n"
                            "for command in commands.choices.values():\n    command.format_help()")
