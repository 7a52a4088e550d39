"""End-to-end: what DVC promises its users, held on the small demo pipeline.

- the run cache restores a stage whose params return to an earlier setting (`dvc repro`, `dvc exp run`, and in a
  fresh clone after `dvc push --run-cache` / `dvc pull --run-cache`), byte for byte;
- one copy of every output on disk in every flow (repro, repro -f, exp run and back, checkout, clone + pull);
- a team remote: push, fresh clone, pull, clean status, `koemo predict` from the pulled models;
- two queued experiments run side by side with the thread budget split between them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from pipeline_repo import BIN, PipelineRepo, copies_ratio, ran, restored

pytestmark = pytest.mark.e2e

MAX_COPIES = 1.05  # (data + cache) / data: links, not copies; the rest is the run cache's small records


def digests(root: Path, *paths: str) -> dict[str, str]:
    """BLAKE2b of every file below each path (a file or a directory)."""
    found = {}
    for name in paths:
        target = root / name
        for f in sorted([target] if target.is_file() else (p for p in target.rglob("*") if p.is_file())):
            found[f.relative_to(root).as_posix()] = hashlib.blake2b(f.read_bytes(), digest_size=16).hexdigest()
    return found


TFIDF_OUTPUTS = ("data/predictions/tfidf.parquet", "data/models/tfidf", "plots/tfidf_confusion.csv",
                 "metrics/train_tfidf.json", "reports/train_tfidf.json", "reports/runtime/train_tfidf.json")
EGEMAPS_OUTPUTS = ("data/predictions/egemaps.parquet", "data/models/egemaps", "plots/egemaps_confusion.csv",
                   "dvclive/egemaps", "metrics/train_egemaps.json",
                   "reports/train_egemaps.json", "reports/runtime/train_egemaps.json")


def dvc_api_read(repo: PipelineRepo, path: str, rev: str) -> str:
    """`dvc.api.read(path, rev=rev)` in the demo repo's venv (its DVC cache)."""
    code = "import dvc.api, sys; sys.stdout.write(dvc.api.read(sys.argv[1], rev=sys.argv[2], encoding='utf-8'))"
    done = subprocess.run([str(BIN / "python"), "-c", code, path, rev], cwd=repo.root, env=repo.env,
                          capture_output=True, text=True, check=True)
    return done.stdout


def back_to_main(repo: PipelineRepo) -> None:
    repo.git("checkout", "-q", "-f", "main")
    repo.dvc("checkout", "--force", "--quiet")
    assert repo.status_is_clean()


@pytest.mark.parametrize("stage, section, key, other, outputs", [
    ("train_tfidf", "train_tfidf", "min_df", 3, TFIDF_OUTPUTS),
    ("train_egemaps", "train_egemaps", "hidden", 32, EGEMAPS_OUTPUTS),   # a network stage (torch, dvclive curves)
])
def test_run_cache_restores_a_param_round_trip(demo_repo, stage, section, key, other, outputs):
    """Change a param, run, change it back: the stage is restored, not run, and every output (the committed
    metrics, plots and curves included) is the first run's, byte for byte."""
    before = digests(demo_repo.root, *outputs)
    original = demo_repo.params()[section][key]
    demo_repo.set_params(**{section: {key: other}})
    assert stage in ran(demo_repo.dvc("repro", "-s", stage).stdout)
    assert digests(demo_repo.root, *outputs) != before
    demo_repo.set_params(**{section: {key: original}})
    started = time.perf_counter()
    out = demo_repo.dvc("repro", "-s", stage).stdout
    assert stage in restored(out) and not ran(out), out
    assert digests(demo_repo.root, *outputs) == before
    print(f"{stage}: {key} {original} → {other} → {original}: restored in {time.perf_counter() - started:.1f} s")
    back_to_main(demo_repo)


