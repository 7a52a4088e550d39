"""How the data stages grow with the corpus: seconds, peak RSS and disk per clip at N = 500 / 2,000 / 8,000 rows,
the fitted growth exponent of time in N, and the projection to the real 44,000-row corpus.

For each N it synthesises an AI-Hub-format release (cp949 CSV + 48 kHz 16-bit wavs, the demo synthesiser with a
neutral delivery, clip lengths drawn like the real ones: lognormal, median 3.9 s, 1-16 s), copies this project into
a temporary git + DVC repo pointed at it (`data.source=aihub`, one tiny text encoder, the tiny wav2vec2), and runs
each data stage with `dvc repro -s`, as a user would: corpus, labels, tiny_encoders, text_embeddings@tiny-bert,
audio_features (mel + melmean, augmentation on), tiny_audio_encoders, ssl_features@tiny-wav2vec2. Per stage: wall
seconds (DVC's hashing and caching included), peak RSS of the largest process, and the bytes its outputs take on disk
add to data/ and the DVC cache together (a linked file counted once). Then the time of a no-op `dvc status` and `dvc repro`.

    python benchmarks/scale.py [--sizes 500 2000 8000] [--workdir DIR]     (make scale)
Wall and CPU seconds (all processes of the stage) are both reported: on a shared machine CPU seconds are the figure
to compare. The 44k projection follows a fixed start-up + per-clip line through the measured points (see `affine`);
`--report FILE` re-prints the table of an earlier `--json FILE` run.
Targets: every exponent ≤ 1.1, peak RSS flat in N, no-op status/repro < 3 s.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
BIN = Path(sys.executable).parent
RATE = 48000
TARGET_ROWS = 44_000
STAGES = [("corpus", ["data/manifest.parquet", "data/corpus_dropped.csv"]),
          ("labels", ["data/labels.parquet"]),
          ("tiny_encoders", ["data/encoders"]),
          ("text_embeddings@tiny-bert", ["data/embeddings/tiny-bert"]),
          ("audio_features", ["data/features/mel", "data/features/melmean"]),
          ("tiny_audio_encoders", ["data/audio_encoders"]),
          ("ssl_features@tiny-wav2vec2", ["data/ssl/tiny-wav2vec2"])]


# ---- the synthetic release -----------------------------------------------------------------------------------
def _render(chunk: list, wav_dir: str) -> None:
    """Speak each utterance with its speaker's neutral voice, fit it to its drawn length, write 48 kHz PCM."""
    from scipy.signal import resample_poly

    from koemo.demo.prosody import emotion_prosody
    from koemo.demo.synth import write_wav
    from koemo.demo.tts import ESPEAK_RATE, speak

    for utterance, seconds in chunk:
        speech = speak(utterance.text, emotion_prosody(utterance.speaker, "neutral")).astype(np.float64)
        rng = np.random.default_rng(utterance.noise_seed)
        length = int(seconds * ESPEAK_RATE)
        lead = min(int(rng.uniform(0.1, 0.4) * ESPEAK_RATE), max(0, length - len(speech)))
        audio = np.zeros(length)
        audio[lead:lead + len(speech)] = speech[:length - lead]
        audio = resample_poly(audio, 320, 147)  # 22,050 → 48,000 Hz
        audio += rng.standard_normal(len(audio)) * 32768 * 10 ** (rng.uniform(-62, -50) / 20)
        write_wav(Path(wav_dir) / f"{utterance.wav_id}.wav", np.clip(np.round(audio), -32768, 32767), RATE)


def synthesise_release(directory: Path, rows: int, seed: int = 11, workers: int = 2) -> float:
    """A release of `rows` utterances below `directory` (`scale.csv` + `wav/`); returns its audio hours."""
    from koemo.demo.plan import plan_corpus
    from koemo.demo.synth import csv_bytes

    plan = plan_corpus(rows, seed)
    seconds = np.clip(np.random.default_rng(seed).lognormal(np.log(3.9), 0.35, rows), 1.0, 16.0)
    (directory / "wav").mkdir(parents=True)
    (directory / "scale.csv").write_bytes(csv_bytes(plan))
    pairs = list(zip(plan, seconds))
    size = max(1, math.ceil(len(pairs) / (workers * 8)))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_render, [pairs[i:i + size] for i in range(0, len(pairs), size)],
                      [str(directory / "wav")] * math.ceil(len(pairs) / size)))
    return float(seconds.sum() / 3600)


