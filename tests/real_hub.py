"""The real job's hub models as they are published, laid out in an offline HF cache: real commits, real file lists,
real config / tokenizer / preprocessor settings and special-token ids, tiny random weights.

Facts from ../shared/REAL_MODELS.md (the models' public hub pages). What is NOT real: the weights (random, small
hidden size and layer count), the vocabularies' contents (learned from the given texts and padded with `[unusedN]`
entries to the real vocabulary size, the special tokens at their real ids) and the bulk files nobody loads
(optimizer state etc., a few bytes each). No real weights or vocabularies are in the project.

The cache holds, for each model, `refs/main` → its main commit with every file main has (what a plain
`hf download <id>` fetched), and for a model whose safetensors weights exist only in a conversion pull request, that
commit's snapshot holding the files koemo's download hint fetches (`--revision <commit> --include …`), with no ref
(a download by commit hash writes none). A `.bin` / `.pt` / `.pth` is a real pickle of random tensors.

    python tests/real_hub.py OUT_HF_HOME    # build it by hand (then HF_HOME=OUT_HF_HOME HF_HUB_OFFLINE=1 koemo check)
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hf_cache import HFCache  # noqa: E402

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)

# hub id → its commits: {commit: (files in that commit's tree, ref naming it or None)}. Only safetensors-holding
# commits count as usable weights (koemo loads no pickle).
KOBERT, KLUE, KOELECTRA = "skt/kobert-base-v1", "klue/roberta-base", "monologg/koelectra-base-v3-discriminator"
XLSR_KO, W2V_BASE = "kresnik/wav2vec2-large-xlsr-korean", "facebook/wav2vec2-base"
COMMITS: dict[str, dict[str, tuple[tuple[str, ...], str | None]]] = {
    KOBERT: {
        "a9f5849fce18fb088f0cd0f9b29ec3f756958464": (("config.json", "pytorch_model.bin", "spiece.model",
                                                      "tokenizer_config.json", "special_tokens_map.json"), "main"),
        "9973469676e1a7dedb1e47514f1533004463f1e6": (("config.json", "pytorch_model.bin", "model.safetensors",
                                                      "spiece.model", "tokenizer_config.json",
                                                      "special_tokens_map.json"), None),  # the conversion PR
    },
    KLUE: {
        "02f94ba5e3fcb7e2a58a390b8639b0fac974a8da": (("config.json", "pytorch_model.bin", "model.safetensors",
                                                      "tokenizer.json", "tokenizer_config.json",
                                                      "special_tokens_map.json", "vocab.txt"), "main"),
    },
    KOELECTRA: {
        "68b30cd259f34a4b5aa8786392612ba2a2617fcc": (("config.json", "pytorch_model.bin", "tokenizer_config.json",
                                                      "vocab.txt"), "main"),
        "daa650e9859bfa8755a0c05443f34c053345e998": (("config.json", "pytorch_model.bin", "model.safetensors",
                                                      "tokenizer_config.json", "vocab.txt"), None),  # refs/pr/2
    },
    XLSR_KO: {
        "629c9a3501c10ba128bf3fa1eebb12af3be03f61": (("config.json", "preprocessor_config.json", "vocab.json",
                                                      "model.safetensors", "pytorch_model.bin", "optimizer.pt",
                                                      "rng_state.pth", "scaler.pt", "scheduler.pt"), "main"),
    },
    W2V_BASE: {  # its conversion PR (refs/pr/2) has no commit recorded in REAL_MODELS.md: not built here
        "0b5b8e868dd84f03fd87d01f9c4ff0f080fecfe8": (("config.json", "preprocessor_config.json", "pytorch_model.bin"),
                                                     "main"),
    },
}


def usable_commits(hub_id: str) -> set[str]:
    """The commits of `hub_id` whose tree holds safetensors weights."""
    return {commit for commit, (files, _) in COMMITS.get(hub_id, {}).items() if "model.safetensors" in files}


CONFIGS = {
    KOBERT: dict(model_type="bert", architectures=["BertModel"], vocab_size=8002, type_vocab_size=2, pad_token_id=1,
                 max_position_embeddings=512),
    KLUE: dict(model_type="roberta", architectures=["RobertaForMaskedLM"], vocab_size=32000, type_vocab_size=1,
               pad_token_id=1, bos_token_id=0, eos_token_id=2, max_position_embeddings=514, tokenizer_class="BertTokenizer"),
    KOELECTRA: dict(model_type="electra", architectures=["ElectraForPreTraining"], vocab_size=35000, type_vocab_size=2,
                    pad_token_id=0, max_position_embeddings=512, embedding_size=TINY["hidden_size"]),
    XLSR_KO: dict(model_type="wav2vec2", architectures=["Wav2Vec2ForCTC"], vocab_size=1205, pad_token_id=0,
                  feat_extract_norm="layer", do_stable_layer_norm=True, conv_dim=[16] * 7,
                  conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2], gradient_checkpointing=True,
                  num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4),
    W2V_BASE: dict(model_type="wav2vec2", architectures=["Wav2Vec2ForPreTraining"], vocab_size=32,
                   feat_extract_norm="group", do_stable_layer_norm=False, conv_dim=[16] * 7,
                   conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2],
                   num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4),
}
# special tokens → ids, as the real tokenizers number them
SPECIAL_IDS = {
    KOBERT: {"[UNK]": 0, "[PAD]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4},
    KLUE: {"[CLS]": 0, "[PAD]": 1, "[SEP]": 2, "[UNK]": 3, "[MASK]": 4},
    KOELECTRA: {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4},
}
KOBERT_TOKENIZER_CONFIG = {"tokenizer_class": "XLNetTokenizer", "do_lower_case": False, "remove_space": True,
                           "keep_accents": False, "bos_token": "[CLS]", "cls_token": "[CLS]", "eos_token": "[SEP]",
                           "sep_token": "[SEP]", "unk_token": "[UNK]", "pad_token": "[PAD]",
                           "mask_token": {"content": "[MASK]", "lstrip": True, "rstrip": False,
                                          "normalized": True, "single_word": False}}
KOBERT_SPECIAL_MAP = {k: KOBERT_TOKENIZER_CONFIG[k] for k in ("bos_token", "cls_token", "eos_token", "sep_token",
                                                               "unk_token", "pad_token", "mask_token")}
PREPROCESSORS = {
    XLSR_KO: dict(do_normalize=True, sampling_rate=16000, return_attention_mask=True),
    W2V_BASE: dict(do_normalize=True, sampling_rate=16000, return_attention_mask=False),
}
DEFAULT_TEXTS = ("한국어 모델을 공유합니다.", "오늘 정말 기분이 좋아요", "왜 이렇게 화가 나는지 모르겠어",
                 "그냥 평범한 하루였어요", "너무 슬퍼서 눈물이 나요", "내일 다시 이야기해요")


def _wordpiece_vocab(texts: Sequence[str], specials: dict[str, int], size: int) -> list[str]:
    """A cased WordPiece vocabulary learned from `texts`, the specials at their real ids, padded to `size`."""
    from koemo.tiny.text import WORDPIECE_SPECIALS, train_wordpiece_vocab

    learned = [t for t in train_wordpiece_vocab(list(texts), 3000) if t not in WORDPIECE_SPECIALS]
    tokens = [t for t, _ in sorted(specials.items(), key=lambda kv: kv[1])] + learned
    return tokens + [f"[unused{i}]" for i in range(size - len(tokens))]


def _kobert_spiece(texts: Sequence[str], out: Path) -> None:
    """A SentencePiece model with KoBERT's special pieces at their ids ([UNK] 0, [PAD] 1, [CLS] 2, [SEP] 3, [MASK] 4)."""
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(list(texts) * 4), model_writer=model, vocab_size=400,
                                   hard_vocab_limit=False, model_type="unigram", character_coverage=1.0,
                                   unk_id=0, pad_id=1, bos_id=2, eos_id=3, unk_piece="[UNK]", pad_piece="[PAD]",
                                   bos_piece="[CLS]", eos_piece="[SEP]", user_defined_symbols=["[MASK]"],
                                   num_threads=1, minloglevel=2)
    (out / "spiece.model").write_bytes(model.getvalue())


