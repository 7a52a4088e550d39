"""Build small directories laid out like the real AI Hub releases (for reader and pipeline tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

HEADERS = ["wav_id", "발화문", "상황", "1번 감정", "1번 감정세기", "2번 감정", "2번 감정세기", "3번 감정", "3번 감정세기",
           "4번 감정", "4번 감정세기", "5번 감정", "5번 감정세기", "나이", "성별"]


def make_row(wav_id: str, text: str, annotations, situation="angry", age="30", gender="남성") -> list[str]:
    cells = [wav_id, text, situation]
    for emotion, intensity in annotations:
        cells += [emotion, str(intensity)]
    return cells + [age, gender]


def write_release(path: Path, rows: list[list[str]], encoding: str = "cp949", squeeze_4th: bool = False) -> Path:
    headers = list(HEADERS)
    if squeeze_4th:
        headers[10] = "4번감정세기"
    lines = [",".join(headers)] + [",".join(r) for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def write_wav(path: Path, seconds: float = 0.5, sample_rate: int = 48_000, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    audio = 0.3 * np.sin(2 * np.pi * (180 + 40 * seed % 200) * t) + 0.01 * rng.standard_normal(len(t))
    sf.write(path, audio.astype(np.float32), sample_rate, subtype="PCM_16")
    return path


def hex_id(i: int) -> str:
    return f"{i:024x}"
