"""A network training stage under `runtime.processes: 2` (torchrun, gloo on CPU): one process group, each batch
sharded, predictions gathered once per row, outputs written by rank 0 alone, the 1-process results, and a failing
process that stops the stage with its message. On small synthetic inputs (test_resume's): seconds, not minutes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from koemo.train.distributed import processes, shard_batches
from pipeline_repo import stage_argv
from test_resume import _stage_inputs

REPO = Path(__file__).resolve().parents[1]
HOOKS = Path(__file__).resolve().parent / "distributed_hooks"  # sitecustomize: write log, injected failure


@pytest.mark.parametrize("n, batch, world", [(100, 16, 2), (97, 16, 2), (33, 16, 2), (17, 16, 2), (50, 8, 3), (5, 4, 4)])
def test_shards_cover_every_row_of_every_batch_once(n, batch, world):
    rng = np.random.default_rng(n)
    order = rng.permutation(n)
    batches = [order[i:i + batch] for i in range(0, n, batch)]
    batches = [batches[i] for i in rng.permutation(len(batches))]  # a short batch anywhere, as length grouping does
    shards = [shard_batches(batches, world, r) for r in range(world)]
    assert len({len(s) for s in shards}) == 1  # every process takes the same number of steps (DDP needs it)
    assert all(len(b) >= 1 for s in shards for b in s)  # and has a row at each
    rows = np.concatenate([b for s in shards for b in s])
    assert sorted(rows.tolist()) == list(range(n))  # nothing dropped, nothing repeated
    for step in range(len(shards[0])):  # a step's shards are one global batch
        sizes = [len(s[step]) for s in shards]
        assert max(sizes) - min(sizes) <= 1


def test_runtime_processes_must_be_a_positive_whole_number():
    assert processes(None) == 1 and processes({"processes": 3}) == 3
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(Exception, match="runtime.processes"):
            processes({"processes": bad})


def _run(root: Path, procs: int, env_extra: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    params["runtime"]["processes"] = procs
    (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{HOOKS}",
           "KOEMO_TEST_WRITE_LOG": str(root / "writes.log"), **(env_extra or {})}
    return subprocess.run(stage_argv("train_multimodal"), cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


def _inputs(root: Path) -> None:
    _stage_inputs(root, n=120)
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    # dropout 0: with it, each process draws its own masks and only statistics could be compared
    params["train_multimodal"].update(epochs=2, dropout=0.0)
    (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")


@pytest.fixture(scope="module")
def one_and_two(tmp_path_factory):
    """The stage run once with 1 process and once with 2 (one launcher), on the same inputs: the reference of the
    2-process test and of the two-launchers test (one 2-process launch for both)."""
    base = tmp_path_factory.mktemp("one_and_two")
    roots = {1: base / "one", 2: base / "two"}
    for root in roots.values():
        _inputs(root)
    return {procs: (root, _run(root, procs)) for procs, root in roots.items()}


def test_two_processes_train_and_predict_as_one_and_only_rank_0_writes(one_and_two):
    (one, _), (two, _) = one_and_two[1], one_and_two[2]
    done = {procs: run for procs, (_, run) in one_and_two.items()}
    for procs, run in done.items():
        assert run.returncode == 0, run.stderr[-3000:]
    assert done[2].stdout.count("train_multimodal: test UA") == 1  # one headline: the others' console is a log file
    runtime = json.loads((two / "reports/runtime/train_multimodal.json").read_text())
    assert runtime["processes"] == 2

    labels = pd.read_parquet(two / "data/labels.parquet")
    a, b = (pd.read_parquet(r / "data/predictions/multimodal.parquet") for r in (one, two))
    assert list(b["wav_id"]) == list(labels["wav_id"])  # every row once, in labels order
    train = b["split"] == "train"
    assert sorted(b.loc[train, "fold"].unique()) == [0, 1] and b["fold"].notna().all()  # each training row held out once
    probs = [c for c in b if c.startswith("prob_")]
    assert not b[probs].isna().any().any()
    # Same global batch, steps, schedule and loss: the 2-process model is the 1-process one up to the order float32
    # sums are added in (gloo's all-reduce, per-shard loss sums). Measured: 9e-8 (120 rows, 2 epochs); a wrong loss normalisation, a
    # doubled batch or a second scheduler step per update moves them by 1e-2 or more.
    gap = np.abs(a[probs].to_numpy() - b[probs].to_numpy()).max()
    print(f"2 processes vs 1: max |Δp| {gap:.2e}")
    assert gap < 1e-4
    ma, mb = (json.loads((r / "reports/train_multimodal.json").read_text()) for r in (one, two))
    assert ma["test"] == mb["test"] and ma["oof"] == mb["oof"]
    assert [f["epochs_run"] for f in ma["folds"]] == [f["epochs_run"] for f in mb["folds"]]

    writes = [line.split(" ", 1) for line in (two / "writes.log").read_text().splitlines()]
    assert {rank for rank, _ in writes} == {"0"}, writes  # rank 1 wrote nothing
    counts = Counter(Path(target).relative_to(two).as_posix() for _, target in writes)
    for output in ("data/predictions/multimodal.parquet", "data/models/multimodal", "metrics/train_multimodal.json",
                   "reports/train_multimodal.json", "reports/runtime/train_multimodal.json", "plots/multimodal_confusion.csv", "dvclive/multimodal"):
        assert counts[output] == 1, (output, counts)
    assert not (two / "data/.resume").exists()


def test_a_failing_process_stops_the_stage_with_its_message(tmp_path):
    _inputs(tmp_path)
    stamp = tmp_path / "raised_at"
    run = _run(tmp_path, 2, {"KOEMO_TEST_FAIL_RANK": "1", "KOEMO_TEST_FAIL_EPOCH": "2", "KOEMO_TEST_FAIL_STAMP": str(stamp)},
               timeout=180)  # a hang would be a timeout here, not a pass
    ended = time.time()
    assert run.returncode == 1, run.stderr[-3000:]
    tail = run.stderr.replace("\r", "\n").strip().splitlines()
    message = "\n".join(tail[-20:])
    assert "train_multimodal: process 1 of 2 failed (exit status 1)" in message, message
    assert message.rstrip().endswith("ValueError: injected failure in process 1"), message
    assert "Traceback" not in run.stderr.split("train_multimodal: process 1")[0]  # rank 0 said nothing of its own
    assert not (tmp_path / "data/predictions/multimodal.parquet").exists()
    print(f"stopped {ended - float(stamp.read_text()):.1f} s after process 1 raised")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _node_env(root: Path, node: int, port: int, timeout: int) -> dict:
    """The multi-machine recipe of docs/operations.md for machine `node` of 2 (one process each), on this machine."""
    return {"PET_NNODES": "2", "PET_NODE_RANK": str(node), "PET_MASTER_ADDR": "127.0.0.1", "PET_MASTER_PORT": str(port),
            "PET_RDZV_CONF": f"timeout={timeout}", "KOEMO_TEST_WRITE_LOG": str(root / "writes.log")}


def test_two_machines_as_two_launchers_match_one_launcher_with_two_processes(tmp_path, one_and_two):
    """Two torchrun launchers (--nnodes 2, node ranks 0 and 1, master 127.0.0.1, one process each) stand in for two
    machines: the same world of 2 as one launcher with 2 processes, so the same outputs; machine 1 trains and writes
    nothing (not even in its own copy)."""
    import threading

    one, single = one_and_two[2]  # the one launcher with 2 processes
    assert single.returncode == 0, single.stderr[-3000:]
    node0, node1 = tmp_path / "node0", tmp_path / "node1"
    for root in (node0, node1):
        _inputs(root)
    port, done = _free_port(), {}
    second = threading.Thread(target=lambda: done.setdefault(1, _run(node1, 1, _node_env(node1, 1, port, 120))))
    second.start()
    done[0] = _run(node0, 1, _node_env(node0, 0, port, 120))
    second.join()
    for node in (0, 1):
        assert done[node].returncode == 0, (node, done[node].stderr[-3000:])
    assert json.loads((node0 / "reports/runtime/train_multimodal.json").read_text())["processes"] == 2  # the world
    a, b = (pd.read_parquet(r / "data/predictions/multimodal.parquet") for r in (one, node0))
    labels = pd.read_parquet(node0 / "data/labels.parquet")
    assert list(b["wav_id"]) == list(labels["wav_id"])  # every row once, in labels order
    probs = [c for c in b if c.startswith("prob_")]
    gap = np.abs(a[probs].to_numpy() - b[probs].to_numpy()).max()
    print(f"two launchers vs one launcher × 2 processes: max |Δp| {gap:.2e}")
    assert gap < 1e-6  # one world of 2 either way: same shards, same all-reduce
    ma, mb = (json.loads((r / "reports/train_multimodal.json").read_text()) for r in (one, node0))
    assert ma["test"] == mb["test"] and ma["oof"] == mb["oof"]
    writes = [line.split(" ", 1) for line in (node0 / "writes.log").read_text().splitlines()]
    assert {rank for rank, _ in writes} == {"0"}, writes
    assert not (node1 / "writes.log").exists(), (node1 / "writes.log").read_text()  # machine 1 wrote nothing
    assert not (node1 / "data/predictions").exists() and not (node1 / "metrics").exists() and not (node1 / "reports").exists()


@pytest.mark.parametrize("node", [0, 1])
def test_a_machine_that_never_meets_the_other_ends_in_one_line_not_a_hang(tmp_path, node):
    """Machine 0 with no machine 1 (or machine 1 with no machine 0): the rendezvous times out (PET_RDZV_CONF's
    timeout) and the stage exits with status 1 and one line saying what to start where. With no other machine at all
    the outcome does not depend on that timeout (only how long it takes): 2 s here."""
    _inputs(tmp_path)
    started = time.time()
    run = _run(tmp_path, 1, _node_env(tmp_path, node, _free_port(), 2), timeout=120)
    took = time.time() - started
    assert run.returncode == 1, run.stderr[-3000:]
    last = run.stderr.strip().splitlines()[-1]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    expected = "waited" if node == 0 else "could not reach machine 0 at 127.0.0.1"
    assert last.startswith(f"train_multimodal: machine {node} of 2 ") and expected in last, last
    assert "PET_RDZV_CONF=timeout" in last and "PET_NODE_RANK" in last or node == 1, last
    assert took < 90, took
    print(f"machine {node} alone: stopped after {took:.0f} s: {last}")
