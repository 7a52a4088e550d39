"""Samples/s of one training epoch of each base model on synthetic inputs of the real shapes, through the one trainer.

Side by side in one run: fp32 vs mixed precision (bf16/fp16) on a GPU when there is one (CPU figures are
printed regardless), and, for text, length-grouped dynamic padding vs padding every batch to max_length.
Shapes and model sizes come from params.yaml (train_audio, train_multimodal, tiny_encoders, audio.mel).

Then the thread budget (`runtime.threads` / `runtime.jobs`, applied by every stage): ms per tiny-ELECTRA training
step in one process alone and in two processes at once, each with torch's default (all cores) vs the budget
`auto` gives two stages sharing the machine (cores ÷ 2).

    python benchmarks/train_step.py [--rows N] [--repeats R] [--skip-models]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from koemo.core.params import load_params  # noqa: E402
from koemo.models.audio import AudioResNet  # noqa: E402
from koemo.models.multimodal import MultimodalConv1D  # noqa: E402
from koemo.models.text import TextClassifier  # noqa: E402
from koemo.train.data import ArrayRows, Examples, PadCollate, TokenRows, stack_collate  # noqa: E402
from koemo.train.trainer import TrainConfig, Trainer, describe_device, seed_everything  # noqa: E402

CLASSES = 4


def best_epoch_rate(trainer: Trainer, make_model, examples: Examples, repeats: int) -> float:
    """Best samples/s over `repeats` one-epoch fits (a first, untimed epoch warms kernels and caches up)."""
    best = 0.0
    for i in range(repeats + 1):
        seed_everything(trainer.config.seed, trainer.device)
        result = trainer.fit(make_model(), examples)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if i:
            best = max(best, result.train_samples / result.train_seconds)
    return best


def epoch_rate(make_model, examples: Examples, config: TrainConfig, repeats: int) -> tuple[float, str]:
    """Best samples/s over `repeats` one-epoch fits, and the precision they ran in."""
    trainer = Trainer(config, CLASSES)
    return best_epoch_rate(trainer, make_model, examples, repeats), trainer.precision


def audio_case(params, rows: int):
    spec, mel = params["train_audio"], params["audio"]["mel"]
    shape = (int(mel["n_mels"]), int(mel["max_frames"]))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, *shape)).astype(np.float32)
    y = rng.integers(0, CLASSES, rows)
    examples = Examples(ArrayRows(x, y), y, np.arange(rows).astype(str), stack_collate)
    return f"audio ResNet {list(shape)}", lambda: AudioResNet.from_params(CLASSES, spec), examples, spec


def multimodal_case(params, rows: int, text_dim: int):
    spec = params["train_multimodal"]
    dim = text_dim + int(params["audio"]["melmean"]["n_mels"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, dim)).astype(np.float32)
    y = rng.integers(0, CLASSES, rows)
    examples = Examples(ArrayRows(x, y), y, np.arange(rows).astype(str), stack_collate)
    return f"multimodal Conv1D [{dim}]", lambda: MultimodalConv1D.from_params(dim, CLASSES, spec), examples, spec


def text_case(params, rows: int, pad_to: int | None):
    """The tiny ELECTRA shape from params (tiny_encoders); token lengths like the demo's short sentences."""
    from transformers import ElectraConfig, ElectraModel

    tiny, spec = params["tiny_encoders"], params["train_text"]
    max_length = int(params["encoders"]["tiny-electra"]["max_length"])
    hidden = int(tiny["hidden_size"])
    config = ElectraConfig(vocab_size=int(tiny["vocab_size"]), embedding_size=hidden, hidden_size=hidden,
                           num_hidden_layers=int(tiny["layers"]), num_attention_heads=int(tiny["heads"]),
                           intermediate_size=4 * hidden, max_position_embeddings=512, pad_token_id=0)
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.gamma(4.0, 4.0, rows).astype(int) + 4, 4, max_length)
    ids = [[2, *rng.integers(5, int(tiny["vocab_size"]), n - 2).tolist(), 3] for n in lengths]
    if pad_to:
        ids = [row + [0] * (pad_to - len(row)) for row in ids]  # what a fixed-length tokenizer call would give
    y = rng.integers(0, CLASSES, rows)
    examples = Examples(TokenRows(ids, y), y, np.arange(rows).astype(str), PadCollate(0),
                        lengths=None if pad_to else lengths)
    model = lambda: TextClassifier(ElectraModel(config), CLASSES, pooling="mean")  # noqa: E731
    label = "text tiny-ELECTRA " + (f"padded to {pad_to}" if pad_to else "dynamic padding, length-grouped")
    return label, model, examples, spec


