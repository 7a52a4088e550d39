"""Samples/s of one training epoch of each base model on synthetic inputs of the real shapes, through the one trainer.

Side by side in one run: fp32 vs mixed precision (bf16/fp16) on a GPU when there is one (CPU figures are
printed regardless), and, for text, length-grouped dynamic padding vs padding every batch to max_length.
Shapes and model sizes come from params.yaml (train_audio, train_multimodal, tiny_encoders, audio.mel).

    python benchmarks/train_step.py [--rows N] [--repeats R]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from koemo.params import load_params  # noqa: E402
from koemo.train.data import ArrayRows, Examples, PadCollate, TokenRows, stack_collate  # noqa: E402
from koemo.train.audio import AudioResNet  # noqa: E402
from koemo.train.multimodal import MultimodalConv1D  # noqa: E402
from koemo.train.text import TextClassifier  # noqa: E402
from koemo.train.trainer import TrainConfig, Trainer, describe_device, seed_everything  # noqa: E402

CLASSES = 4


def epoch_rate(make_model, examples: Examples, config: TrainConfig, repeats: int) -> tuple[float, str]:
    """Best samples/s over `repeats` one-epoch fits (a first, untimed epoch warms kernels and caches up)."""
    trainer = Trainer(config, CLASSES)
    best = 0.0
    for i in range(repeats + 1):
        seed_everything(config.seed, trainer.device)
        result = trainer.fit(make_model(), examples)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if i:
            best = max(best, result.train_samples / result.train_seconds)
    return best, trainer.precision


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=512, help="examples per epoch (audio uses a quarter)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    shared = params["train"]
    text_dim = int(params["tiny_encoders"]["hidden_size"])
    cases = [audio_case(params, max(64, args.rows // 4)), multimodal_case(params, args.rows, text_dim),
             multimodal_case(params, args.rows, 768), text_case(params, args.rows, None),
             text_case(params, args.rows, int(params["encoders"]["tiny-electra"]["max_length"]))]
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


if __name__ == "__main__":
    main()
