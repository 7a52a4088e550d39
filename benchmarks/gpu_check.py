#!/usr/bin/env python3
"""The project's GPU check for a short slot on a bare GPU machine: no network, no DVC, no pip, whatever torch and
transformers it has; the project's files alone (`python3 benchmarks/gpu_check.py`, from the repo root or anywhere).

One deadline (`--deadline`, default 540 s, at most 540) shared by steps run most valuable first, each in its own
process under its own budget (a hang, a crash or a CUDA out of memory ends that step, not the check); a step that
no longer fits the time left is skipped with a line. It prints:
  versions     torch / CUDA build / driver / GPUs (compute capability, memory, native bf16), transformers
  koemo_check  `python -m koemo check` on this machine (the project's own rows, incl. the GPU/driver one)
  bert         samples/s + peak GPU memory of a real-size (BERT-base: 110 M params, random init) fine-tune step
  xlsr_extract XLS-R-large (kresnik/wav2vec2-large-xlsr-korean's config, random init) feature extraction: clips/s,
               peak memory, against `koemo check`'s estimate for the same batch
  xlsr_finetune XLS-R-large fine-tune step at batch 8 / 16 / 32 × 15 s: samples/s, peak memory, the first OOM point
               and its message
  parity       bf16 (or fp16) autocast vs fp32 predictions of the same random-init BERT: max |Δp|, argmax agreement
  loader_wait  the share of a fine-tune step spent waiting for decoded wavs (the project's WaveRows in DataLoader
               workers when koemo imports, else the stdlib `wave` reader)
  multi_gpu    1 vs N GPUs (torchrun, NCCL, BERT-base step, per-GPU batch fixed) where N > 1
Without a usable GPU it prints one "no GPU" line (why, and the fix when nvidia-smi lists a GPU torch cannot use) in
seconds and exits 0. Model sizes are real, weights random: speeds and memory are the real job's, accuracies are not.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_DEADLINE = 540
# (step, budget in seconds): most valuable first; the budgets add up to 530 s, under the 540 s deadline
STEPS = [("versions", 25), ("koemo_check", 45), ("bert", 70), ("xlsr_extract", 60), ("xlsr_finetune", 150),
         ("parity", 45), ("loader_wait", 60), ("multi_gpu", 75)]
FINETUNE_BATCHES = (8, 16, 32)
CLIP_SECONDS = 15.0   # train_wav2vec2.max_seconds (params.yaml / the aihub-gpu profile)
XLSR_CONFIG = dict(vocab_size=1205, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                   intermediate_size=4096, feat_extract_norm="layer", do_stable_layer_norm=True,
                   conv_dim=[512] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2],
                   num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, feat_extract_activation="gelu",
                   gradient_checkpointing=False)  # REAL_MODELS.md's facts; its config says true, koemo turns it off
BERT_CONFIG = dict(vocab_size=32000, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                   intermediate_size=3072, max_position_embeddings=512, type_vocab_size=1, pad_token_id=1)
BERT_BATCH, BERT_TOKENS = 32, 64  # train_text.batch_size / encoders.*.max_length of the profile
# The test suite's smoke run (tests/test_gpu_paths.py): every step's code on the CPU with tiny sizes. Never a result.
SMOKE = os.environ.get("KOEMO_GPU_CHECK_SMOKE") == "1"
DEVICE = "cpu" if SMOKE else "cuda"
if SMOKE:
    XLSR_CONFIG.update(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       conv_dim=[16] * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    BERT_CONFIG.update(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    BERT_BATCH, CLIP_SECONDS = 4, 1.0


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}


def _say(line: str) -> None:
    print(("[smoke run: tiny sizes on the CPU, not a result] " if SMOKE else "") + line, flush=True)


# ---- the parent: budgets, deadline, one process per step -------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deadline", type=float, default=MAX_DEADLINE, help=f"seconds for everything (<= {MAX_DEADLINE})")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        return STEP_FUNCTIONS[args.step](args)
    started = time.monotonic()
    deadline = min(args.deadline, MAX_DEADLINE)
    _say(f"gpu_check: deadline {deadline:.0f} s; per-step budget: "
         + ", ".join(f"{name} {budget} s" for name, budget in STEPS) + f" (sum {sum(b for _, b in STEPS)} s)")
    usable, line = _gpu_usable()
    if not usable:
        _say(line)
        _say(f"gpu_check: done in {time.monotonic() - started:.1f} s (nothing measured)")
        return 0
    for name, budget in STEPS:
        left = deadline - (time.monotonic() - started)
        if left < min(budget, 15):
            _say(f"{name}: skipped ({left:.0f} s left of the deadline, budget {budget} s)")
            continue
        if name == "xlsr_finetune":
            _finetune_steps(min(budget, left))
            continue
        _child(name, min(budget, left))
    _say(f"gpu_check: done in {time.monotonic() - started:.0f} s of {deadline:.0f} s")
    return 0


def _child(step: str, budget: float, batch: int = 0, launcher: list[str] | None = None) -> int:
    """Run one step in its own process; its own lines go straight to stdout."""
    command = (launcher or [sys.executable]) + [str(Path(__file__).resolve()), "--step", step, "--batch", str(batch)]
    begun = time.monotonic()
    try:
        done = subprocess.run(command, cwd=REPO, env=_env(), timeout=budget, stdout=sys.stdout, stderr=subprocess.PIPE,
                              text=True)
    except subprocess.TimeoutExpired:
        _say(f"{step}{f' batch {batch}' if batch else ''}: stopped at its {budget:.0f} s budget")
        return 124
    if done.returncode not in (0, OOM_EXIT):
        tail = [ln for ln in done.stderr.strip().splitlines() if ln.strip()][-3:]
        _say(f"{step}: failed (exit {done.returncode}) after {time.monotonic() - begun:.0f} s: " + " | ".join(tail))
    return done.returncode


OOM_EXIT = 3


def _finetune_steps(budget: float) -> None:
    """Batch 8, 16, 32 in turn (fresh process each: an OOM leaves the allocator fragmented), stopping at the first OOM."""
    begun = time.monotonic()
    for batch in FINETUNE_BATCHES:
        left = budget - (time.monotonic() - begun)
        if left < 15:
            _say(f"xlsr_finetune batch {batch}: skipped (its budget is spent)")
            break
        if _child("xlsr_finetune", min(left, budget / len(FINETUNE_BATCHES) + 20), batch) == OOM_EXIT:
            break


def _gpu_usable() -> tuple[bool, str]:
    """(usable, the "no GPU" line): torch imports and sees CUDA, else why not (and the fix, from koemo.core.device)."""
    try:
        import torch
    except ImportError as err:
        return False, f"no GPU: torch does not import here ({err}); nothing to measure"
    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        return True, ""
    listed = []
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=15).stdout
            listed = [line.strip() for line in out.splitlines() if line.strip()]
        except (OSError, subprocess.SubprocessError):
            pass
    reason = None
    if listed:
        try:
            sys.path.insert(0, str(REPO / "src"))
            from koemo.core.device import unusable_gpu_reason

            reason = unusable_gpu_reason(listed, _driver())
        except Exception:  # the project's modules need packages this machine may lack
            reason = f"nvidia-smi lists {listed[0]} but torch {torch.__version__} (CUDA {torch.version.cuda}) cannot use it"
    return False, (f"no GPU: {reason}" if reason else
                   f"no GPU: torch {torch.__version__} sees no CUDA device and nvidia-smi lists none; nothing to measure "
                   "(run this on the GPU machine)")


def _driver() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=15).stdout.split()
        return out[0] if out else None
    except (OSError, subprocess.SubprocessError):
        return None


# ---- the steps (each in its own process) ---------------------------------------------------------------------
def _bf16_native() -> bool:
    import torch

    if SMOKE:
        return True
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:
        return torch.cuda.get_device_capability()[0] >= 8


def _amp_dtype():
    import torch

    return torch.bfloat16 if _bf16_native() else torch.float16


def _peak() -> str:
    import torch

    return "n/a (smoke run)" if SMOKE else f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"


def _sync() -> None:
    import torch

    if not SMOKE:
        torch.cuda.synchronize()


def _reset_peak() -> None:
    import torch

    if not SMOKE:
        torch.cuda.reset_peak_memory_stats()


def step_versions(args) -> int:
    import torch

    _say(f"versions: torch {torch.__version__} (CUDA build {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}),"
         f" driver {_driver() or 'unknown'}, {torch.cuda.device_count()} GPU(s)")
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        _say(f"versions: GPU {i}: {props.name}, compute capability {props.major}.{props.minor}, "
             f"{props.total_memory / 2**30:.1f} GiB; native bf16 {_bf16_native()} (autocast {str(_amp_dtype())[6:]})")
    try:
        import transformers

        _say(f"versions: transformers {transformers.__version__}")
    except ImportError:
        _say("versions: transformers not installed (the bert/xlsr/parity steps will say so)")
    return 0


def step_koemo_check(args) -> int:
    try:
        done = subprocess.run([sys.executable, "-m", "koemo", "check"], cwd=REPO, env=_env(), capture_output=True,
                              text=True, timeout=40)
    except subprocess.TimeoutExpired:
        _say("koemo_check: no answer in 40 s")
        return 0
    lines = (done.stdout + done.stderr).strip().splitlines()
    for line in lines[-25:]:
        _say(f"koemo_check: {line}")
    return 0


def _bert_classifier(torch):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    encoder = BertModel(BertConfig(**BERT_CONFIG), add_pooling_layer=False)

    class Classifier(torch.nn.Module):  # the shape of koemo.models.text.TextClassifier (cls pooling, linear head)
        def __init__(self):
            super().__init__()
            self.encoder, self.head = encoder, torch.nn.Linear(BERT_CONFIG["hidden_size"], 4)

        def forward(self, input_ids, attention_mask):
            return self.head(self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0])

    return Classifier()


def _train_steps(torch, model, make_batch, steps: int, warmup: int = 2, seconds: float = 20.0) -> tuple[float, int]:
    """(samples/s over the timed steps, timed steps): AdamW, autocast (bf16 native, else fp16 + GradScaler)."""
    dtype = _amp_dtype()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    scaler = torch.amp.GradScaler(DEVICE, enabled=dtype == torch.float16 and not SMOKE)
    rows, timed, begun = 0, 0, None
    for step in range(warmup + steps):
        if step == warmup:
            _sync()
            begun = time.perf_counter()
        inputs, labels = make_batch()
        with torch.autocast(DEVICE, dtype=dtype):
            loss = torch.nn.functional.cross_entropy(model(**inputs).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if step >= warmup:
            rows, timed = rows + len(labels), timed + 1
            if time.perf_counter() - begun > seconds:
                break
    _sync()
    return rows / (time.perf_counter() - begun), timed


def _token_batch(torch, batch: int, device):
    ids = torch.randint(5, BERT_CONFIG["vocab_size"], (batch, BERT_TOKENS), device=device)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, torch.randint(0, 4, (batch,), device=device)


def step_bert(args) -> int:
    import torch

    model = _bert_classifier(torch).to(DEVICE).train()
    _reset_peak()
    speed, steps = _train_steps(torch, model, lambda: _token_batch(torch, BERT_BATCH, DEVICE), steps=20)
    _say(f"bert: BERT-base fine-tune step, batch {BERT_BATCH} × {BERT_TOKENS} tokens, {str(_amp_dtype())[6:]} autocast:"
         f" {speed:.0f} samples/s ({steps} timed steps), peak {_peak()}{_estimate('train_text')}")
    return 0


def _estimate(job: str) -> str:
    """koemo check's figure for the same job, when the project imports here."""
    try:
        sys.path.insert(0, str(REPO / "src"))
        from koemo.check.machine import gpu_estimate

        params = {"text": {"model": "bert"}, "encoders": {"bert": {"hub_id": "klue/roberta-base", "max_length": BERT_TOKENS}},
                  "train_text": {"batch_size": BERT_BATCH}, "ssl": {"model": "xlsr"},
                  "audio_encoders": {"xlsr": {"hub_id": "kresnik/wav2vec2-large-xlsr-korean"}},
                  "ssl_features": {"batch_seconds": 4 * CLIP_SECONDS},
                  "train_wav2vec2": {"mode": "finetune", "batch_size": args_batch[0], "max_seconds": CLIP_SECONDS}}
        for name, size, how in gpu_estimate(params):
            if name.startswith(job):
                return f"; koemo check estimates {size / 2**30:.1f} GiB ({how})"
    except Exception as err:  # noqa: BLE001 — an estimate is a nicety here
        return f"; (koemo check's estimate unavailable: {type(err).__name__})"
    return ""


