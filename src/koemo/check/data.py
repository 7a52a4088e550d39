"""`koemo check`, the data: data.dir as the corpus stage will read it, without running it.

The release CSVs are parsed by the reader's own `read_release_csv`, the directory listed by its own walk
(`koemo.corpus.aihub.list_data_dir`), and a sample of wav *headers* is read (never decoded audio).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from koemo.check.report import BLOCKER, OK, WARN, Row
from koemo.corpus.aihub import index_wavs, list_data_dir

HEADER_SAMPLE = 32          # wav headers read (evenly spaced over the rows): enough to see rates/channels/lengths
# Files a release directory may hold besides CSVs and wavs, silently skipped by the reader: named, never ignored.
_HARMLESS = {".md", ".txt"}


def check_data(params: Mapping[str, Any], root: Path) -> tuple[list[Row], int]:
    """Rows about data.dir, and the projected number of clips (for the disk estimate)."""
    from koemo.core.params import DEMO_DIR

    data = params.get("data", {})
    source, directory = data.get("source", "demo"), data.get("dir", DEMO_DIR)
    path = Path(directory) if Path(directory).is_absolute() else root / directory
    if source == "demo":
        size = int(params.get("demo", {}).get("size", 1200))
        if not path.is_dir() and str(directory).rstrip("/") == DEMO_DIR:
            return [Row("data", OK, f"demo: {size} utterances, synthesised by the demo stage into {directory}")], size
    if source in ("kemdy20", "kemdy19"):  # ETRI KEMDy: annotation/SessNN_eval.csv + wav/SessionNN/ (koemo.corpus.kemdy)
        found = (path / "annotation").is_dir() and (path / "wav").is_dir()
        clips = len(index_wavs(path)) if found else 0  # the wavs the KEMDy reader indexes
        return [Row("data.dir", OK if found else BLOCKER,
                    f"{source}: {'annotation/ and wav/ found' if found else 'no annotation/ and wav/'} below {directory}"
                    + (f", {clips} wavs" if found else ""),
                    "" if found else f"point data.dir at the {source} copy holding annotation/ and wav/")], clips
    rows: list[Row] = []
    if not path.is_dir():
        near = _csvs_near(path)
        return [Row("data.dir", BLOCKER, f"{directory} does not exist" + (f"; CSVs nearby: {near}" if near else ""),
                    "put the release CSVs and unzipped wavs there, or `koemo profile aihub-gpu --dir /path/to/copy`")], 0
    from koemo.corpus.aihub import BadCSV, NotAnAIHubCSV, read_release_csv, release_name

    listing = list_data_dir(path)  # the reader's own walk: the share of found wavs is the one the corpus stage will see
    csvs, others, index = listing.csvs, listing.others, listing.wavs
    if not csvs:
        near = _csvs_near(path)
        xlsx = [p for p in others if p.suffix.lower() == ".xlsx"]
        fix = ("save the .xlsx as CSV (cp949 or UTF-8) below data.dir" if xlsx else
               f"move the release CSVs below {directory}" + (f" (found {near})" if near else "")
               + ", or point data.dir at the folder holding them")
        return [Row("release CSVs", BLOCKER, f"no *.csv below {directory} ({len(index)} wavs)", fix)], 0
    total, ids = 0, []
    for csv_path in csvs:
        name = csv_path.relative_to(path).as_posix()
        try:
            frame, encoding, width = read_release_csv(csv_path)
        except (BadCSV, NotAnAIHubCSV) as err:
            rows.append(Row(f"CSV {name}", BLOCKER, str(err).split("\n")[0][:300],
                            "move it out of data.dir (not an AI Hub release)" if isinstance(err, NotAnAIHubCSV)
                            else "fix or re-export that file"))
            continue
        total += len(frame)
        ids += list(frame["wav_id"])
        rows.append(Row(f"CSV {name}", OK if len(frame) else BLOCKER,
                        f"{release_name(csv_path)}: {len(frame):,} rows, {encoding}, header {width} fields",
                        "" if len(frame) else "re-export it with its rows"))
    found = [i for i in ids if i in index]
    share = len(found) / len(ids) if ids else 0.0
    if ids:
        state = OK if share == 1 else (BLOCKER if not found else WARN)
        rows.append(Row("wavs", state, f"{len(found):,} of {len(ids):,} rows have their <wav_id>.wav ({share:.1%})",
                        "" if state == OK else f"unzip the wav folders below {directory} (rows without a wav are "
                                                "dropped as missing_wav)"))
        rows.append(_header_sample([index[i] for i in found]))
    unused = len(set(index) - set(ids))
    if unused:
        rows.append(Row("unlisted wavs", WARN, f"{unused:,} wavs below {directory} are in no CSV row (ignored)",
                        "add the CSV that lists them, or remove them"))
    skipped = {}
    for other in others:
        skipped.setdefault(other.suffix.lower() or "(none)", []).append(other)
    for suffix, files in sorted(skipped.items()):
        if suffix in _HARMLESS:
            continue
        hint = {".zip": "unzip it (the reader does not open archives)", ".xlsx": "save it as CSV",
                ".flac": "convert to wav", ".mp3": "convert to wav"}.get(suffix, "remove it or convert it")
        rows.append(Row(f"other files ({suffix})", WARN, f"{len(files)} below {directory} not read, e.g. "
                        f"{files[0].relative_to(path).as_posix()}", hint))
    return rows, total  # every row as a clip: an upper bound (labels keeps fewer), and the figure once wavs are fixed


def _csvs_near(path: Path) -> str:
    """CSVs in the parent of `path` and its siblings (one level): where a misplaced release usually is."""
    parent = path.parent if path.parent.is_dir() else None
    if parent is None:
        return ""
    found = sorted(p for p in list(parent.glob("*.csv")) + list(parent.glob("*/*.csv")) if path not in p.parents)
    return ", ".join(str(p) for p in found[:3])


def _header_sample(paths: Sequence[Path]) -> Row:
    """Rate, channels and length of up to HEADER_SAMPLE wavs, evenly spaced; headers only (soundfile.info)."""
    import soundfile as sf

    from koemo.clips.decode import wav_truncation

    if not paths:
        return Row("wav headers", BLOCKER, "no wav to sample", "see the wavs row")
    step = max(1, len(paths) // HEADER_SAMPLE)
    sample = list(paths[::step])[:HEADER_SAMPLE]
    rates, channels, seconds, bad = {}, {}, [], []
    for p in sample:
        try:
            info = sf.info(str(p))
        except Exception as err:  # soundfile raises several types for a broken header
            bad.append(f"{p.name}: {str(err).splitlines()[0][:80]}")
            continue
        cut = wav_truncation(str(p))
        if cut:
            bad.append(f"{p.name}: {cut}")
        rates[info.samplerate] = rates.get(info.samplerate, 0) + 1
        channels[info.channels] = channels.get(info.channels, 0) + 1
        seconds.append(info.duration)
    detail = (f"{len(sample)} sampled: rate {_counts(rates, ' Hz')}, channels {_counts(channels)}"
              + (f", {min(seconds):.1f}-{max(seconds):.1f} s (median {sorted(seconds)[len(seconds) // 2]:.1f})"
                 if seconds else ""))
    if bad:
        return Row("wav headers", WARN if len(bad) < len(sample) else BLOCKER, f"{detail}; {len(bad)} unreadable or "
                   f"cut short, e.g. {bad[0]}", "copy those wavs again (the stages drop them as unreadable/truncated)")
    return Row("wav headers", OK, detail)


def _counts(counts: Mapping[Any, int], unit: str = "") -> str:
    return ", ".join(f"{k}{unit}" + (f" ×{n}" if len(counts) > 1 else "") for k, n in sorted(counts.items()))