def _save_weights(model, out: Path, rename: dict[str, str] | None = None) -> None:
    """model.safetensors (as save_pretrained writes it, keys renamed where the real checkpoint uses legacy names)."""
    from safetensors.torch import save_file

    state = {}
    for key, tensor in model.state_dict().items():
        for old, new in (rename or {}).items():
            key = key.replace(old, new)
        state[key] = tensor.detach().clone().contiguous()
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})


def _pickle(out: Path, name: str, seed: int) -> None:
    import torch

    torch.save({"weight": torch.randn(4, 4, generator=torch.Generator().manual_seed(seed))}, out / name)


def _build_text(hub_id: str, texts: Sequence[str], out: Path) -> None:
    import torch
    from transformers import AutoConfig, BertModel, BertTokenizer, ElectraForPreTraining, RobertaForMaskedLM

    facts = CONFIGS[hub_id]
    config = AutoConfig.for_model(**{k: v for k, v in facts.items() if k not in ("architectures", "tokenizer_class")},
                                  **TINY)
    config.architectures = facts["architectures"]
    if "tokenizer_class" in facts:
        config.tokenizer_class = facts["tokenizer_class"]
    torch.manual_seed(0)
    model = {KOBERT: BertModel, KLUE: RobertaForMaskedLM, KOELECTRA: ElectraForPreTraining}[hub_id](config)
    config.save_pretrained(out)
    _save_weights(model, out)
    if hub_id == KOBERT:
        _kobert_spiece(texts, out)
        (out / "tokenizer_config.json").write_text(json.dumps(KOBERT_TOKENIZER_CONFIG, indent=2), encoding="utf-8")
        (out / "special_tokens_map.json").write_text(json.dumps(KOBERT_SPECIAL_MAP, indent=2), encoding="utf-8")
        return
    vocab = _wordpiece_vocab(texts, SPECIAL_IDS[hub_id], facts["vocab_size"])
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    if hub_id == KOELECTRA:  # 61 B on the hub: no tokenizer_class, no special tokens map, no tokenizer.json
        (out / "tokenizer_config.json").write_text('{"do_lower_case": false, "model_max_length": 512}',
                                                   encoding="utf-8")
        return
    with tempfile.TemporaryDirectory() as tmp:
        BertTokenizer(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=False, strip_accents=False,
                      model_max_length=512).save_pretrained(tmp)
        shutil.copy(Path(tmp) / "tokenizer.json", out / "tokenizer.json")
    (out / "special_tokens_map.json").write_text(json.dumps({"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                                                             "cls_token": "[CLS]", "mask_token": "[MASK]"}), encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "model_max_length": 512,
                                                           "tokenizer_class": "BertTokenizer"}), encoding="utf-8")