args_batch = [8]


def _xlsr(torch):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    return Wav2Vec2Model(Wav2Vec2Config(**XLSR_CONFIG))


def step_xlsr_extract(args) -> int:
    import torch

    model = _xlsr(torch).to(DEVICE).eval()
    clips = 4  # ssl_features.batch_seconds 64 ≈ 4 clips of 15 s
    waves = torch.randn(clips, int(CLIP_SECONDS * 16000), device=DEVICE)
    mask = torch.ones_like(waves, dtype=torch.long)
    _reset_peak()
    done, begun = 0, None
    with torch.inference_mode(), torch.autocast(DEVICE, dtype=_amp_dtype()):
        for step in range(12):
            if step == 2:
                _sync()
                begun = time.perf_counter()
            model(waves, attention_mask=mask, output_hidden_states=True)
            done += clips if step >= 2 else 0
    _sync()
    rate = done / (time.perf_counter() - begun)
    _say(f"xlsr_extract: XLS-R-large, {clips} × {CLIP_SECONDS:.0f} s clips, every hidden layer, {str(_amp_dtype())[6:]} "
         f"autocast: {rate:.1f} clips/s ({rate * CLIP_SECONDS:.0f} audio s/s), peak {_peak()}{_estimate('ssl_features')}")
    return 0


