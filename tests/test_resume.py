"""A killed training stage, rerun, reuses its finished folds (and the fold in progress from its last epoch) and ends
with exactly the outputs of an uninterrupted run; a changed input starts afresh; the resume directory goes away."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from koemo.core.shards import ShardWriter
from koemo.models.multimodal import MultimodalConv1D
from koemo.train import trainer as trainer_module
from koemo.train.trainer import TrainConfig, Trainer, seed_everything
from pipeline_repo import stage_argv
from test_train import CLASSES, FAST, _examples, mm_spec, separable_features, synthetic_labels

REPO = Path(__file__).resolve().parents[1]


def _fit(checkpoint: Path | None, epochs: int = 6):
    seed_everything(5)
    x = separable_features(synthetic_labels(240), dim=10, seed=4)
    y = synthetic_labels(240)["label_id"].to_numpy()
    model = MultimodalConv1D(x.shape[1], len(CLASSES), channels=8, hidden=16)
    trainer = Trainer(TrainConfig.from_params({**FAST, "patience": 100, "progress": False},
                                              mm_spec(epochs=epochs, dropout=0.3)), len(CLASSES))
    result = trainer.fit(model, _examples(x[:180], y[:180]), _examples(x[180:], y[180:]), checkpoint=checkpoint)
    return model, result


def test_a_fit_interrupted_after_an_epoch_resumes_to_the_same_weights(tmp_path, monkeypatch):
    reference, expected = _fit(None)
    saves = []
    original = trainer_module.save_checkpoint

    def crash_after_third_epoch(*args, **kwargs):
        original(*args, **kwargs)
        saves.append(1)
        if len(saves) == 3:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(trainer_module, "save_checkpoint", crash_after_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "checkpoint.pt")
    monkeypatch.setattr(trainer_module, "save_checkpoint", original)
    assert (tmp_path / "checkpoint.pt").is_file()
    resumed, result = _fit(tmp_path / "checkpoint.pt")
    assert result.epochs_run == expected.epochs_run == 6 and result.best_epoch == expected.best_epoch
    assert result.history == expected.history  # epochs 1-3 restored, 4-6 trained again: same losses, to the bit
    for (name, a), (_, b) in zip(reference.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    # the checkpoint holds tensors and plain values only: readable with weights_only=True (no pickled code)
    torch.load(tmp_path / "checkpoint.pt", weights_only=True)


def _stage_inputs(root: Path, n: int = 480) -> None:
    """labels.parquet, text-embedding shards and melmean shards for train_multimodal, in `root`."""
    labels = synthetic_labels(n, folds=4)
    labels["wav_path"] = [f"wav/{w}.wav" for w in labels["wav_id"]]
    (root / "data").mkdir(parents=True)
    labels.to_parquet(root / "data/labels.parquet", index=False)
    for name, values in (("data/embeddings/tiny-electra", separable_features(labels, dim=10, seed=1)),
                         ("data/features/melmean", separable_features(labels, dim=13, seed=2))):
        (root / name).mkdir(parents=True)
        columns = {"wav_id": str, "aug": str, "aug_copy": "int64"} if "features" in name else {"wav_id": str}
        writer = ShardWriter(root / name, values.shape[1:], columns, rows_per_shard=200)
        meta = [{"wav_id": w, **({"aug": "", "aug_copy": 0} if "features" in name else {})} for w in labels["wav_id"]]
        writer.add(values, meta)
        writer.close()
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["train"].update(folds=2, patience=100, valid_fraction=0.15)
    params["train_multimodal"].update(epochs=12, channels=32, hidden=16, batch_size=8)
    (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")


def _outputs(root: Path) -> dict[str, bytes]:
    kept = [root / "data/predictions", root / "data/models", root / "plots", root / "dvclive", root / "metrics",
            root / "reports"]
    return {p.relative_to(root).as_posix(): p.read_bytes() for d in kept if d.exists() for p in sorted(d.rglob("*"))
            if p.is_file() and "runtime" not in p.parts}


def test_a_stage_killed_after_fold_0_reruns_only_fold_1_and_matches_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = stage_argv("train_multimodal")
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for root in (whole, killed):
        _stage_inputs(root)
    done = subprocess.run(argv, cwd=whole, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    run = subprocess.Popen(argv, cwd=killed, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not list((killed / "data/.resume/multimodal").glob("*/fold0/fold_record.json")):
        assert run.poll() is None and time.time() < deadline, "the stage ended before fold 0 was saved"
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert not (killed / "data/predictions/multimodal.parquet").exists()
    assert not list((killed / "data/models").glob("*"))  # nothing half-written where DVC looks

    rerun = subprocess.run(argv, cwd=killed, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "fold 0: reused" in rerun.stdout and "fold 1: reused" not in rerun.stdout, rerun.stdout[-2000:]
    a, b = _outputs(killed), _outputs(whole)
    assert a.keys() == b.keys() and [k for k in a if a[k] != b[k]] == []  # byte for byte: predictions, fold weights, metrics, curves, plots
    assert not (killed / "data/.resume").exists()  # removed once the stage completed


def test_a_changed_input_does_not_reuse_folds(tmp_path, monkeypatch):
    from argparse import Namespace

    from koemo.train.runner import TrainingPaths, resume_key

    _stage_inputs(tmp_path)
    monkeypatch.chdir(REPO)
    paths = TrainingPaths.from_args(Namespace(labels=tmp_path / "data/labels.parquet", model_dir=Path("m"),
                                              predictions=Path("p"), confusion=Path("c"), live=Path("l"),
                                              metrics=Path("x"), runtime=Path("r"), report=Path("rep"), resume_dir=tmp_path / "resume",
                                              features=tmp_path / "data/features/melmean"))
    assert paths.inputs == (tmp_path / "data/features/melmean",)
    key = resume_key("multimodal", {"train": {"seed": 1}}, paths)
    assert key == resume_key("multimodal", {"train": {"seed": 1}}, paths)
    assert key != resume_key("multimodal", {"train": {"seed": 2}}, paths)
    shard = tmp_path / "data/features/melmean/shard-000.npy"
    data = np.load(shard)
    np.save(shard, data + 1)  # same size, new content and time
    assert key != resume_key("multimodal", {"train": {"seed": 1}}, paths)
