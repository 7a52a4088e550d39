"""A torchrun worker for tests/test_gpu_paths.py: fit a tiny random-init encoder of each family named (bert, roberta,
electra) in turn through the project's TextClassifier + Trainer in one 2-process group (gloo), printing one line per
rank and family. Not a test module (no test_ prefix): the test launches it with `python -m torch.distributed.run`.
One launch for all families: each fit builds its own DDP model on the same process group (as one stage does per
fold), so a family that breaks DDP still fails at its own second step."""

import os
import sys

import numpy as np
import torch

from koemo.models.text import TextClassifier
from koemo.train.data import Examples, PadCollate, TokenRows
from koemo.train.trainer import Trainer, TrainConfig


def tiny_encoder(family: str):
    import transformers

    sizes = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                 max_position_embeddings=40, pad_token_id=1)
    config, model = {"bert": ("BertConfig", "BertModel"), "roberta": ("RobertaConfig", "RobertaModel"),
                     "electra": ("ElectraConfig", "ElectraModel")}[family]
    if family == "electra":
        sizes["embedding_size"] = 16
    torch.manual_seed(0)
    return getattr(transformers, model)(getattr(transformers, config)(**sizes))


def main(family: str) -> None:
    rng = np.random.default_rng(0)
    n = 24
    ids = [[0, *rng.integers(5, 50, size=int(rng.integers(3, 12))).tolist(), 2] for _ in range(n)]
    labels = np.arange(n) % 4
    examples = Examples(TokenRows(ids, labels), labels, np.array([f"w{i}" for i in range(n)]), PadCollate(1),
                        lengths=np.array([len(r) for r in ids]))
    trainer = Trainer(TrainConfig(epochs=2, batch_size=8, lr=1e-3, patience=None, progress=False), n_classes=4)
    model = TextClassifier(tiny_encoder(family), 4)
    result = trainer.fit(model, examples)
    probs = trainer.predict(model, examples)
    print(f"rank {os.environ['RANK']}: {family} trained {result.epochs_run} epochs, {result.train_samples} samples, "
          f"probs sum {probs.sum():.3f}", flush=True)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        main(name)