def _finetuner(torch):
    encoder = _xlsr(torch)
    encoder.freeze_feature_encoder()  # the project's recipe (koemo.models.wav2vec2_finetune)

    class FineTuner(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.head = encoder, torch.nn.Linear(XLSR_CONFIG["hidden_size"], 4)

        def forward(self, input_values, attention_mask):
            return self.head(self.encoder(input_values, attention_mask=attention_mask).last_hidden_state.mean(dim=1))

    return FineTuner()


def step_xlsr_finetune(args) -> int:
    import torch

    batch = args.batch or 8
    args_batch[0] = batch
    model = _finetuner(torch).to(DEVICE).train()
    samples = int(CLIP_SECONDS * 16000)

    def make():
        waves = torch.randn(batch, samples, device=DEVICE)
        return {"input_values": waves, "attention_mask": torch.ones_like(waves, dtype=torch.long)}, \
            torch.randint(0, 4, (batch,), device=DEVICE)

    _reset_peak()
    try:
        speed, steps = _train_steps(torch, model, make, steps=4, warmup=1, seconds=15)
    except torch.OutOfMemoryError as err:
        said = " ".join(str(err).split())[:260]
        _say(f"xlsr_finetune batch {batch}: OUT OF MEMORY (first OOM point; lower train_wav2vec2.batch_size or "
             f"max_seconds, or set gradient_checkpointing: true): {said}")
        return OOM_EXIT
    _say(f"xlsr_finetune batch {batch}: XLS-R-large fine-tune step (feature encoder frozen), {batch} × "
         f"{CLIP_SECONDS:.0f} s, {str(_amp_dtype())[6:]} autocast: {speed:.2f} samples/s ({steps} timed steps), "
         f"peak {_peak()}{_estimate('train_wav2vec2')}")
    return 0


def step_parity(args) -> int:
    import torch

    model = _bert_classifier(torch).to(DEVICE).eval()
    torch.manual_seed(1)
    inputs, _ = _token_batch(torch, 128, DEVICE)
    with torch.inference_mode():
        full = torch.softmax(model(**inputs).float(), dim=-1)
        with torch.autocast(DEVICE, dtype=_amp_dtype()):
            half = torch.softmax(model(**inputs).float(), dim=-1)
    gap = (full - half).abs()
    agree = (full.argmax(-1) == half.argmax(-1)).float().mean().item()
    _say(f"parity: BERT-base (random init) {str(_amp_dtype())[6:]} autocast vs fp32 on 128 rows: max |Δp| "
         f"{gap.max().item():.2e}, mean {gap.mean().item():.2e}, argmax agreement {agree:.1%}")
    return 0


def step_loader_wait(args) -> int:
    """Fine-tune steps at batch 8 fed by a DataLoader with workers decoding wavs written here; wait share = time
    blocked on the next batch / step time."""
    import tempfile
    import wave

    import numpy as np
    import torch

    folder = Path(tempfile.mkdtemp(prefix="gpu-check-wavs-"))
    rng = np.random.default_rng(0)
    paths = []
    for i in range(16 if SMOKE else 96):
        seconds = float(rng.uniform(2, 12))  # AI Hub clips: median 3.9 s, up to ~16 s
        pcm = (rng.standard_normal(int(seconds * 16000)) * 3000).astype("<i2")
        path = folder / f"clip{i}.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000), out.writeframes(pcm.tobytes())
        paths.append(path)
    dataset, collate, kind = _wave_dataset(paths)
    workers = 1 if SMOKE else min(4, os.cpu_count() or 1)
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=True, num_workers=workers, collate_fn=collate,
                                         pin_memory=not SMOKE, persistent_workers=False)
    model = _finetuner(torch).to(DEVICE).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    dtype = _amp_dtype()
    scaler = torch.amp.GradScaler(DEVICE, enabled=dtype == torch.float16 and not SMOKE)
    waited = total = 0.0
    steps = 0
    begun = time.perf_counter()
    for epoch in range(3):
        fetch = time.perf_counter()
        for batch in loader:
            got = time.perf_counter()
            if steps >= 2:  # the first batches include the workers' start
                waited += got - fetch
            waves, mask, labels = (t.to(DEVICE, non_blocking=True) for t in batch)
            with torch.autocast(DEVICE, dtype=dtype):
                loss = torch.nn.functional.cross_entropy(model(waves, mask).float(), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            _sync()
            if steps >= 2:
                total += time.perf_counter() - fetch
            steps += 1
            fetch = time.perf_counter()
            if time.perf_counter() - begun > (5 if SMOKE else 40):
                break
        if time.perf_counter() - begun > (5 if SMOKE else 40):
            break
    shutil.rmtree(folder, ignore_errors=True)
    _say(f"loader_wait: {kind}, {workers} DataLoader workers, batch 8 XLS-R fine-tune steps: waiting for data "
         f"{waited / max(total, 1e-9):.1%} of step time ({steps} steps)")
    return 0


def _wave_dataset(paths):
    """The project's WaveRows + wave_collate when koemo imports here, else a stdlib-`wave` reader that does the same
    (decode, crop to CLIP_SECONDS, pad to the batch's longest with a mask)."""
    import numpy as np
    import torch

    try:
        sys.path.insert(0, str(REPO / "src"))
        from koemo.models.wav2vec2_finetune import WaveRows, wave_collate

        def collate(items):
            batch = wave_collate(items)
            return batch["input_values"], batch["attention_mask"], batch["labels"]

        return (WaveRows([str(p) for p in paths], np.arange(len(paths)) % 4, 16000, True, int(CLIP_SECONDS * 16000), 400),
                collate, "koemo WaveRows (decode_clip)")
    except Exception:  # noqa: BLE001 — the project's decoder needs packages this machine may lack
        pass

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(paths)

        def __getitem__(self, i):
            import wave

            with wave.open(str(paths[i])) as clip:
                pcm = np.frombuffer(clip.readframes(clip.getnframes()), dtype="<i2")[: int(CLIP_SECONDS * 16000)]
            x = pcm.astype(np.float32) / 32768
            return (x - x.mean()) / (x.std() + 1e-7), i % 4

    def collate(items):
        width = max(len(x) for x, _ in items)
        waves = torch.zeros(len(items), width)
        mask = torch.zeros(len(items), width, dtype=torch.long)
        for row, (x, _) in enumerate(items):
            waves[row, :len(x)], mask[row, :len(x)] = torch.from_numpy(x), 1
        return waves, mask, torch.tensor([y for _, y in items])

    return Rows(), collate, "stdlib wave reader"


def step_multi_gpu(args) -> int:
    import torch

    count = torch.cuda.device_count()
    if count < 2:
        _say(f"multi_gpu: skipped ({count} GPU: 1 vs N needs N > 1)")
        return 0
    _child("ddp_bert", 35, launcher=[sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1"])
    _child("ddp_bert", 35, launcher=[sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(count)])
    return 0


def step_ddp_bert(args) -> int:
    """One torchrun worker: BERT-base steps under DDP (NCCL), batch BERT_BATCH per GPU; rank 0 reports the total."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("nccl")
    local = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local)
    model = torch.nn.parallel.DistributedDataParallel(_bert_classifier(torch).to(DEVICE), device_ids=[local])
    speed, steps = _train_steps(torch, model, lambda: _token_batch(torch, BERT_BATCH, DEVICE), steps=15, seconds=15)
    total = torch.tensor(speed, device=DEVICE)
    dist.all_reduce(total)
    if dist.get_rank() == 0:
        _say(f"multi_gpu: {dist.get_world_size()} GPU(s), BERT-base step, batch {BERT_BATCH} per GPU: "
             f"{total.item():.0f} samples/s in all")
    dist.destroy_process_group()
    return 0


STEP_FUNCTIONS = {"versions": step_versions, "koemo_check": step_koemo_check, "bert": step_bert,
                  "xlsr_extract": step_xlsr_extract, "xlsr_finetune": step_xlsr_finetune, "parity": step_parity,
                  "loader_wait": step_loader_wait, "multi_gpu": step_multi_gpu, "ddp_bert": step_ddp_bert}

if __name__ == "__main__":
    sys.exit(main())
