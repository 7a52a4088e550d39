"""The GPU code paths, proven on a CPU: the `meta` device stands in for CUDA (a tensor left on the CPU is an error),
a fake `nvidia-smi` on PATH for a GPU the installed torch cannot use, monkeypatched `torch.cuda` answers for what a
T4 or a machine with fewer GPUs says, injected exceptions for CUDA out of memory and a full disk."""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from koemo.train import trainer as trainer_mod
from koemo.train.trainer import Trainer, TrainConfig


# ---- 1: the sharded loss stays on the device ------------------------------------------------------------------
def test_shard_loss_keeps_every_tensor_on_the_device():
    """Under runtime.processes >= 2 with class weights (the default) the loss' normaliser was stacked from a device
    tensor and a CPU tensor: a crash on the first step on any GPU. `meta` is a device that is not the CPU."""
    meta = torch.device("meta")
    fake = SimpleNamespace(accelerator=SimpleNamespace(device=meta, reduce=lambda tensor, reduction: tensor))
    model = nn.Linear(3, 4, device=meta)
    labels = torch.tensor([0, 1, 3], device=meta)
    for weight in (torch.ones(4, device=meta), None):
        loss, rows = Trainer._shard_loss(fake, model, {"input": torch.zeros(3, 3, device=meta)}, labels,
                                         nn.CrossEntropyLoss(weight=weight))
        assert loss.device == meta and loss.dim() == 0


# ---- 6: resume with fewer visible GPUs than the run that saved the checkpoint ---------------------------------
def test_resume_with_fewer_visible_gpus_than_the_checkpoint(monkeypatch):
    """A checkpoint saved where 2 GPUs were visible, resumed where 1 is: one CUDA generator state per GPU that exists,
    no IndexError for the missing one."""
    import torch.cuda.random as cuda_random

    set_calls = []

    def set_state(state, device="cuda"):
        index = device if isinstance(device, int) else torch.device(device).index or 0
        if index >= 1:
            raise IndexError("list index out of range")  # what torch.cuda says for a GPU that is not there
        set_calls.append(index)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(cuda_random, "set_rng_state", set_state)
    monkeypatch.setattr(torch.cuda, "set_rng_state", set_state)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [torch.zeros(16, dtype=torch.uint8)] * 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": torch.zeros(16, dtype=torch.uint8))
    monkeypatch.setattr(torch, "get_rng_state", lambda: torch.zeros(16, dtype=torch.uint8))  # CPU state untouched below
    monkeypatch.setattr(torch, "set_rng_state", lambda state: None)
    saved = trainer_mod._rng_states()
    saved["cuda"] = [torch.zeros(16, dtype=torch.uint8)] * 2  # what a 2-GPU machine wrote
    trainer_mod._set_rng_states(saved)
    assert set_calls == [0]


# ---- 5: bf16 only where the GPU has it natively --------------------------------------------------------------
@pytest.mark.parametrize("capability, native, expected", [((7, 5), False, "fp16"), ((8, 0), True, "bf16")])
def test_bf16_only_where_native(monkeypatch, capability, native, expected):
    """torch.cuda.is_bf16_supported() says True on a T4 (7.5) unless asked without emulation: fp16 + loss scaling
    there, bf16 from compute capability 8 (Ampere) on."""
    from koemo.core.device import autocast_dtype

    def supported(including_emulation: bool = True) -> bool:
        return True if including_emulation else native

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert trainer_mod.mixed_precision("auto", "cuda") == expected
    assert autocast_dtype(torch.device("cuda")) == {"bf16": torch.bfloat16, "fp16": torch.float16}[expected]


# ---- 3: a GPU that nvidia-smi lists but torch cannot use ------------------------------------------------------
def _fake_nvidia_smi(folder: Path, name: str = "Tesla P40", mib: int = 24576, driver: str = "535.183.01") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "nvidia-smi"
    exe.write_text("#!/bin/sh\n"
                   f'case "$*" in *driver_version*) echo "{driver}";; *) echo "{name}, {mib}";; esac\n')
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return folder


