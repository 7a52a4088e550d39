"""Reader for the ETRI KEMDy20 / KEMDy19 multimodal emotion corpora (`data.source: kemdy20 | kemdy19`), obtained by
the user under ETRI's licence; written into the same manifest the AI Hub reader writes, so the labels and every
later stage take it unchanged.

Layout relied on (KEMDy20, from its public description and public loaders; see docs/real-data.md for what could not be
verified):

    annotation/SessNN_eval.csv   two header rows: row 1 `Numb, Wav, , Segment ID, Total Evaluation, , , Eval01F, …`,
                                 row 2 `, start, end, , Emotion, Valence, Arousal, Emotion, …`; one row per segment
    wav/SessionNN/<Segment ID>.wav  with <Segment ID>.txt (the transcript) beside it
    EDA/, IBI/, TEMP/            biosignals: ignored

The label is the `Total Evaluation` emotion. A tie is stored as `a;b`: such a row is dropped and counted
(`tied_total_evaluation`), never decided by an invented rule. The manifest's five annotator columns all hold that one
label (intensity 1), so `labels.strategy` weighted and majority both give it back; agreement (Fleiss' kappa) is not
measurable from them and the labels stage reports none. The ten evaluators' emotions are read only to report how
often they agree with the total. Each row gets its `session` (`Sess01`): `split.group_by: session` keeps a
session — one speaker pair — on one side, a speaker-independent split. 성별 comes from the speaker code in the
Segment ID (`…_User002F_…` → 여성; KEMDy19 `…_F001`), 나이 is unknown.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from koemo.core.errors import UserError
from koemo.corpus.aihub import BadCSV, NoAIHubData, NoUsableRows, display_path, index_wavs, read_csv_rows, read_wav_header
from koemo.corpus.emotions import normalize_emotion
from koemo.corpus.manifest import (DROP_REASONS, DROPPED_COLUMNS, N_ANNOTATORS, ReadResult, finish_manifest, has_hangul,
                                   summarize as manifest_summary)

RELEASES = {"kemdy20": "KEMDy20", "kemdy19": "KEMDy19"}
KEMDY_DROP_REASONS = DROP_REASONS + ("tied_total_evaluation", "missing_transcript")
_SESSION = re.compile(r"^(Sess\d+)", re.IGNORECASE)
_SPEAKER_GENDER = re.compile(r"(?:User\d+([FM])|_([FM])\d+)(?:_|$)")
_MARKUP = re.compile(r"(?<![가-힣A-Za-z])[a-zA-Z]/|[*+]")   # ETRI transcription tags: `c/`, `n/`, `l/`, `b/`, `*`, `+`


class NotAKEMDyCSV(UserError, ValueError):
    """An annotation CSV without the `Segment ID` and `Total Evaluation` / `Emotion` headers."""


def session_of(segment_id: str) -> str:
    match = _SESSION.match(segment_id)
    return match.group(1).capitalize() if match else ""


def gender_of(segment_id: str) -> str:
    """여성 / 남성 from the speaker code in the Segment ID, "" when it has none."""
    match = _SPEAKER_GENDER.search(segment_id)
    letter = (match.group(1) or match.group(2)) if match else ""
    return {"F": "여성", "M": "남성"}.get(letter.upper(), "")


def clean_transcript(text: str) -> str:
    """The transcript without ETRI's tags (`c/`, `n/`, `*`, `+`) and repeated spaces."""
    return re.sub(r"\s+", " ", _MARKUP.sub(" ", text)).strip()


def read_transcript(path: Path) -> str:
    """utf-8 (with or without BOM) or cp949, like the AI Hub CSVs; public loaders read these as cp949."""
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("cp949", errors="replace")


def annotation_columns(path: Path, first: list[str], second: list[str]) -> tuple[int, int, list[tuple[str, int]]]:
    """(Segment ID column, Total Evaluation emotion column, [(evaluator, emotion column)]) from the two header rows."""
    names = [re.sub(r"\s+", " ", c).strip() for c in first]
    subs = [c.strip().lower() for c in second] + [""] * max(0, len(names) - len(second))
    missing = [n for n in ("Segment ID", "Total Evaluation") if n not in names]
    if missing or subs[names.index("Total Evaluation")] != "emotion":
        raise NotAKEMDyCSV(f"{path} is not a KEMDy annotation CSV: expected two header rows with `Segment ID` and "
                           f"`Total Evaluation` (its first sub-column `Emotion`), found {first[:8]} / {second[:8]}. Point "
                           "data.dir at the KEMDy copy whose annotation/ folder holds SessNN_eval.csv.")
    evaluators = [(n, k) for k, n in enumerate(names) if re.fullmatch(r"Eval\d+[FM]", n) and subs[k] == "emotion"]
    return names.index("Segment ID"), names.index("Total Evaluation"), evaluators


def find_annotation_csvs(root: Path) -> list[Path]:
    folder = root / "annotation"
    return sorted(p for p in (folder if folder.is_dir() else root).rglob("*.csv") if p.is_file())


