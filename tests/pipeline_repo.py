"""A throwaway copy of this repository as its own git + DVC project, for end-to-end pipeline tests."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

SMALL = {  # a corpus and models small enough for the whole pipeline to run in a few CPU minutes
    "demo": {"size": 150},
    "text": {"encoders": ["tiny-roberta", "tiny-electra"]},  # two families embedded (BERT's: test_text_encoders, real_hub)
    "train": {"folds": 2, "patience": 1},
    "train_text": {"epochs": 2},
    "train_audio": {"epochs": 2},
    "train_multimodal": {"epochs": 2},
    "train_wav2vec2": {"epochs": 3, "patience": 2},
    "train_fusion": {"epochs": 3, "patience": 2},
    "train_egemaps": {"epochs": 3, "patience": 2},
}


def ran(output: str) -> set[str]:
    """Stages DVC actually ran (not skipped, not restored from the run cache)."""
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


def restored(output: str) -> set[str]:
    """Stages DVC restored from its run cache instead of running them."""
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Stage '") and "is cached" in line}


def _unique_bytes(paths, follow_symlinks: bool) -> int:
    seen, total = set(), 0
    for path in paths:
        if path.is_file() and (follow_symlinks or not path.is_symlink()):
            info = path.stat()
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total


def disk_bytes(*roots: Path) -> int:
    """Bytes the files below `roots` take, each inode counted once (a hard link to the cache is not a second copy;
    a symlink counts nothing, its target is counted where it lives)."""
    return _unique_bytes((p for root in roots for p in root.rglob("*")), follow_symlinks=False)


def workspace_bytes(root: Path) -> int:
    """Bytes of the pipeline's outputs under data/ as the workspace sees them (symlinks followed), each file once."""
    return _unique_bytes((root / "data").rglob("*"), follow_symlinks=True)


def copies_ratio(root: Path) -> float:
    """(data + .dvc/cache) / data, hard links counted once: 1.0 means one copy of every output on disk."""
    return disk_bytes(root / "data", root / ".dvc" / "cache") / workspace_bytes(root)


class PipelineRepo:
    def __init__(self, root: Path):
        self.root = root
        self.env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                    "PYTHONPATH": str(root / "src"), "DVC_NO_ANALYTICS": "1", "PYTHONHASHSEED": "0"}

    @classmethod
    def copy_of_this_repo(cls, dest: Path) -> "PipelineRepo":
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                               capture_output=True).stdout.decode().split("\0")
        for name in filter(None, files):
            src = REPO / name
            if src.is_file() and not name.startswith(("metrics/", "reports/", "plots/", "dvclive/", "dvc.lock")):  # skip pipeline outputs
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / name)
        repo = cls(dest)
        repo.git("init", "-q", "-b", "main")
        repo.git("config", "user.email", "e2e@koemo.test")
        repo.git("config", "user.name", "koemo e2e")
        repo.commit("copy")
        return repo

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(list(args), cwd=self.root, env=self.env, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
        return done

    def koemo(self, *args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
        """`koemo ARGS` in this repo, run by `koemo.cli.main` in the test process (its stdout, stderr and exit status
        as a subprocess would give them): the same code as the console script without its ~5 s of interpreter and
        torch/transformers start-up per call. The console script itself runs as a subprocess in a few e2e tests."""
        return koemo_in_process(*args, cwd=cwd or self.root, check=check)

    def git(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("git", *args)

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(str(BIN / "dvc"), *args, check=check)

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-qm", message, "--allow-empty")

    def params(self) -> dict:
        return yaml.safe_load((self.root / "params.yaml").read_text(encoding="utf-8"))

    def set_params(self, **sections) -> None:
        """Deep-merge {section: {key: value}} into params.yaml."""
        path = self.root / "params.yaml"
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
        for section, values in sections.items():
            if isinstance(values, dict):
                params.setdefault(section, {}).update(values)
            else:
                params[section] = values
        path.write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")

    def report(self, stage: str) -> dict:
        """Every detail a stage measured (reports/<stage>.json, a cached output)."""
        return json.loads((self.root / "reports" / f"{stage}.json").read_text(encoding="utf-8"))

    def headline(self, stage: str) -> dict:
        """The stage's headline figures (metrics/<stage>.json: what `dvc metrics show` prints)."""
        return json.loads((self.root / "metrics" / f"{stage}.json").read_text(encoding="utf-8"))

    def status_is_clean(self, *targets: str) -> bool:
        """`dvc status` of the targets and everything upstream (the whole pipeline without targets)."""
        out = self.dvc("status", "--json", *(("--with-deps", *targets) if targets else ())).stdout.strip()
        return json.loads(out or "{}") == {}


def koemo_in_process(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """`koemo ARGS` run by `koemo.cli.main` in this process with `cwd` as the working directory, stdout and stderr
    captured; an argparse error's exit status is returned as the console script would exit with it."""
    from koemo.cli import main

    out, err, before = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        os.chdir(before)
    done = subprocess.CompletedProcess(["koemo", *args], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"koemo {' '.join(args)} failed ({code}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def stage_argv(stage: str, item: str | None = None, params_path: Path | None = None) -> list[str]:
    """The command dvc.yaml runs for `stage` (`item` for a foreach stage), `${…}` filled from params.yaml, as an
    argv list starting with this interpreter: tests run a stage exactly as `dvc repro` does."""
    import re
    import shlex

    spec = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"][stage]
    cmd = spec.get("do", spec)["cmd"]
    params = yaml.safe_load((params_path or REPO / "params.yaml").read_text(encoding="utf-8"))

    def value(match: re.Match) -> str:
        key = match.group(1)
        if key == "item":
            return str(item)
        found = params
        for part in key.split("."):
            found = found[part]
        return str(found)

    argv = shlex.split(re.sub(r"\$\{([^}]+)\}", value, cmd))
    assert argv[0] == "python", cmd
    return [sys.executable, str(REPO / argv[1]), *argv[2:]]
