"""Reader for the AI Hub "감정 분류를 위한 대화 음성 데이터셋" CSV releases (and the demo corpus, same format).

Every CSV row read ends up either in the manifest or in the drop list with a reason; the caller can
assert `kept + dropped == read`, and a release that leaves no row at all is an error. Headers are matched
with whitespace removed because the releases disagree (`4번감정세기` vs `4번 감정세기`); encodings are
detected (cp949, utf-8, utf-8-sig); a file that is not a CSV (empty, an unclosed quote, a row longer than
the header) is an error naming its line, never a half-read file. What it writes (the manifest's columns, the drop
reasons) is the contract in `koemo.corpus.manifest`, shared with the KEMDy reader.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from koemo.core.errors import UserError
from koemo.corpus.csv_rows import BadCSV, CSVRows, NotAnAIHubCSV, decode_bytes, read_csv_rows  # noqa: F401 (also this module's API)
from koemo.corpus.emotions import normalize_emotion
from koemo.corpus.manifest import DROPPED_COLUMNS, N_ANNOTATORS, ReadResult, finish_manifest, has_hangul

# Canonical column → AI Hub header with all whitespace removed.
HEADER_MAP = {
    "wav_id": "wav_id",
    "text": "발화문",
    "situation": "상황",
    **{f"emotion_{i}": f"{i}번감정" for i in range(1, N_ANNOTATORS + 1)},
    **{f"intensity_{i}": f"{i}번감정세기" for i in range(1, N_ANNOTATORS + 1)},
    "age": "나이",
    "gender": "성별",
}
REQUIRED = ["wav_id", "text"] + [f"{kind}_{i}" for i in range(1, N_ANNOTATORS + 1) for kind in ("emotion", "intensity")]
OPTIONAL = ["situation", "age", "gender"]
# The row fields two copies of a wav_id are compared on (canonical name → the header users know).
_COMPARED = {"text": "발화문", "situation": "상황",
             **{f"{kind}_{i}": f"{i}번 감정{'세기' if kind == 'intensity' else ''}"
                for i in range(1, N_ANNOTATORS + 1) for kind in ("emotion", "intensity")}}
# Raw download names (`4차_14606.csv`) → the release names most users rename them to.
_RAW_RELEASE = {"4차": "4차년도", "5차": "5차년도"}


SOURCES = ("demo", "aihub", "kemdy20", "kemdy19")  # data.source: the reader of data.dir (KEMDy: koemo.corpus.kemdy)


class UnknownSource(UserError, ValueError):
    """`data.source` is none of SOURCES."""


class NoAIHubData(UserError, FileNotFoundError):
    """`data.dir` is missing or holds no release CSV."""


class NoUsableRows(UserError, ValueError):
    """Every row of every release CSV was dropped (or there were none): nothing to label."""


def release_name(csv_path: Path) -> str:
    """`5차년도_2차_19374.csv` → `5차년도_2차`; `4차_14606.csv` → `4차년도`."""
    stem = re.sub(r"_\d{3,}$", "", csv_path.stem)
    return _RAW_RELEASE.get(stem, stem)


def read_release_csv(path: Path) -> tuple[pd.DataFrame, str, int]:
    """Read one release CSV into canonical columns (all strings), `source_row` (the row's file line) and
    `fields` (how many fields the row had; a short row's missing fields read as empty). Returns
    (frame, encoding, the header's field count)."""
    parsed = read_csv_rows(path)
    position: dict[str, int] = {}
    for k, col in enumerate(parsed.header):
        position.setdefault(re.sub(r"\s+", "", col), k)
    missing = [HEADER_MAP[c] for c in REQUIRED if HEADER_MAP[c] not in position]
    if missing:
        raise NotAnAIHubCSV(
            f"{path} is not an AI Hub emotion CSV: missing column(s) {missing} (found {parsed.header[:8]}). "
            "Move it out of data.dir, or point data.dir at the directory holding only the release "
            "CSVs (4차년도.csv, 5차년도.csv, 5차년도_2차.csv) and their wavs."
        )
    width = len(parsed.header)
    rows = [fields + [""] * (width - len(fields)) for _, fields in parsed.records]
    out = pd.DataFrame({col: [row[position[HEADER_MAP[col]]].strip() if HEADER_MAP[col] in position else "" for row in rows]
                        for col in REQUIRED + OPTIONAL}, dtype=object)
    out["source_row"] = np.array([line for line, _ in parsed.records], dtype=np.int64)
    out["fields"] = np.array([len(fields) for _, fields in parsed.records], dtype=np.int64)
    return out, parsed.encoding, width


@dataclass
class DirListing:
    """The files below a data directory, from one sorted walk."""

    csvs: list[Path]          # every *.csv, in path order (the order the reader reads them)
    wavs: dict[str, Path]     # wav stem → path, first in walk order wins (the reader's wav index)
    others: list[Path]        # the rest, hidden files left out: what the reader ignores (`koemo check` names it)


def list_data_dir(root: Path) -> DirListing:
    """One walk of `root` (sorted, symlinked folders not followed): the reader's CSVs and wav index, and the rest."""
    csvs, wavs, others = [], {}, []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            suffix = os.path.splitext(name)[1].lower()
            if name.lower().endswith(".wav"):
                wavs.setdefault(name[:-4], path)
            elif suffix == ".csv":
                if path.is_file():
                    csvs.append(path)
            elif not name.startswith("."):
                others.append(path)
    return DirListing(sorted(csvs), wavs, others)


def index_wavs(root: Path) -> dict[str, Path]:
    """Map wav stem → path for every `*.wav` below root (first in sorted order wins)."""
    return list_data_dir(root).wavs


def display_path(path: Path) -> str:
    """Relative to the working directory (the repo root under DVC) when below it, else absolute."""
    path = Path(os.path.abspath(path))
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


def duplicate_detail(row: dict, first: dict) -> str:
    """Where the kept copy of a repeated wav_id is, and whether the two rows agree (which fields differ, how)."""
    def same(key: str) -> bool:  # emotions compared as the labels read them (`Angry` = `angry`)
        if key.startswith(("emotion", "situation")):
            return normalize_emotion(first[key]) == normalize_emotion(row[key])
        return first[key] == row[key]

    differ = [(name, first[key], row[key]) for key, name in _COMPARED.items() if not same(key)]
    where = f"also {first['source_file']} line {first['source_row']} (kept)"
    if not differ:
        return f"{where}; the rows agree"
    shown = "; ".join(f"{name} {a!r} vs {b!r}" for name, a, b in differ[:4])
    more = f" (+{len(differ) - 4} more)" if len(differ) > 4 else ""
    return f"{where}; the rows disagree: {shown}{more} (kept vs this row): check which copy is right"


def _row_problem(row: dict, header_fields: int) -> tuple[str, str] | None:
    if row["fields"] < header_fields:  # cut short: its last columns would read as empty, a misleading reason
        return "too_few_fields", f"{row['fields']} fields, the header has {header_fields}"
    if not row["wav_id"]:
        return "empty_wav_id", ""
    if not row["text"]:
        return "empty_text", ""
    if not has_hangul(row["text"]):
        return "no_hangul", f"발화문={row['text'][:40]!r}: no Korean letter for a Korean text model to read"
    for i in range(1, N_ANNOTATORS + 1):
        if normalize_emotion(row[f"emotion_{i}"]) is None:
            return "unknown_emotion", f"{i}번 감정={row[f'emotion_{i}']!r}"
        value = row[f"intensity_{i}"]
        try:
            number = float(value)
        except ValueError:
            return "bad_intensity", f"{i}번 감정세기={value!r}"
        if not number.is_integer() or not 0 <= number <= 2:
            return "bad_intensity", f"{i}번 감정세기={value!r} (expected 0, 1 or 2)"
    return None


def read_wav_header(wav: Path):
    """(soundfile's header, None) of a row's wav, or (None, the `unreadable_wav` problem naming it)."""
    try:
        return sf.info(str(wav)), None
    except Exception as err:  # soundfile raises several types for broken headers
        return None, ("unreadable_wav", f"{display_path(wav)}: {err}")


def read_aihub_dir(root: str | os.PathLike) -> ReadResult:
    """Read every release CSV below `root`, validate rows, locate wavs; nothing is lost silently."""
    root = Path(root)
    if not root.is_dir():
        raise NoAIHubData(
            f"data.dir {root} does not exist. Put the AI Hub release CSVs and unzipped wav folders there, "
            "or point data.dir at your copy: `koemo profile aihub-gpu --dir /path/to/your/copy` (or aihub-cpu; "
            "`koemo profile demo` for the demo corpus)."
        )
    listing = list_data_dir(root)
    csvs = listing.csvs
    if not csvs:
        xlsx = sorted(root.rglob("*.xlsx"))
        hint = f" Found {len(xlsx)} .xlsx file(s): save them as CSV first." if xlsx else ""
        raise NoAIHubData(f"No release CSV found below {root}.{hint} Expected e.g. 5차년도_2차.csv with its wavs.")
    wavs = listing.wavs

    kept_rows, drops, files = [], [], []
    seen_ids: dict[str, dict] = {}  # wav_id → its kept row (with source_file), for a later duplicate's detail
    for csv_path in csvs:
        frame, encoding, header_fields = read_release_csv(csv_path)
        source = display_path(csv_path)
        release = release_name(csv_path)
        kept_here = 0
        for row in frame.to_dict("records"):
            problem = _row_problem(row, header_fields)
            wav = None
            if problem is None and row["wav_id"] in seen_ids:
                problem = ("duplicate_wav_id", duplicate_detail(row, seen_ids[row["wav_id"]]))
            if problem is None:
                wav = wavs.get(row["wav_id"])
                if wav is None:
                    problem = ("missing_wav", f"{row['wav_id']}.wav not found below {root}")
            if problem is None:
                info, problem = read_wav_header(wav)
            if problem is not None:
                drops.append({"source_file": source, "source_row": row["source_row"], "wav_id": row["wav_id"],
                              "reason": problem[0], "detail": problem[1]})
                continue
            seen_ids[row["wav_id"]] = {**row, "source_file": source}
            kept_here += 1
            kept_rows.append({**row, "release": release, "source_file": source, "wav_path": display_path(wav),
                              "sample_rate": int(info.samplerate), "duration_s": float(info.duration)})
        files.append({"file": source, "release": release, "encoding": encoding, "rows": len(frame), "kept": kept_here})

    manifest = finish_manifest(pd.DataFrame(kept_rows))
    dropped = pd.DataFrame(drops, columns=DROPPED_COLUMNS)
    result = ReadResult(manifest, dropped, files)
    assert len(manifest) + len(dropped) == result.rows_read, "every row read must be kept or dropped"
    if manifest.empty:  # a header-only or wholly broken release would otherwise fail later, in labels, misleadingly
        raise NoUsableRows(_nothing_kept(root, result))
    return result


def _nothing_kept(root: Path, result: ReadResult) -> str:
    """Which files were read and why each row went: the first example of every drop reason."""
    read = ", ".join(f"{f['file']} ({f['rows']} row{'' if f['rows'] == 1 else 's'})" for f in result.files)
    if result.dropped.empty:
        return (f"no usable rows below {root}: the CSVs read, {read}, have a header but no data rows. Re-export the "
                "release CSVs with their rows (or point data.dir at the complete copy) and rerun.")
    counts = ", ".join(f"{reason} {n}" for reason, n in result.dropped["reason"].value_counts().items())
    examples = "; ".join(f"{r.source_file} line {r.source_row}: {r.reason} {r.detail}".rstrip()
                         for r in result.dropped.groupby("reason", sort=False).head(1).itertuples())
    return (f"no usable rows below {root}: all {len(result.dropped)} row(s) of {read} were dropped ({counts}), "
            f"e.g. {examples}. Fix those rows (missing_wav: put <wav_id>.wav below {root}) and rerun.")