def test_check_blocks_a_gpu_that_this_torch_cannot_use(tmp_path, monkeypatch):
    """nvidia-smi lists a GPU, torch.cuda.is_available() is False (a CUDA 13 wheel on a driver < 580, a CPU wheel):
    `device: auto` would train on the CPU for days. A BLOCKER naming the mismatch and both fixes."""
    from koemo.check.machine import check_machine
    from koemo.check.report import BLOCKER, WARN

    monkeypatch.setenv("PATH", f"{_fake_nvidia_smi(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rows = check_machine(_gpu_params(1), tmp_path, clips=100, free_disk=2**40)  # the real job's encoders
    gpu = [r for r in rows if r.check.startswith("GPU")]
    assert gpu and gpu[0].state == BLOCKER, gpu
    demo = [r for r in check_machine({"text": {}, "ssl": {}}, tmp_path, clips=100, free_disk=2**40) if r.check == "GPU"]
    assert demo[0].state == WARN, demo  # nothing needs the GPU: said, not blocked
    said = gpu[0].detail + " " + gpu[0].fix
    assert "Tesla P40" in said and "535.183.01" in said and torch.__version__.split("+")[0] in said, said
    assert "https://download.pytorch.org/whl/cu126" in said and "580" in said, said


def test_device_auto_says_why_it_runs_on_the_cpu_when_a_gpu_is_listed(tmp_path, monkeypatch, capsys):
    import koemo.core.device as device

    monkeypatch.setenv("PATH", f"{_fake_nvidia_smi(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "_warned", [])
    assert device.resolve_device("auto").type == "cpu"
    said = capsys.readouterr().err
    assert said.startswith("warning: device auto runs on the CPU") and "Tesla P40" in said and "cu126" in said, said


def test_device_cuda_fails_loudly_without_a_usable_gpu(monkeypatch):
    """`train.device: cuda` (and a stage's `device: cuda`) demand a GPU: with none usable, one UserError naming why,
    never a silent CPU run or a CUDA traceback later."""
    from koemo.core.device import resolve_device
    from koemo.core.errors import UserError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="device: cuda"):
        Trainer(TrainConfig(epochs=1, batch_size=2, lr=1e-3, device="cuda"), n_classes=4)
    with pytest.raises(UserError, match="device: cuda"):
        resolve_device("cuda")


# ---- 4: out of memory and a full disk: one line each ---------------------------------------------------------
def test_cuda_out_of_memory_is_one_line_naming_the_keys_to_lower():
    from koemo.core.runner import run_stage

    def main():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
                                     "14.58 GiB of which 1.02 GiB is free.")

    with pytest.raises(SystemExit) as ended:
        run_stage("train_wav2vec2", main)
    message = str(ended.value.code)
    assert "\n" not in message and message.startswith("train_wav2vec2: CUDA out of memory"), message
    for key in ("train_wav2vec2.batch_size", "train_wav2vec2.max_seconds", "train_wav2vec2.gradient_checkpointing"):
        assert key in message, message
    with pytest.raises(SystemExit) as ended:
        run_stage("train_text", main)
    assert "train_text.batch_size" in str(ended.value.code), ended.value.code


@pytest.mark.parametrize("raised", [OSError(errno.ENOSPC, "No space left on device"),
                                    OSError("Not enough free space to write 268390400 bytes")])
def test_a_full_disk_is_one_line_naming_the_output_and_the_room_needed(tmp_path, raised):
    from koemo.core.io import atomic_path
    from koemo.core.runner import run_stage

    target = tmp_path / "features" / "mel.npy"

    def main():
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"x")
            raise raised

    with pytest.raises(SystemExit) as ended:
        run_stage("audio_features", main)
    message = str(ended.value.code)
    assert "\n" not in message and message.startswith("audio_features: disk full"), message
    assert str(target) in message and "free" in message and "dvc cache dir" in message, message
    if "268390400" in str(raised):
        assert "256.0 MiB" in message, message
    assert not list(target.parent.iterdir())  # nothing half-written left


# ---- 4: koemo check's GPU estimate ---------------------------------------------------------------------------
def _gpu_params(processes: int = 1) -> dict:
    return {"text": {"model": "kobert"}, "encoders": {"kobert": {"hub_id": "skt/kobert-base-v1", "max_length": 64}},
            "train_text": {"batch_size": 256},
            "ssl": {"model": "xlsr"}, "audio_encoders": {"xlsr": {"hub_id": "kresnik/wav2vec2-large-xlsr-korean"}},
            "ssl_features": {"batch_seconds": 64},
            "train_wav2vec2": {"mode": "finetune", "batch_size": 64, "max_seconds": 15},
            "runtime": {"processes": processes}}