def _build_audio(hub_id: str, out: Path) -> None:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC, Wav2Vec2ForPreTraining

    facts = dict(CONFIGS[hub_id])
    architectures = facts.pop("architectures")
    facts.pop("model_type")
    config = Wav2Vec2Config(**facts, **TINY)
    config.architectures = architectures
    torch.manual_seed(0)
    model = (Wav2Vec2ForCTC if hub_id == XLSR_KO else Wav2Vec2ForPreTraining)(config)
    config.save_pretrained(out)
    # the published checkpoints keep the legacy weight-norm names of the positional convolution
    _save_weights(model, out, {"parametrizations.weight.original0": "weight_g",
                               "parametrizations.weight.original1": "weight_v"})
    Wav2Vec2FeatureExtractor(feature_size=1, padding_value=0.0, **PREPROCESSORS[hub_id]).save_pretrained(out)
    if hub_id == XLSR_KO:
        (out / "vocab.json").write_text(json.dumps({"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}),
                                        encoding="utf-8")


def build_real_cache(cache: HFCache, texts: Sequence[str] = DEFAULT_TEXTS,
                     fetched: dict[str, tuple[str, Sequence[str]]] | None = None) -> None:
    """Install every model of COMMITS into `cache`, each commit with all its files, except `fetched[hub_id] =
    (commit, patterns)`: that commit holds only the files an `hf download --revision commit --include patterns`
    would have fetched (and refs/main still names main)."""
    from fnmatch import fnmatch

    with tempfile.TemporaryDirectory() as tmp:
        for hub_id, commits in COMMITS.items():
            full = Path(tmp) / hub_id.replace("/", "--")
            full.mkdir()
            (_build_audio(hub_id, full) if hub_id in PREPROCESSORS else _build_text(hub_id, texts, full))
            for i, name in enumerate(("pytorch_model.bin", "optimizer.pt", "rng_state.pth", "scaler.pt", "scheduler.pt")):
                _pickle(full, name, i)
            for commit, (files, ref) in commits.items():
                pinned, patterns = (fetched or {}).get(hub_id, (None, ()))
                keep = [f for f in files if commit != pinned or any(fnmatch(f, p) for p in patterns)]
                tree = Path(tmp) / commit
                tree.mkdir()
                for name in keep:
                    shutil.copy(full / name, tree / name)
                cache.install(hub_id, tree, commit=commit, ref=ref)


if __name__ == "__main__":
    from test_text_encoders import TEXTS  # the sentences the tests embed, so their tokens are in the vocabularies

    home = Path(sys.argv[1])
    build_real_cache(HFCache(home), (*DEFAULT_TEXTS, *TEXTS))
    print(f"real-layout HF cache in {home}: HF_HOME={home} HF_HUB_CACHE={home / 'hub'} HF_HUB_OFFLINE=1")
