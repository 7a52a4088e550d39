"""`koemo` command line (also `python -m koemo`): `predict`, `check`, `profile`, `share` and `report`.

    koemo predict --wav clip.wav --text "정말 화가 나요"       one utterance: a table (or --json)
    koemo predict --csv utterances.csv --out predictions.csv  many: columns `wav` (or `wav_path`) and/or `text`
    koemo check [-S text.model=koelectra]                     what params.yaml needs (data, encoders, machine): one table
    koemo profile aihub-gpu --dir /data/aihub                 the real job's params in one command (demo | aihub-cpu)
    koemo share [-r REMOTE]                                   every run made here, restorable by a colleague
    koemo report [--rev main --rev exp-1a2b3] [--update README.md]   the results table to paste (or compare)
    koemo predict --wav clip.wav                              speech alone: transcribed by asr.model when its weights exist
    koemo export OUT                                          the trained models as one self-contained folder + model card
    koemo predict --model OUT --wav clip.wav                  predict from that folder alone (no DVC workspace)
    koemo serve --model OUT [--port 8000]                     a JSON API and a small web page over that folder

Relative wav paths in a CSV are read relative to the CSV's folder; errors name a CSV row by its data row,
counted from 0. Models come from `--root`'s data/models. `--out` never replaces the input CSV, and replaces an
existing file only with `--force` (checked before any model loads); the folders it creates are named.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence


CHUNK = 256  # utterances predicted together in batch mode
SKIPPED_NEEDS = {"text": "--text", "audio": "--wav", "wav2vec2": "--wav", "multimodal": "--wav and --text",
                 "fusion": "--wav or --text", "tfidf": "--text", "egemaps": "--wav",
                 "stack": "the inputs of every model it combines"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="koemo", description="Korean speech emotion recognition (koemo).")
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="class probabilities of every base model and of the stack",
                                  description="Class probabilities of every base model and of the stack, from the "
                                              "artefacts `dvc repro` built in data/models.")
    one = predict.add_argument_group("one utterance")
    one.add_argument("--wav", help="a wav file (any sample rate; stereo is mixed down)")
    one.add_argument("--text", help="its transcript")
    many = predict.add_argument_group("a batch")
    many.add_argument("--csv", type=Path, help="CSV with a `wav` (or `wav_path`) and/or a `text` column")
    predict.add_argument("--out", type=Path, help="write the predictions to this CSV (default: print them); never the "
                                                  "input CSV; an existing file only with --force")
    predict.add_argument("--force", action="store_true", help="replace --out when it exists")
    predict.add_argument("--root", type=Path, default=Path("."), help="the koemo project (params.yaml, data/models); default: .")
    predict.add_argument("--model", type=Path, help="a `koemo export` folder to predict from (instead of --root)")
    predict.add_argument("--no-asr", action="store_true", help="never transcribe a wav given without text (audio-only answer)")
    predict.add_argument("--device", default="auto", help="auto (cuda when available) | cpu | cuda")
    predict.add_argument("--json", action="store_true", help="one utterance: print JSON instead of a table")
    check = commands.add_parser("check", help="what params.yaml will need, checked in seconds: params, data, "
                                              "encoders, GPU, cores, disk, RAM",
                                description="Validate params.yaml as every stage does, then check what it will need "
                                            "before any stage runs: the data directory (CSVs, wavs, a sample of wav "
                                            "headers), every encoder it names (offline: local path or the Hugging "
                                            "Face cache), the GPU, cores, free disk against the projected outputs and "
                                            "RAM. One table; exit 1 on a BLOCKER row, 2 on invalid params. "
                                            "`-S key=value` applies an override first, as `dvc exp run -S` would.")
    check.add_argument("--params", type=Path, default=Path("params.yaml"), help="default: params.yaml")
    check.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a value (dotted key; the value is read as YAML), repeatable")
    check.add_argument("--free-disk", type=float, metavar="GIB",
                       help="judge the disk against this many free GiB instead of this disk's (a target machine)")
    check.add_argument("--params-only", action="store_true", help="only validate params.yaml (no data/encoder/machine checks)")
    profile = commands.add_parser("profile", help="write a whole job's params: demo | aihub-gpu | aihub-cpu",
                                  description="Set the keys of a job profile in params.yaml (comments kept): demo, "
                                              "aihub-gpu (KoBERT, KLUE-RoBERTa, KoELECTRA, wav2vec2-ko, real-data "
                                              "training sizes) or aihub-cpu (no downloads, no GPU). Then: "
                                              "`dvc params diff`, `koemo check`, `dvc repro`.")
    profile.add_argument("name", help="demo | aihub-gpu | aihub-cpu")
    profile.add_argument("--dir", help="the AI Hub copy (data.dir); default: the current data.dir, else data/raw/aihub")
    profile.add_argument("--params", type=Path, default=Path("params.yaml"), help="default: params.yaml")
    profile.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    share = commands.add_parser("share", help="push the workspace, the run cache and the outputs of every run",
                                description="dvc push + dvc push --run-cache + the outputs (metrics and plots "
                                            "included) of every recorded run, so a colleague's `dvc pull --run-cache` "
                                            "then `dvc repro --pull` restores any setting run here.")
    share.add_argument("-r", "--remote", help="DVC remote (default: the default remote)")
    share.add_argument("-j", "--jobs", type=int, help="parallel transfers")
    share.add_argument("--root", type=Path, default=Path("."), help="the koemo project; default: .")
    report = commands.add_parser("report", help="the results table to paste: every model's test UA [95 %% CI], WA, "
                                                "macro-F1, vs baseline, per group; or revisions side by side",
                                 description="Markdown results from the stages' report files (reports/*.json): model | "
                                             "test UA [95 % CI] | WA | macro-F1 | vs baseline | vs best member, the "
                                             "per-group table and the protocol line. With --rev twice or more (git "
                                             "revisions or experiment names, read through DVC's API): the same figures "
                                             "side by side, the differences to the first and whether the intervals "
                                             "overlap.")
    report.add_argument("--rev", action="append", default=[], metavar="REV",
                        help="a git revision, an experiment name or `workspace` (repeatable; default: the workspace)")
    report.add_argument("--update", type=Path, metavar="FILE",
                        help="rewrite the text between FILE's koemo-report markers (README.md) instead of printing")
    report.add_argument("--root", type=Path, default=Path("."), help="the koemo project; default: .")
    export = commands.add_parser("export", help="the trained models as one self-contained folder with a model card",
                                 description="Copy every fold's weights (safetensors), the tokenizers and encoder/ASR "
                                             "weights they read, the feature settings (params.yaml), the stack and the "
                                             "metrics into OUT, with a Hugging Face style README.md model card and "
                                             "koemo-export.json. `koemo predict --model OUT` and `koemo serve --model "
                                             "OUT` then need nothing else.")
    export.add_argument("out", type=Path, help="the folder to create (must not exist, unless --force)")
    export.add_argument("--root", type=Path, default=Path("."), help="the koemo project; default: .")
    export.add_argument("--force", action="store_true", help="replace OUT when it exists")
    serve = commands.add_parser("serve", help="a JSON API and one web page over a `koemo export` folder",
                                description="POST /api/predict (multipart: wav and/or text) → every model's and the "
                                            "stack's probabilities; GET / → a page to upload or record a wav.")
    serve.add_argument("--model", type=Path, required=True, help="a `koemo export` folder (or a project root)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--device", default="auto", help="auto (cuda when available) | cpu | cuda")
    serve.add_argument("--max-upload-mb", type=float, default=10.0, help="largest upload accepted (413 above)")
    serve.add_argument("--max-seconds", type=float, default=30.0, help="longest audio accepted (413 above)")
    return parser


def report_command(args: argparse.Namespace) -> int:
    from koemo.ops.report import report_command as run

    print(run(args.rev, args.root, args.update))
    return 0


def check_command(args: argparse.Namespace) -> int:
    """`koemo check`: params.yaml (+ overrides) through `koemo.core.params.validate_params` (exit 2 when invalid), then
    `koemo.check.runner.run_checks` as one table: exit 1 when a row is a BLOCKER, else 0."""
    import time

    from koemo.core.params import load_params, validate_params

    started = time.perf_counter()
    params = load_params(args.params) if not args.overrides else _with_overrides(args.params, args.overrides)
    if args.overrides:
        validate_params(params, f"{args.params} with {' '.join(f'-S {o}' for o in args.overrides)}")
    print(f"koemo check: {args.params}{' with the overrides' if args.overrides else ''} is valid "
          f"({len(params)} sections)")
    if args.params_only:
        return 0
    from koemo.check.report import BLOCKER, render
    from koemo.check.runner import run_checks

    free = None if args.free_disk is None else int(args.free_disk * 2**30)
    rows = run_checks(params, args.params.parent, free_disk=free)
    print(render(rows))
    print(f"({time.perf_counter() - started:.1f} s)")
    return 1 if any(r.state == BLOCKER for r in rows) else 0


def profile_command(args: argparse.Namespace) -> int:
    from koemo.ops.profiles import apply_profile

    changes = apply_profile(args.params, args.name, args.dir, dry_run=args.dry_run)
    verb = "would set" if args.dry_run else "set"
    if not changes:
        print(f"koemo profile: {args.params} already has profile {args.name}")
    else:
        print(f"koemo profile: {verb} {len(changes)} key(s) of {args.params} for {args.name}:")
        for key, old, new in changes:
            print(f"  {key}: {old!r} → {new!r}")
    print("next: dvc params diff   (what changed against the last commit)\n"
          "      koemo check       (what is missing, in seconds)\n"
          "      dvc repro")
    return 0


def _with_overrides(path: Path, overrides: Sequence[str]) -> dict:
    """params.yaml with each `a.b.c=value` applied (value parsed as YAML, as DVC does), not validated yet."""
    import yaml

    from koemo.core.params import InvalidParams, MissingParams

    if not path.is_file():
        raise MissingParams(f"{path} not found: run from the repository root or pass --params")
    params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or not key:
            raise InvalidParams(f"-S {override}: expected KEY=VALUE, e.g. -S text.model=koelectra")
        *parents, leaf = key.split(".")
        node = params
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
            if node is None:
                raise InvalidParams(f"-S {override}: {part} is not a section")
        node[leaf] = yaml.safe_load(value)
    return params


def _check_out(out: Path, csv: Path | None, force: bool) -> list[Path]:
    """Refuse an --out that would lose a file, before any model loads: the input CSV itself (even with --force),
    a directory, or an existing file without --force. Returns the folders that writing it will create."""
    import os

    from koemo.predict.notices import PredictError

    if csv is not None and (out.resolve() == csv.resolve() or (out.exists() and csv.exists() and os.path.samefile(out, csv))):
        raise PredictError(f"--out {out} is the input CSV: writing there would replace your utterances with the "
                           "predictions. Choose another --out (e.g. predictions.csv).")
    if out.is_dir():
        raise PredictError(f"--out {out} is a directory: give a file path, e.g. {out / 'predictions.csv'}")
    if out.exists() and not force:
        raise PredictError(f"--out {out} exists: pass --force to replace it, or choose another path")
    missing, parent = [], out.absolute().parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for folder in missing:
        if folder.exists() and not folder.is_dir():
            raise PredictError(f"--out {out}: {folder} is a file, not a folder")
    return list(reversed(missing))


def share_command(args: argparse.Namespace) -> int:
    from koemo.ops.share import share

    sent = share(args.root, remote=args.remote, jobs=args.jobs)
    print(f"koemo share: the workspace's outputs pushed; {sent['run_records']} run records with "
          f"{sent['run_objects']} output objects ({sent['run_objects_transferred']} new to the remote"
          + (f", {sent['run_objects_not_in_cache']} no longer in this cache" if sent["run_objects_not_in_cache"] else "")
          + "). A colleague: dvc pull --run-cache, then dvc repro --pull.")
    return 1 if sent["run_objects_failed"] else 0


def _read_batch(path: Path):
    """Utterances of a batch CSV (cp949, utf-8 or utf-8-sig, as the corpus reader reads), every unusable row named."""
    from koemo.core.errors import UserError
    from koemo.corpus.csv_rows import read_csv_rows
    from koemo.predict.notices import PredictError, Utterance, input_problem

    if not path.is_file():
        raise PredictError(f"{path}: {'is a directory, not a CSV file' if path.is_dir() else 'no such file'}")
    try:
        parsed = read_csv_rows(path)
    except UserError as err:
        raise PredictError(str(err)) from None
    columns = [name.strip() for name in parsed.header]
    wav_column = next((columns.index(c) for c in ("wav", "wav_path") if c in columns), None)
    text_column = columns.index("text") if "text" in columns else None
    if wav_column is None and text_column is None:
        raise PredictError(f"{path}: needs a `wav` (or `wav_path`) and/or a `text` column; found {columns}")
    if not parsed.records:
        raise PredictError(f"{path} has a header but no rows: nothing to predict; add one row per utterance")

    def cell(fields: list[str], column: int | None) -> str:
        return fields[column] if column is not None and column < len(fields) else ""  # a short row's missing cells

    utterances, problems = [], []
    for row, (line, fields) in enumerate(parsed.records):
        wav, text = cell(fields, wav_column).strip(), cell(fields, text_column)
        if wav and not Path(wav).is_absolute():
            wav = str(path.parent / wav)
        utterances.append(Utterance(wav or None, text or None))
        problem = input_problem(utterances[-1])
        if problem:
            problems.append(f"  row {row} (line {line}): {problem}")
    if problems:
        raise PredictError(f"{path}: {len(problems)} row(s) cannot be used:\n" + "\n".join(problems[:10]) +
                           "\nGive each row a wav and/or a text (or remove it) and run again.")
    return utterances


def _print_table(utterance, probs, classes, transcript: str | None = None) -> None:
    width = max(len(c) for c in classes) + 2
    print(f"wav:  {utterance.wav or '(none)'}\ntext: {utterance.text or '(none)'}")
    if transcript is not None:
        print(f"transcript (from ASR, not typed): {transcript}")
    print(f"{'model':<12}" + "".join(f"{c:>{width}}" for c in classes) + "  predicted")
    for model, p in probs.items():
        row = p[0]
        if not all(math.isfinite(v) for v in row):
            print(f"{model:<12}  skipped (needs {SKIPPED_NEEDS.get(model, 'its input')})")
            continue
        print(f"{model:<12}" + "".join(f"{v:>{width}.3f}" for v in row) + f"  {classes[int(row.argmax())]}")


def predict_in_chunks(predictor, utterances, chunk: int = CHUNK) -> dict:
    """(`predictor.predict` over `chunk` utterances at a time (memory stays flat on a long CSV), with progress;
    each utterance's notes)."""
    import numpy as np
    from tqdm import tqdm

    parts, notes = [], []
    for start in tqdm(range(0, len(utterances), chunk), desc="predict", unit="chunk", disable=len(utterances) <= chunk):
        parts.append(predictor.predict(utterances[start:start + chunk], first_row=start))
        notes += getattr(predictor, "notes", None) or [[] for _ in utterances[start:start + chunk]]
    return {model: np.concatenate([part[model] for part in parts]) for model in parts[0]}, notes


def _print_notes(notes, first_row: int | None = None) -> None:
    """Each utterance's notices on stderr (a batch: counted by kind, the first few named; all are in `notes`)."""
    if first_row is None:
        for note in notes[0]:
            print(f"koemo predict: note: {note}", file=sys.stderr)
        return
    flagged = [(row, note) for row, row_notes in enumerate(notes) for note in row_notes]
    if not flagged:
        return
    kinds: dict[str, int] = {}
    for _, note in flagged:
        kinds[note.split(":")[0]] = kinds.get(note.split(":")[0], 0) + 1
    print(f"koemo predict: {len({row for row, _ in flagged})} row(s) have notes (the `notes` column): "
          + ", ".join(f"{kind} {n}" for kind, n in kinds.items()), file=sys.stderr)
    for row, note in flagged[:5]:
        print(f"  row {row}: {note}", file=sys.stderr)


def predict_command(args: argparse.Namespace) -> int:
    # only light modules until every argument is checked: the predictor pulls in torch, sklearn and transformers
    from koemo.predict.notices import PredictError, Utterance, given_value, input_problem

    if args.csv is None and args.wav is None and args.text is None:
        raise PredictError("give --wav and/or --text (one utterance) or --csv FILE (a batch)")
    if args.csv is not None and (args.wav is not None or args.text is not None):
        raise PredictError("use either --csv or --wav/--text, not both")
    created = _check_out(args.out, args.csv, args.force) if args.out is not None else []
    utterances = _read_batch(args.csv) if args.csv is not None else [Utterance(args.wav, args.text)]
    problem = input_problem(utterances[0]) if args.csv is None else None
    if problem:  # checked before any model is loaded
        raise PredictError(f"--wav {problem}; give one wav file (several: list them in a --csv)" if given_value(args.wav)
                           else "--text is empty and no --wav is given: nothing to predict from; give a transcript "
                                "(--text) and/or a wav (--wav)")
    from transformers.utils import logging as hf_logging

    from koemo.core.io import write_csv
    from koemo.predict.predictor import Predictor, answer, result_table

    hf_logging.disable_progress_bar()  # per-model "Loading weights" bars would bury the answer
    predictor = Predictor(args.model if args.model is not None else args.root, device=args.device, asr=not args.no_asr)
    probs, notes = predict_in_chunks(predictor, utterances)
    classes = predictor.classes
    if args.csv is not None or args.out is not None:
        table = result_table(utterances, probs, classes, notes)
        if args.out is not None:
            _check_out(args.out, args.csv, args.force)  # again: it may have appeared while the models ran
            for folder in created:
                folder.mkdir(exist_ok=True)
            write_csv(args.out, table)
            complete = int((table["stack_predicted"] != "").sum())
            made = f"; created {', '.join(str(f) for f in created)}" if created else ""
            print(f"koemo predict: {len(table)} utterance(s) → {args.out} ({complete} with a stack prediction){made}")
        else:
            table.to_csv(sys.stdout, index=False)
        _print_notes(notes, first_row=0)
        return 0
    _print_notes(notes)
    if args.json:
        transcript = predictor.transcripts[0] if predictor.transcripts else None
        out = {"wav": args.wav, "text": args.text, **answer(probs, classes, notes[0], 0, transcript)}
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        _print_table(utterances[0], probs, classes, predictor.transcripts[0] if predictor.transcripts else None)
    return 0


def export_command(args: argparse.Namespace) -> int:
    from koemo.export.bundle import export_models

    summary = export_models(args.root, args.out, force=args.force)
    print(f"koemo export: {args.out}: {summary['models']} base models + the stack, {summary['files']} files "
          f"({summary['bytes'] / 2**20:.1f} MiB); model card {args.out / 'README.md'}"
          + ("" if summary["asr"] else "; no ASR weights (a wav without text gets the audio-only answer)"))
    print(f"next: koemo predict --model {args.out} --wav clip.wav    or    koemo serve --model {args.out}")
    return 0


def serve_command(args: argparse.Namespace) -> int:
    from koemo.serve.app import serve

    serve(args.model, host=args.host, port=args.port, device=args.device,
          max_upload_bytes=int(args.max_upload_mb * 2**20), max_seconds=args.max_seconds)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from koemo.core.errors import UserError

    args = _parser().parse_args(argv)
    if args.command == "share":
        return share_command(args)
    try:
        command = {"check": check_command, "profile": profile_command, "report": report_command,
                   "export": export_command, "serve": serve_command}.get(args.command, predict_command)
        return command(args)
    except UserError as err:
        print(f"koemo {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