def test_gpu_estimate_is_per_gpu_with_runtime_processes():
    """8 processes share each global batch: each GPU holds an eighth of the activations, not all of them (no false
    BLOCKER that stops `make aihub` on an 8-GPU machine)."""
    from koemo.check.machine import check_machine
    from koemo.check.report import BLOCKER

    one_gpu = check_machine(_gpu_params(1), Path("."), clips=100, free_disk=2**40, gpu_list=[("A100", 40 * 2**30)])
    eight = check_machine(_gpu_params(8), Path("."), clips=100, free_disk=2**40, gpu_list=[("A100", 40 * 2**30)] * 8)
    assert [r.state for r in one_gpu if r.check.startswith("GPU")] == [BLOCKER]
    assert [r.state for r in eight if r.check.startswith("GPU")] != [BLOCKER], eight


def test_fine_tune_advice_names_the_keys_that_matter():
    from koemo.check.machine import check_machine
    from koemo.check.report import BLOCKER

    rows = check_machine(_gpu_params(1), Path("."), clips=100, free_disk=2**40, gpu_list=[("T4", 15 * 2**30)])
    gpu = [r for r in rows if r.check.startswith("GPU")][0]
    assert gpu.state == BLOCKER and "train_wav2vec2" in gpu.detail
    for key in ("train_wav2vec2.batch_size", "train_wav2vec2.max_seconds", "train_wav2vec2.gradient_checkpointing"):
        assert key in gpu.fix, gpu.fix


def test_ssl_features_estimate_states_its_precision():
    from koemo.check.machine import gpu_estimate

    ssl = [how for job, _, how in gpu_estimate(_gpu_params(1)) if job.startswith("ssl_features")]
    assert ssl and ("fp32" in ssl[0] or "bf16" in ssl[0] or "fp16" in ssl[0]), ssl


# ---- 2: every encoder family trains under DDP (2 torchrun workers, gloo) -------------------------------------
def test_two_processes_fit_every_encoder_family(tmp_path):
    """BERT and RoBERTa carry a pooler TextClassifier never uses: DDP (no find_unused_parameters) failed at step 2
    with "Expected to have finished reduction in the prior iteration". ELECTRA has none. One torchrun launch fits the
    three families in turn (a fresh model and DDP wrapper each, one process group)."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo / "src")}
    families = ("bert", "roberta", "electra")
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                          "--master-port", str(29500 + os.getpid() % 500), str(Path(__file__).parent / "ddp_text_worker.py"),
                          *families], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-3000:])
    for family in families:
        for rank in (0, 1):
            assert f"rank {rank}: {family} trained 2 epochs" in run.stdout, run.stdout


# ---- 8: the GPU check script ----------------------------------------------------------------------------------
GPU_CHECK = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_gpu_check_says_no_gpu_in_seconds(tmp_path):
    """On this CPU: the per-step budget, then one clear "no GPU" line, exit 0, within seconds (no step started); with
    a fake nvidia-smi listing a GPU this torch cannot use, that line names the mismatch and the fix."""
    import subprocess
    import time

    for path, expected in ((os.environ["PATH"], "sees no CUDA device and nvidia-smi lists none"),
                           (f"{_fake_nvidia_smi(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}",
                            "https://download.pytorch.org/whl/cu126")):
        begun = time.time()
        run = subprocess.run([sys.executable, str(GPU_CHECK)], env={**os.environ, "PATH": path}, capture_output=True,
                             text=True, timeout=60)
        took = time.time() - begun
        assert run.returncode == 0, run.stderr[-2000:]
        lines = run.stdout.strip().splitlines()
        assert lines[0].startswith("gpu_check: deadline 540 s; per-step budget: versions ") and "(sum 530 s)" in lines[0]
        assert lines[1].startswith("no GPU: ") and expected in lines[1], lines
        assert took < 30, took


def test_gpu_check_timing_helpers_call_cuda_off_the_smoke_run(monkeypatch):
    """On a GPU, gpu_check's `_sync` / `_reset_peak` reach CUDA (the smoke run skips them, so only this sees them)."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("gpu_check_helpers", GPU_CHECK)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    called = []
    monkeypatch.setattr(gpu_check, "SMOKE", False)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: called.append("synchronize"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda *a, **k: called.append("reset_peak"))
    gpu_check._sync()
    gpu_check._reset_peak()
    assert called == ["synchronize", "reset_peak"]