# ---- the project copy and the measured stages ---------------------------------------------------------------
def project_copy(dest: Path, release: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file() and not name.startswith(("metrics/", "plots/", "dvclive/", "dvc.lock")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    params = yaml.safe_load((dest / "params.yaml").read_text(encoding="utf-8"))
    params["data"].update(source="aihub", dir=str(release))
    params["text"]["encoders"] = ["tiny-bert"]
    params["text"]["model"] = "tiny-bert"
    (dest / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.email=scale@koemo", "-c", "user.name=scale", "commit", "-qm", "scale"]):
        subprocess.run(["git", *args], cwd=dest, check=True)
    return dest


def measured(command: list[str], cwd: Path) -> tuple[float, int, str, float]:
    """(wall seconds, peak RSS in bytes of the largest process it ran, output, CPU seconds of all its processes), in
    a fresh parent process so the RSS and CPU belong to this command alone. CPU seconds are the figure to compare
    on a shared machine: wall time there says as much about the neighbours as about the stage."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
             "print(repr((time.perf_counter() - t, u.ru_maxrss * 1024, "
             "r.returncode, (r.stdout + r.stderr)[-3000:], u.ru_utime + u.ru_stime)))")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run([sys.executable, "-c", probe, *command], cwd=cwd, env=env, capture_output=True, text=True)
    seconds, rss, code, output, cpu = eval(done.stdout.strip().splitlines()[-1])  # noqa: S307 (our own repr)
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed in {cwd}:\n{output}")
    return seconds, rss, output, cpu


def disk_bytes(project: Path) -> int:
    """Bytes of data/ (the release lives elsewhere) and the DVC cache together, each inode once (du's rule), so a
    linked output counts once."""
    seen, total = set(), 0
    for root in [project / "data", project / ".dvc" / "cache"]:
        for f in ([root] if root.is_file() else root.rglob("*") if root.exists() else []):
            if f.is_file():
                stat = f.stat()
                if (stat.st_dev, stat.st_ino) not in seen:
                    seen.add((stat.st_dev, stat.st_ino))
                    total += stat.st_blocks * 512
    return total


def run_size(rows: int, workdir: Path) -> dict:
    release = workdir / f"release-{rows}"
    started = time.perf_counter()
    hours = synthesise_release(release, rows)
    print(f"N={rows}: synthesised {hours:.2f} h of 48 kHz audio in {time.perf_counter() - started:.0f} s", flush=True)
    project = project_copy(workdir / f"project-{rows}", release)
    dvc = str(BIN / "dvc")
    out = {"rows": rows, "audio_hours": hours, "stages": {}}
    for stage, outs in STAGES:
        before = disk_bytes(project)
        seconds, rss, _, cpu = measured([dvc, "repro", "-s", stage], project)
        clips = json.loads((project / "metrics/labels.json").read_text())["rows_kept"] if stage != "corpus" else rows
        out["stages"][stage] = {"seconds": seconds, "cpu_seconds": cpu, "peak_rss": rss,
                                "disk_per_clip": (disk_bytes(project) - before) / clips}
        print(f"  {stage:28s} {seconds:7.1f} s  {cpu:7.1f} CPU-s ({cpu / clips * 1000:5.1f} ms/clip)  "
              f"peak RSS {rss / 2**20:6.0f} MiB  "
              f"{out['stages'][stage]['disk_per_clip'] / 1024:8.1f} KiB/clip added to data + cache", flush=True)
    out["clips"] = json.loads((project / "metrics/labels.json").read_text())["rows_kept"]
    out["disk_total"] = disk_bytes(project)
    out["disk_outputs"] = sum(f.stat().st_size for f in (project / "data").rglob("*") if f.is_file())
    out["noop_status"] = min(measured([dvc, "status"], project)[0] for _ in range(2))
    # the training stages were never run here: a no-op repro of what was
    out["noop_repro"] = min(measured([dvc, "repro", *(stage for stage, _ in STAGES)], project)[0] for _ in range(2))
    print(f"  no-op dvc status {out['noop_status']:.1f} s, no-op dvc repro {out['noop_repro']:.1f} s; data + cache "
          f"{out['disk_total'] / 2**30:.2f} GiB on disk for {out['disk_outputs'] / 2**30:.2f} GiB of outputs "
          f"({out['disk_total'] / out['disk_outputs']:.2f}×) and {out['clips']} labelled clips", flush=True)
    shutil.rmtree(release)
    shutil.rmtree(project)
    return out


def exponent(sizes: list[int], values: list[float]) -> float:
    """Least-squares slope of log(value) on log(N): 1 = linear growth."""
    return float(np.polyfit(np.log(sizes), np.log(np.maximum(values, 1e-9)), 1)[0])


def affine(clips: list[float], values: list[float], target: float) -> float:
    """`values` at `target` clips on the least-squares line a + b·clips: a fixed start-up (imports, DVC, model load)
    plus a per-clip cost. A power law fitted to the same points reads the start-up as sub-linear growth (exponent
    0.5 from 500 to 2,000 rows) and projected the 44k audio_features at 14 min of wall time when its CPU time per clip
    was flat (109 → 112 ms); the line projects what a linear pass will take."""
    if len(clips) == 1:
        return values[0] * target / clips[0]
    slope, start = np.polyfit(clips, values, 1)
    return float(max(start, 0.0) + max(slope, 0.0) * target)


def report(results: list[dict]) -> tuple[dict, dict]:
    """The table: per stage wall s, peak RSS and disk per clip at each N, then CPU s and CPU ms per labelled clip; the
    growth exponents; the 44k projections (wall and CPU) from the fixed + per-clip line."""
    sizes = [r["rows"] for r in results]
    clips = [r["clips"] for r in results]
    clips_44k = clips[-1] / sizes[-1] * TARGET_ROWS
    print(f"\n{'stage':28s}" + "".join(f"{'N=' + str(n):>32s}" for n in sizes) + f"{'exponent':>10s}{'RSS ×':>7s}"
          f"{'→ 44k rows':>16s}")
    projection, cpu_projection = {}, {}
    for stage, _ in STAGES:
        seconds = [r["stages"][stage]["seconds"] for r in results]
        rss = [r["stages"][stage]["peak_rss"] for r in results]
        projection[stage] = affine(clips, seconds, clips_44k)
        cells = "".join(f"{s:13.1f} s {m / 2**20:5.0f} MiB {r['stages'][stage]['disk_per_clip'] / 1024:5.0f} KiB"
                        for s, m, r in zip(seconds, rss, results))
        print(f"{stage:28s}{cells}{exponent(sizes, seconds):10.2f}{rss[-1] / rss[0]:7.2f}{projection[stage] / 60:11.1f} min")
        cpu = [r["stages"][stage]["cpu_seconds"] for r in results]
        cpu_projection[stage] = affine(clips, cpu, clips_44k)
        print(f"{'':28s}" + "".join(f"{c:11.1f} CPU-s {c / n * 1000:7.1f} ms/clip" for c, n in zip(cpu, clips))
              + f"{exponent(sizes, cpu):10.2f}{'':7s}{cpu_projection[stage] / 60:11.1f} CPU-min")
    print(f"{'no-op dvc status / repro':28s}" + "".join(f"{r['noop_status']:10.1f} s {r['noop_repro']:7.1f} s  "
                                                        for r in results))
    per_clip = results[-1]["disk_total"] / results[-1]["clips"]
    print(f"\nprojection for {TARGET_ROWS:,} rows ({clips_44k:,.0f} labelled clips; fixed + per-clip line): data stages "
          f"{sum(projection.values()) / 3600:.1f} h of wall time as measured here, {sum(cpu_projection.values()) / 3600:.1f} "
          f"CPU-h (÷ cores for a quiet machine), data + DVC cache {per_clip * clips_44k / 2**30:.1f} GiB "
          f"({per_clip / 1024:.0f} KiB per labelled clip, linked outputs counted once)")
    return projection, cpu_projection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--workdir", type=Path, help="where the releases and project copies go (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--report", type=Path, help="print the table of an earlier --json run instead of measuring")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="koemo-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.report:
        results = json.loads(args.report.read_text())["results"]
    else:
        results = [run_size(n, workdir) for n in sorted(args.sizes)]
    projection, cpu_projection = report(results)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "projection_seconds": projection,
                                         "projection_cpu_seconds": cpu_projection}, indent=2))
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
