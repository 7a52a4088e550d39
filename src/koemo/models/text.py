"""The text model: a registry encoder (KoELECTRA, KLUE-RoBERTa, a tiny stand-in, …) + pooling + linear head, fine-tuned
per fold; its fold builder tokenises once and reloads the encoder from its registry entry for every fold, so no fold
starts from another's weights.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from koemo.asr.text_source import TEXTS_ARG, apply_texts
from koemo.text.embed import pool
from koemo.train.cv import FoldJob, FoldPlan
from koemo.train.data import Examples, PadCollate, TokenRows
from koemo.train.stage import Built

NAME = "text"          # stage train_text, data/models/text, metrics/train_text.json
ARGS = (TEXTS_ARG,)    # the stage's input paths besides --labels: (flag, help[, required])
DISTRIBUTED = True     # runtime.processes applies
NEEDS = ("text",)      # what an utterance must carry for `koemo predict` to run this model


def used_keys(params: Mapping[str, Any]) -> list[str]:
    """Dotted params keys the model reads (recorded in config.json, declared in dvc.yaml)."""
    return ["labels.classes", "train", "train_text", "text.source", "text.model", f"encoders.{params['text']['model']}"]


def inputs(args, params: Mapping[str, Any], labels: pd.DataFrame, classes: list[str]) -> Built:
    """Token ids of text.source's text; a fresh `encoders.<text.model>` per fold."""
    from koemo.text.registry import load_encoder

    name = params["text"]["model"]
    encoder_params = params["encoders"][name]
    labels = apply_texts(labels, args.texts)
    checkpointing = bool(params["train_text"].get("gradient_checkpointing", False))
    build = TextInputs(labels, lambda: load_encoder(name, encoder_params, gradient_checkpointing=checkpointing),
                       len(classes), params["train_text"])
    return Built(build, {"text_model": name, "encoder": dict(encoder_params), "encoder_source": build.source},
                 labels=labels)


class TextClassifier(nn.Module):
    """Encoder → pooled sentence vector (the registry's `cls` or `mean` pooling) → dropout → linear."""

    def __init__(self, encoder: nn.Module, n_classes: int, pooling: str = "cls", dropout: float = 0.1):
        super().__init__()
        if getattr(encoder, "pooler", None) is not None:
            # BERT / RoBERTa's pooler (dense + tanh over [CLS]) is never used here: its weights would get no gradient,
            # and DDP (several processes, no find_unused_parameters) fails at the second step on such parameters
            encoder.pooler = None
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(int(encoder.config.hidden_size), n_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(self.dropout(pool(hidden, attention_mask, self.pooling)))


class TextInputs:
    """Fine-tuning folds: token ids computed once; a fresh encoder (registry weights) + new head per fold."""

    def __init__(self, labels: pd.DataFrame, load_encoder: Callable[[], Any], n_classes: int, model_params: Mapping[str, Any]):
        self.load_encoder = load_encoder
        encoder = load_encoder()
        self.ids = encoder.encode(labels["text"].astype(str).tolist())
        self.pad_id, self.pooling = encoder.pad_id, encoder.pooling
        self.lengths = np.array([len(row) for row in self.ids], dtype=np.int64)
        self.wav_ids = labels["wav_id"].astype(str).to_numpy()
        self.y = labels["label_id"].to_numpy(dtype=np.int64)
        self.n_classes, self.params = n_classes, dict(model_params)
        self.source = encoder.source

    def examples(self, rows: np.ndarray) -> Examples:
        return Examples(TokenRows([self.ids[r] for r in rows], self.y[rows]), self.y[rows], self.wav_ids[rows],
                        PadCollate(self.pad_id), lengths=self.lengths[rows])

    def model(self) -> TextClassifier:
        encoder = self.load_encoder()
        return TextClassifier(encoder.model, self.n_classes, pooling=encoder.pooling, dropout=float(self.params["dropout"]))

    def __call__(self, plan: FoldPlan) -> FoldJob:
        return FoldJob(self.model(), self.examples(plan.fit), self.examples(plan.valid), self.examples(plan.holdout),
                       self.examples(plan.test),
                       files={"fold.json": {"fit_rows": len(plan.fit), "valid_rows": len(plan.valid),
                                            "holdout_rows": len(plan.holdout)}})