def base_text_case(rows: int, max_length: int = 64):
    """A base-size random-init BERT (12 layers × 768, 110M parameters, KLUE-RoBERTa/KoELECTRA-base's shape) on
    token lengths like the AI Hub sentences (median ~20 tokens, up to max_length): what train_text costs for real."""
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=32000, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, max_position_embeddings=512, pad_token_id=0)
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.gamma(4.0, 5.0, rows).astype(int) + 4, 4, max_length)
    ids = [[2, *rng.integers(5, 32000, n - 2).tolist(), 3] for n in lengths]
    y = rng.integers(0, CLASSES, rows)
    examples = Examples(TokenRows(ids, y), y, np.arange(rows).astype(str), PadCollate(0), lengths=lengths)
    spec = {"epochs": 1, "batch_size": 32, "lr": 2e-5, "weight_decay": 0.01, "schedule": "linear", "warmup_ratio": 0.1}
    return "text base-size BERT (random init), length-grouped", lambda: TextClassifier(BertModel(config), CLASSES), examples, spec


def step_worker(threads: int, steps: int) -> None:
    """Print the median ms of `steps` tiny-ELECTRA forward+backward steps with `threads` torch threads."""
    torch.set_num_threads(threads)
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    _, make_model, examples, spec = text_case(params, 256, None)
    from koemo.train.data import make_loader

    model = make_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = list(make_loader(examples, int(spec["batch_size"]), shuffle=True))
    times = []
    for i in range(steps):
        batch = dict(batches[i % len(batches)])
        labels = batch.pop("labels")
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(**batch), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    print(1000 * float(np.median(times[3:])))


def thread_budget_report(steps: int) -> None:
    """Two stages at once on this machine: each with all cores (torch's default) vs the `auto` budget."""
    import os
    import subprocess

    cores = len(os.sched_getaffinity(0))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}

    def run(threads: int, at_once: int) -> list[float]:
        procs = [subprocess.Popen([sys.executable, __file__, "--step-worker", str(threads), "--steps", str(steps)],
                                  stdout=subprocess.PIPE, text=True, env=env) for _ in range(at_once)]
        return [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]

    budget = max(1, cores // 2)
    alone_all, alone_budget = run(cores, 1)[0], run(budget, 1)[0]
    both_all, both_budget = max(run(cores, 2)), max(run(budget, 2))
    print(f"thread budget ({cores} cores; tiny-ELECTRA training step, median ms, slower of the two when two run):")
    print(f"  one stage alone    : {cores} threads {alone_all:8.1f} ms   {budget} thread(s) {alone_budget:8.1f} ms")
    print(f"  two stages at once : {cores} threads {both_all:8.1f} ms   {budget} thread(s) {both_budget:8.1f} ms"
          f"  → the budget is {both_all / both_budget:.1f}× faster per step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=512, help="examples per epoch (audio uses a quarter)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40, help="training steps per thread-budget measurement")
    parser.add_argument("--skip-models", action="store_true", help="only the thread-budget comparison")
    parser.add_argument("--base-bert", action="store_true", help="also a base-size BERT on the CPU (slow)")
    parser.add_argument("--step-worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step_worker:
        return step_worker(args.step_worker, args.steps)
    if args.skip_models:
        return thread_budget_report(args.steps)
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    shared = params["train"]
    text_dim = int(params["tiny_encoders"]["hidden_size"])
    cases = [audio_case(params, max(64, args.rows // 4)), multimodal_case(params, args.rows, text_dim),
             multimodal_case(params, args.rows, 768), text_case(params, args.rows, None),
             text_case(params, args.rows, int(params["encoders"]["tiny-electra"]["max_length"]))]
    if torch.cuda.is_available() or args.base_bert:  # a base-size encoder: minutes per epoch on a CPU
        cases.append(base_text_case(args.rows * 4 if torch.cuda.is_available() else 64))
    precisions = ["fp32", "auto"] if torch.cuda.is_available() else ["fp32"]
    device = describe_device(Trainer(TrainConfig(epochs=1, batch_size=1, lr=1e-3, progress=False), CLASSES).device)
    print(f"device: {device}; torch {torch.__version__}; {torch.get_num_threads()} CPU threads; "
          f"best of {args.repeats} one-epoch fits after a warm-up epoch")
    rates: dict[tuple[str, str], float] = {}
    for label, model, examples, spec in cases:
        for precision in precisions:
            config = TrainConfig.from_params(shared, spec, epochs=1, precision=precision, patience=None, progress=False)
            start = time.perf_counter()
            rate, used = epoch_rate(model, examples, config, args.repeats)
            rates[(label, precision)] = rate
            print(f"  {label:<52} {used:>5}: {rate:9.1f} samples/s  (batch {config.batch_size}, {len(examples)} rows, "
                  f"{time.perf_counter() - start:.1f} s)")
    print("ratios:")
    if torch.cuda.is_available():
        for label, *_ in cases:
            print(f"  {label:<52} mixed precision / fp32: {rates[(label, 'auto')] / rates[(label, 'fp32')]:.2f}x")
    for precision in precisions:
        dynamic = rates[(cases[3][0], precision)]
        padded = rates[(cases[4][0], precision)]
        print(f"  text dynamic padding + length grouping / pad to max_length ({precision}): {dynamic / padded:.2f}x")
    thread_budget_report(args.steps)


if __name__ == "__main__":
    main()