def test_gpu_check_steps_run_their_code_in_a_smoke_run():
    """Each measuring step's code, on the CPU at tiny sizes (the script labels every such line as not a result):
    the script must not first meet its own bugs on the GPU machine's short slot. The steps run one after the other
    through the script's own `main(["--step", …])` in one fresh interpreter (torch and transformers imported once)."""
    import subprocess

    env = {**os.environ, "KOEMO_GPU_CHECK_SMOKE": "1", "OMP_NUM_THREADS": "1"}
    steps = {"xlsr_finetune": "fine-tune step", "loader_wait": "waiting for data"}
    each_step = ("import importlib.util, sys\n"
                 "spec = importlib.util.spec_from_file_location('gpu_check', sys.argv[1])\n"
                 "gpu_check = importlib.util.module_from_spec(spec)\n"
                 "spec.loader.exec_module(gpu_check)\n"
                 "for step in sys.argv[2:]:\n"
                 "    print(f'step {step}: exit', gpu_check.main(['--step', step, '--batch', '2']), flush=True)\n")
    run = subprocess.run([sys.executable, "-c", each_step, str(GPU_CHECK), *steps], env=env, capture_output=True,
                         text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    for step, said in steps.items():
        assert f"step {step}: exit 0" in run.stdout, (step, run.stdout, run.stderr[-2000:])
        lines = [line for line in run.stdout.splitlines() if line.startswith("[smoke run: tiny sizes on the CPU, not a "
                                                                            f"result] {step}")]
        assert lines and said in lines[0], (step, run.stdout)


# ---- 7: wav2vec2 fine-tuning batches ---------------------------------------------------------------------------
def _finetune_inputs(uses_mask: bool, n: int = 200):
    import pandas as pd

    from koemo.models.wav2vec2_finetune import FineTuneInputs

    rng = np.random.default_rng(0)
    labels = pd.DataFrame({"wav_id": [f"w{i}" for i in range(n)], "wav_path": [f"/nowhere/w{i}.wav" for i in range(n)],
                           "label_id": np.arange(n) % 4, "duration_s": rng.uniform(1.0, 20.0, n)})
    encoder = SimpleNamespace(sample_rate=16000, normalize=True, min_samples=400, layers=3, dim=8, name="fake",
                              source="local-tiny", architecture="Wav2Vec2Model", uses_attention_mask=uses_mask)
    return FineTuneInputs(labels, lambda: encoder, 4, {"max_seconds": 15, "hidden": 8, "dropout": 0.0}), labels


def test_finetune_batches_are_length_bucketed_and_capped_at_max_seconds():
    """Random batches almost always hold one long clip, so every batch was padded to ~max_seconds: with the clips'
    lengths (labels' duration_s, capped at max_seconds) the sampler groups similar lengths."""
    from koemo.train.data import EpochBatchSampler

    inputs, labels = _finetune_inputs(True)
    examples = inputs.examples(np.arange(len(labels)))
    assert examples.lengths is not None
    expected = np.minimum(np.round(labels["duration_s"].to_numpy() * 16000), 15 * 16000)
    assert np.array_equal(examples.lengths, expected.astype(np.int64))

    def padding(lengths) -> float:
        batches = EpochBatchSampler(len(labels), 16, shuffle=True, seed=0, lengths=lengths).batches()
        return sum(int(expected[b].max() * len(b) - expected[b].sum()) for b in batches) / expected.sum()

    bucketed, random = padding(examples.lengths), padding(None)
    assert bucketed < 0.25 * random, (bucketed, random)


def test_group_norm_batches_are_equal_length_crops_without_zero_padding():
    """A group-norm wav2vec2 (facebook/wav2vec2-base: return_attention_mask false) takes no mask, so zero padding
    would move its features: each batch is cropped to its shortest clip instead. A layer-norm model gets padding + mask."""
    inputs, _ = _finetune_inputs(False)
    items = [(np.ones(1000, dtype=np.float32), 0), (np.ones(600, dtype=np.float32) * 2, 1)]
    batch = inputs.examples(np.arange(2)).collate(items)
    assert batch["input_values"].shape == (2, 600) and bool((batch["input_values"] != 0).all())
    assert "attention_mask" not in batch or bool(batch["attention_mask"].all())
    masked, _ = _finetune_inputs(True)
    batch = masked.examples(np.arange(2)).collate(items)
    assert batch["input_values"].shape == (2, 1000) and int(batch["attention_mask"].sum()) == 1600


def test_finetune_decodes_in_dataloader_workers_on_a_gpu(monkeypatch):
    """On a GPU the wavs are decoded in DataLoader workers while the GPU computes (on the CPU, one process: the
    determinism and the 2 cores stay as they were)."""
    from koemo.train.data import make_loader

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    inputs, labels = _finetune_inputs(True)
    loader = make_loader(inputs.examples(np.arange(len(labels))), 16, shuffle=True)
    assert loader.num_workers >= 2 and loader.prefetch_factor >= 2
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert make_loader(_finetune_inputs(True)[0].examples(np.arange(20)), 16, shuffle=True).num_workers == 0
