"""A tiny random-init Whisper ("tiny-whisper", source "local-tiny") with a tokenizer trained on the training split.

It stands in for openai/whisper-* where no weights can be downloaded (the demo, the tests): the same
`transformers` classes (WhisperForConditionalGeneration, WhisperTokenizer, WhisperFeatureExtractor) and the
same loading and `generate(language="ko", task="transcribe")` path as the real checkpoints, but random weights,
so its transcripts are noise (CER about 1 or above). Whisper's special tokens (<|startoftranscript|>, <|ko|>,
<|transcribe|>, <|notimestamps|>, …) sit after a byte-level BPE vocabulary learned from the corpus' training
text; tokens that are not whole characters of that text are suppressed at generation, so the noise is Hangul the
text encoders can read, not replacement characters. Same texts + params → byte-identical files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from koemo.tiny.save import save_tiny
from koemo.tiny.text import train_byte_bpe

NAME = "tiny-whisper"
EOT = "<|endoftext|>"
SOT = "<|startoftranscript|>"
# what the real multilingual checkpoints' generation configs name, here only Korean (and English, for translate)
LANGUAGES = ("<|en|>", "<|ko|>")
TASKS = {"translate": "<|translate|>", "transcribe": "<|transcribe|>"}
OTHER_SPECIALS = ("<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>")
SAMPLE_RATE = 16000
HOP = 160
N_FFT = 400


def _tokenizer(texts: Sequence[str], vocab_size: int):
    from transformers import WhisperTokenizer

    vocab, merges = train_byte_bpe(texts, vocab_size, specials=[EOT])
    tokenizer = WhisperTokenizer(vocab=vocab, merges=merges, add_prefix_space=False)
    tokenizer.add_special_tokens({"additional_special_tokens": [SOT, *LANGUAGES, *TASKS.values(), *OTHER_SPECIALS]})
    return tokenizer


def unreadable_ids(tokenizer, texts: Sequence[str]) -> list[int]:
    """Ids of the byte-level tokens that are not whole characters of the training text (a Hangul syllable is 3
    bytes; a lone byte decodes to U+FFFD, a control byte to nothing): suppressed, so the noise stays text."""
    known = set("".join(texts))
    specials = set(tokenizer.all_special_ids)
    ids = []
    for token, i in tokenizer.get_vocab().items():
        piece = tokenizer.convert_tokens_to_string([token])
        if i not in specials and (not piece.strip() or not set(piece) <= known):
            ids.append(int(i))
    return sorted(ids)


def build_tiny_whisper(texts: Sequence[str], params: Mapping[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Write the tiny Whisper (model, tokenizer, feature extractor, generation config, marker) into `out_dir`."""
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    texts = sorted(set(texts))
    if not texts:
        raise ValueError(f"{NAME}: no training-split text to train a tokenizer on")
    tokenizer = _tokenizer(texts, int(params["vocab_size"]))
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in (EOT, SOT, *LANGUAGES, *TASKS.values(), *OTHER_SPECIALS)}
    chunk = int(params["chunk_seconds"])
    frames = chunk * SAMPLE_RATE // HOP                    # mel frames per window; the encoder's convs halve them
    d_model, layers, heads = int(params["d_model"]), int(params["layers"]), int(params["heads"])
    config = WhisperConfig(vocab_size=len(tokenizer), num_mel_bins=int(params["n_mels"]), d_model=d_model,
                           encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=heads,
                           decoder_attention_heads=heads, encoder_ffn_dim=4 * d_model, decoder_ffn_dim=4 * d_model,
                           max_source_positions=frames // 2, max_target_positions=128, pad_token_id=ids[EOT],
                           bos_token_id=ids[EOT], eos_token_id=ids[EOT], decoder_start_token_id=ids[SOT])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(params["seed"]))
        model = WhisperForConditionalGeneration(config)
    suppressed = sorted(set(unreadable_ids(tokenizer, texts)) | {ids[t] for t in (*OTHER_SPECIALS[:3], SOT, *LANGUAGES,
                                                                                   *TASKS.values())})
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids[SOT], bos_token_id=ids[EOT], eos_token_id=ids[EOT], pad_token_id=ids[EOT],
        max_length=config.max_target_positions, is_multilingual=True, no_timestamps_token_id=ids["<|notimestamps|>"],
        lang_to_id={t: ids[t] for t in LANGUAGES}, task_to_id={task: ids[t] for task, t in TASKS.items()},
        suppress_tokens=suppressed, begin_suppress_tokens=[ids[EOT]])
    features = WhisperFeatureExtractor(feature_size=int(params["n_mels"]), sampling_rate=SAMPLE_RATE, hop_length=HOP,
                                       chunk_length=chunk, n_fft=N_FFT)
    description = (f"random-init {type(model).__name__} with a byte-level BPE tokenizer trained on the corpus "
                   "training split; not a pretrained model: its transcripts are noise (CER about 1)")
    shape = {"vocab_size": len(tokenizer), "d_model": d_model, "layers": layers, "heads": heads,
             "n_mels": int(params["n_mels"]), "chunk_seconds": chunk, "suppressed_tokens": len(suppressed)}
    return save_tiny(out_dir, model, tokenizer, features, description=description, shape=shape, seed=params["seed"],
                     train_texts=len(texts))