def test_exp_run_back_to_an_earlier_setting_restores_and_keeps_one_copy(demo_repo):
    assert copies_ratio(demo_repo.root) <= MAX_COPIES  # after the first `dvc repro`
    out = demo_repo.dvc("exp", "run", "-S", "train_tfidf.min_df=4").stdout
    assert ran(out) == {"train_tfidf", "stack"}, out
    assert copies_ratio(demo_repo.root) <= MAX_COPIES
    out = demo_repo.dvc("exp", "run", "-S", "train_tfidf.min_df=2").stdout   # main's setting
    assert not ran(out) and {"train_tfidf", "stack"} <= restored(out), out
    assert copies_ratio(demo_repo.root) <= MAX_COPIES
    assert not demo_repo.git("status", "--porcelain").stdout.strip()  # metrics, plots and dvc.lock: main's again
    back_to_main(demo_repo)


def test_rerun_and_checkout_keep_one_copy(demo_repo):
    """`dvc repro -f` reproduces a directory output's bytes (already cached): every file is linked to the cache
    again, not left as a second copy. Checking out another commit's outputs links them too."""
    embeddings = demo_repo.root / "data/embeddings/tiny-roberta"
    out = demo_repo.dvc("repro", "-f", "-s", "text_embeddings@tiny-roberta").stdout
    assert "text_embeddings@tiny-roberta" in ran(out)
    assert demo_repo.status_is_clean()
    copies = [f.name for f in embeddings.rglob("*") if f.is_file() and not f.is_symlink() and f.stat().st_nlink < 2]
    assert not copies, f"left as copies beside the cache: {copies}"
    ratio = copies_ratio(demo_repo.root)
    assert ratio <= MAX_COPIES, ratio
    demo_repo.git("checkout", "-q", "-b", "other-c")
    demo_repo.set_params(stack={"C_grid": [0.3]})   # not test_pipeline_e2e's 0.5: that test expects to run it
    demo_repo.dvc("repro")
    demo_repo.commit("C 0.3")
    demo_repo.git("checkout", "-q", "main")
    demo_repo.dvc("checkout", "--quiet")
    assert demo_repo.status_is_clean() and copies_ratio(demo_repo.root) <= MAX_COPIES
    demo_repo.git("branch", "-q", "-D", "other-c")


def test_team_remote_share_fresh_clone_pull_and_restore(demo_repo, tmp_path):
    """A colleague's pushed results: `koemo share` to a remote, clone fresh, pull: status clean, one copy on disk,
    `koemo predict` answers from the pulled models, and a setting the first machine ran (never committed) is
    restored by `dvc repro --pull`, not rerun."""
    demo_repo.set_params(train_tfidf={"min_df": 5})
    demo_repo.dvc("repro", "-s", "train_tfidf")   # a run the colleague will not need to repeat
    back_to_main(demo_repo)
    remote = tmp_path / "remote"
    demo_repo.dvc("remote", "add", "-d", "team", str(remote))
    demo_repo.commit("team remote")
    try:
        shared = demo_repo.run("koemo", "share").stdout
        assert "run records" in shared, shared
        clone_dir = tmp_path / "clone"
        subprocess.run(["git", "clone", "-q", str(demo_repo.root), str(clone_dir)], check=True)
        clone = PipelineRepo(clone_dir)
        clone.dvc("pull", "--run-cache")
        assert clone.status_is_clean()
        ratio = copies_ratio(clone.root)
        assert ratio <= MAX_COPIES, ratio
        out = json.loads(clone.koemo("predict", "--text", "정말 화가 나요", "--json").stdout)
        assert out["models"]["tfidf"] is not None and out["models"]["text"] is not None
        clone.set_params(train_tfidf={"min_df": 5})
        out = clone.dvc("repro", "--pull", "-s", "train_tfidf").stdout
        assert "train_tfidf" in restored(out) and not ran(out), out
        demo_repo.set_params(train_tfidf={"min_df": 5})
        demo_repo.dvc("repro", "-s", "train_tfidf")                  # restored here too: the same bytes there
        assert digests(clone.root, *TFIDF_OUTPUTS) == digests(demo_repo.root, *TFIDF_OUTPUTS)
        back_to_main(demo_repo)
    finally:
        demo_repo.dvc("remote", "remove", "team")
        demo_repo.commit("no remote")