def read_kemdy_dir(root: str | Path, source: str = "kemdy20") -> ReadResult:
    """Every annotation row kept or dropped with a reason (the AI Hub reader's contract), plus `session` per row."""
    root = Path(root)
    if not root.is_dir():
        raise NoAIHubData(f"data.dir {root} does not exist. Put the {RELEASES[source]} copy there (annotation/, "
                          "wav/) or run with -S data.dir=/path/to/your/copy.")
    csvs = find_annotation_csvs(root)
    if not csvs:
        raise NoAIHubData(f"no annotation CSV below {root}: expected annotation/Sess01_eval.csv … of {RELEASES[source]}.")
    wavs = index_wavs(root)
    kept_rows, drops, files, seen = [], [], [], {}
    agreement = Counter()
    for csv_path in csvs:
        parsed = read_csv_rows(csv_path)
        if not parsed.records:
            raise BadCSV(f"{csv_path}: only one header row; a KEMDy annotation CSV has two (names, then Emotion/Valence/"
                         "Arousal). Re-export it.")
        (_, second), body = parsed.records[0], parsed.records[1:]
        id_col, total_col, evaluators = annotation_columns(csv_path, parsed.header, second)
        source_file, kept_here = display_path(csv_path), 0
        for line, fields in body:
            cell = lambda k: fields[k].strip() if k < len(fields) else ""  # noqa: E731
            segment, total = cell(id_col), cell(total_col)
            problem, text, wav = None, "", None
            emotions = [normalize_emotion(e) for e in total.split(";")]
            if not segment:
                problem = ("empty_wav_id", "")
            elif len([e for e in total.split(";") if e.strip()]) > 1:
                problem = ("tied_total_evaluation", f"Total Evaluation={total!r}: evaluators tied")
            elif emotions[0] is None:
                problem = ("unknown_emotion", f"Total Evaluation={total!r}")
            elif segment in seen:
                problem = ("duplicate_wav_id", f"also {seen[segment]}")
            if problem is None:
                wav = wavs.get(segment)
                if wav is None:
                    problem = ("missing_wav", f"{segment}.wav not found below {root} (expected wav/Session…/)")
            if problem is None:
                transcript = wav.with_suffix(".txt")
                if not transcript.is_file():
                    problem = ("missing_transcript", f"{display_path(transcript)} not found beside the wav")
                else:
                    text = clean_transcript(read_transcript(transcript))
                    if not text:
                        problem = ("empty_text", f"{display_path(transcript)}")
                    elif not has_hangul(text):
                        problem = ("no_hangul", f"transcript={text[:40]!r}: no Korean letter for a Korean text model")
            if problem is None:
                info, problem = read_wav_header(wav)
            if problem is not None:
                drops.append({"source_file": source_file, "source_row": line, "wav_id": segment, "reason": problem[0],
                              "detail": problem[1]})
                continue
            label = emotions[0]
            votes = [normalize_emotion(cell(k)) for _, k in evaluators if cell(k)]
            agreement.update(agrees=sum(v == label for v in votes), votes=len(votes))
            seen[segment] = f"{source_file} line {line} (kept)"
            kept_here += 1
            kept_rows.append({
                "wav_id": segment, "text": text, "situation": label, "release": RELEASES[source],
                "source_file": source_file, "source_row": line, "wav_path": display_path(wav),
                **{f"emotion_{i}": label for i in range(1, N_ANNOTATORS + 1)},
                **{f"intensity_{i}": "1" for i in range(1, N_ANNOTATORS + 1)},
                "age": "", "gender": gender_of(segment), "sample_rate": int(info.samplerate),
                "duration_s": float(info.duration), "session": session_of(segment)})
        files.append({"file": source_file, "release": RELEASES[source], "encoding": parsed.encoding, "rows": len(body),
                      "kept": kept_here})
    frame = pd.DataFrame(kept_rows)
    sessions = frame.pop("session") if len(frame) else pd.Series(dtype=object)
    manifest = finish_manifest(frame)
    if len(frame):
        manifest["session"] = sessions.set_axis(frame["wav_id"]).loc[manifest["wav_id"]].to_numpy()
    dropped = pd.DataFrame(drops, columns=DROPPED_COLUMNS)
    result = ReadResult(manifest, dropped, files)
    result.evaluator_agreement = (agreement["agrees"] / agreement["votes"]) if agreement["votes"] else None
    assert len(manifest) + len(dropped) == result.rows_read, "every row read must be kept or dropped"
    if manifest.empty:
        counts = ", ".join(f"{r} {n}" for r, n in dropped["reason"].value_counts().items()) or "no data rows"
        raise NoUsableRows(f"no usable rows below {root} ({counts}); e.g. "
                           + "; ".join(f"{r.source_file} line {r.source_row}: {r.reason} {r.detail}"
                                       for r in dropped.groupby("reason", sort=False).head(1).itertuples()))
    return result


def summarize(result: ReadResult, source: str) -> dict:
    """The manifest summary with the KEMDy drop reasons, sessions and the evaluators' agreement with the total."""
    summary = manifest_summary(result, source)
    reasons = Counter(result.dropped["reason"])
    summary["dropped_by_reason"] = {reason: reasons.get(reason, 0) for reason in KEMDY_DROP_REASONS}
    summary["sessions"] = int(result.manifest["session"].nunique())
    summary["gender_missing"] = int((result.manifest["gender"].astype(str) == "").sum())
    agreement = getattr(result, "evaluator_agreement", None)
    summary["evaluators_agreeing_with_total"] = None if agreement is None else float(np.round(agreement, 6))
    return summary
