"""Sentence-embedding speed: koemo's sorted, dynamically padded, inference-mode (autocast on GPU) path vs. a
naive fp32 loop that tokenises and pads every batch to max_length in input order.

Both run side by side in this one process on the same random-init models (no downloads): the tiny BERT the
demo uses and a BERT-base-sized config (hidden 768, 12 layers). Prints sentences/s, the ratio (target ≥ 3×
on GPU) and the largest difference between the two paths' vectors.

    python benchmarks/text_embeddings.py [--device auto|cpu|cuda] [--sentences N] [--base-sentences N]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, BertModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from koemo.text.embed import embed_texts, pool, resolve_device  # noqa: E402
from koemo.text.registry import load_encoder  # noqa: E402
from koemo.tiny.text import build_tiny_encoder  # noqa: E402

CLAUSES = ["오늘 회사에서 부장님이 또 소리를 질렀어", "친구랑 맛있는 저녁을 먹어서 기분이 좋아", "그냥 집에서 쉬었어요",
           "시험에 떨어져서 너무 속상해", "버스를 놓쳐서 정말 짜증 났어", "동생이 선물을 줘서 행복했어요",
           "날씨가 흐려서 좀 우울하네", "내일은 주말이라 신난다", "왜 맨날 나한테만 그러는지 모르겠어",
           "엄마가 보고 싶어서 눈물이 났어", "별일 없이 평범한 하루였어", "드디어 합격 소식을 들었어요"]


def corpus(n: int, seed: int = 0) -> list[str]:
    """Utterance-like Korean text: one to four clauses, so lengths spread well below max_length as in AI Hub."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(CLAUSES) for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4]))) + rng.choice([".", "!", "?", ""])
            for _ in range(n)]


def naive(encoder, texts: list[str], batch_size: int, device) -> np.ndarray:
    """The baseline: input order, every batch padded to max_length, fp32, no autocast."""
    model = encoder.model.to(device).eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = encoder.tokenizer(texts[start:start + batch_size], padding="max_length", truncation=True,
                                      max_length=encoder.max_length, return_tensors="pt")
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            out.append(pool(hidden, mask, encoder.pooling).cpu().numpy())
    return np.concatenate(out)


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def compare(label: str, encoder, texts: list[str], batch_size: int, device) -> float:
    naive(encoder, texts[:batch_size], batch_size, device)  # warm-up both paths
    embed_texts(encoder, texts[:batch_size], batch_size, device=device, progress=False)
    base, base_s = timed(lambda: naive(encoder, texts, batch_size, device), device)
    fast, fast_s = timed(lambda: embed_texts(encoder, texts, batch_size, device=device, progress=False), device)
    ratio = base_s / fast_s
    print(f"{label}\n  {len(texts)} sentences, batch {batch_size}, max_length {encoder.max_length}, "
          f"mean {np.mean([len(r) for r in encoder.encode(texts)]):.1f} tokens, {encoder.pooling} pooling, device {device}"
          f"{'' if device.type == 'cuda' else f' ({torch.get_num_threads()} threads)'}\n"
          f"  naive fp32 max_length loop: {len(texts) / base_s:9.1f} sentences/s\n"
          f"  koemo sorted dynamic batch: {len(texts) / fast_s:9.1f} sentences/s\n"
          f"  ratio {ratio:.2f}x   (max |difference| {np.abs(base - fast).max():.2e})", flush=True)
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sentences", type=int, default=4000, help="for the tiny model")
    parser.add_argument("--base-sentences", type=int, default=256, help="for the base-size model (0 skips it)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=64)
    args = parser.parse_args()
    device = resolve_device(args.device)
    texts = corpus(args.sentences)
    tiny = {"seed": 0, "vocab_size": 2000, "hidden_size": 64, "layers": 2, "heads": 2}
    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_encoder("tiny-bert", corpus(2000, seed=1), tiny, Path(tmp) / "tiny-bert")
        spec = {"path": str(Path(tmp) / "tiny-bert"), "pooling": "mean", "max_length": args.max_length}
        encoder = load_encoder("tiny-bert", spec)
        compare("tiny-bert (local-tiny: random-init BertModel, hidden 64, 2 layers)", encoder, texts, args.batch_size, device)
        if args.base_sentences:
            torch.manual_seed(0)
            config = BertConfig(vocab_size=encoder.model.config.vocab_size, pad_token_id=encoder.pad_id)  # BERT-base shape
            base = dataclasses.replace(encoder, name="base-size", model=BertModel(config).eval())
            millions = sum(p.numel() for p in base.model.parameters()) / 1e6
            compare(f"base-size random-init BertModel (hidden 768, 12 layers, {millions:.0f}M parameters, "
                    f"tiny-bert's tokenizer; not a pretrained model)", base, texts[:args.base_sentences],
                    args.batch_size, device)


if __name__ == "__main__":
    main()