def test_two_queued_experiments_run_side_by_side(demo_repo):
    """`dvc exp run --queue` twice + `dvc queue start -j 2` with runtime.jobs 2: both finish with metrics, each
    with its share of the cores (no oversubscription), and `dvc exp show` lists both."""
    demo_repo.git("checkout", "-q", "-b", "queue")
    demo_repo.set_params(runtime={"threads": "auto", "jobs": 2})
    demo_repo.commit("two jobs at once")
    env = demo_repo.env  # without the test workers' OMP_NUM_THREADS (conftest): the split by runtime.jobs is under test
    demo_repo.env = {name: value for name, value in env.items() if name != "OMP_NUM_THREADS"}
    try:
        for seed in (1, 2):
            demo_repo.dvc("exp", "run", "--queue", "-S", f"train_tfidf.seed={seed}", "--name", f"seed-{seed}")
        demo_repo.dvc("queue", "start", "-j", "2")
        deadline = time.time() + 600
        while True:
            status = demo_repo.dvc("queue", "status").stdout
            if not any(word in status for word in ("Queued", "Running")):
                break
            assert time.time() < deadline, status
            time.sleep(0.5)
        assert status.count("Success") == 2, status
        shown = json.loads(demo_repo.dvc("exp", "show", "--json").stdout)
        exps = {exp["name"]: exp for rev in shown for exp in (rev.get("experiments") or [])
                for exp in [exp["revs"][0]] if exp.get("name", "").startswith("seed-")}
        assert set(exps) == {"seed-1", "seed-2"}, shown
        cores = len(os.sched_getaffinity(0))
        for name, exp in exps.items():
            metrics = exp["data"]["metrics"]
            assert metrics["metrics/train_tfidf.json"]["data"]["test_ua"] > 0
            assert not any(path.startswith("reports/") for path in metrics), name  # wall-clock is no metric
            # the runtime file is a cached output of the experiment: read it at its revision through DVC's API
            runtime = json.loads(dvc_api_read(demo_repo, "reports/runtime/train_tfidf.json", exp["rev"]))
            assert runtime["threads"] == max(1, cores // 2), name
    finally:
        demo_repo.dvc("queue", "stop", check=False)
        demo_repo.env = env
        back_to_main(demo_repo)
        demo_repo.git("branch", "-q", "-D", "queue")


def test_noop_status_does_not_walk_the_wavs_more_than_once():
    """Only the corpus stage depends on the wav directories; every stage that decodes wavs depends on their
    fingerprints (data/wavs.parquet) instead, so a no-op `dvc status` stats the release once, not once per stage."""
    import yaml

    from pipeline_repo import REPO

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    owners = {name for name, body in stages.items()
              if {"data/raw/demo", "${data.dir}"} & set(body.get("do", body).get("deps", []))}
    assert owners == {"corpus"}, owners
    readers = {name for name, body in stages.items() if "data/wavs.parquet" in body.get("do", body).get("deps", [])}
    assert {"audio_features", "egemaps_features", "ssl_features", "train_wav2vec2"} <= readers


def test_cache_false_outputs_are_only_metrics_and_plots():
    """DVC saves a run to its run cache only when every `cache: false` output is a metric or a plot
    (dvc/stage/__init__.py: `no_cache_outs`); one such file under `outs:` makes the stage unrestorable."""
    import yaml

    from pipeline_repo import REPO

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    offenders = [f"{name}: {next(iter(out))}" for name, body in stages.items()
                 for out in body.get("do", body).get("outs", []) if isinstance(out, dict)
                 and not next(iter(out.values())).get("cache", True)]
    assert not offenders, offenders
    assert "copy" not in (REPO / ".dvc/config").read_text(encoding="utf-8").split("type =")[1].splitlines()[0]
