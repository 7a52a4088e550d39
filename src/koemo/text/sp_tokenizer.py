"""KoBERT's tokenizer without its git-installed package: SentencePiece pieces in BERT-style [CLS] … [SEP] inputs.

`skt/kobert-base-v1` ships a SentencePiece `spiece.model` whose piece ids are the model's vocabulary; the
public `kobert_tokenizer` is an XLNetTokenizer subclass that only changes the special-token layout and
right-pads. This reproduces its text preprocessing and id layout with the `sentencepiece` library directly,
so no remote code, protobuf converter or unpinned package is needed.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Sequence

import sentencepiece as spm

SPECIALS = {"unk": "[UNK]", "pad": "[PAD]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}


class SentencePieceBertTokenizer:
    """`encode(texts)` → id lists `[CLS] pieces… [SEP]`, truncated to `max_length`."""

    def __init__(self, model_file: str | Path, max_length: int, do_lower_case: bool = False,
                 remove_space: bool = True, keep_accents: bool = False):
        self.sp = spm.SentencePieceProcessor(model_file=str(model_file))
        self.max_length = max_length
        self.do_lower_case = do_lower_case
        self.remove_space = remove_space
        self.keep_accents = keep_accents
        unk = self.sp.piece_to_id(SPECIALS["unk"])
        self.ids = {}
        for role, piece in SPECIALS.items():
            pid = self.sp.piece_to_id(piece)
            if role != "unk" and pid == unk:
                raise ValueError(f"{model_file}: SentencePiece model has no {piece} piece; not a KoBERT-style vocabulary")
            self.ids[role] = pid
        self.pad_token_id = self.ids["pad"]
        self.cls_token_id = self.ids["cls"]
        self.sep_token_id = self.ids["sep"]
        self.unk_token_id = self.ids["unk"]

    @classmethod
    def from_directory(cls, directory: str | Path, max_length: int) -> "SentencePieceBertTokenizer":
        """Read `spiece.model` and the flags KoBERT's `tokenizer_config.json` sets (defaults are KoBERT's)."""
        directory = Path(directory)
        model_file = directory / "spiece.model"
        if not model_file.is_file():
            raise FileNotFoundError(f"{directory}: no spiece.model (tokenizer kind 'sentencepiece' needs one)")
        config = {}
        if (directory / "tokenizer_config.json").is_file():
            config = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
        return cls(model_file, max_length,
                   do_lower_case=bool(config.get("do_lower_case", False)),
                   remove_space=bool(config.get("remove_space", True)),
                   keep_accents=bool(config.get("keep_accents", False)))

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def preprocess(self, text: str) -> str:
        """XLNetTokenizer's preprocessing; NFKD splits Hangul into jamo that the model's NFKC rule recomposes."""
        out = " ".join(text.strip().split()) if self.remove_space else text
        out = out.replace("``", '"').replace("''", '"')
        if not self.keep_accents:
            out = "".join(c for c in unicodedata.normalize("NFKD", out) if not unicodedata.combining(c))
        return out.lower() if self.do_lower_case else out

    def tokenize(self, text: str) -> list[str]:
        """Pieces, with XLNet's split of a trailing comma off a number ("1,") kept for id parity."""
        pieces = self.sp.encode(self.preprocess(text), out_type=str)
        result: list[str] = []
        for piece in pieces:
            if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
                parts = self.sp.encode(piece[:-1].replace("\u2581", ""), out_type=str)
                if piece[0] != "\u2581" and parts and parts[0].startswith("\u2581"):
                    parts = parts[1:] if len(parts[0]) == 1 else [parts[0][1:], *parts[1:]]
                result.extend([*parts, piece[-1]])
            else:
                result.append(piece)
        return result

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        body = self.max_length - 2
        out = []
        for text in texts:
            ids = [self.sp.piece_to_id(p) for p in self.tokenize(text)][:body]
            out.append([self.cls_token_id, *ids, self.sep_token_id])
        return out
