"""corpus stage: the AI Hub release(s) or the demo corpus → one manifest (+ the drop report)."""

import time

from koemo.core.io import write_csv, write_parquet
from koemo.core.metrics import data_headline, write_metrics
from koemo.core.params import load_params
from koemo.core.runner import run_stage, stage_parser
from koemo.corpus import kemdy
from koemo.corpus.aihub import SOURCES, NoAIHubData, UnknownSource, read_aihub_dir
from koemo.corpus.manifest import summarize
from koemo.corpus.wav_index import fingerprint_wavs


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(
        __doc__, ("--data-dir", "data.dir: the demo corpus (data/raw/demo) or the AI Hub copy, read as data.source says"),
        ("--manifest", "one row per usable CSV row (parquet)"), ("--dropped", "every dropped row with its reason (CSV)"),
        ("--wavs", "size + content hash of every kept row's wav: what the audio stages depend on (parquet)"))
    args = parser.parse_args(argv)
    source = load_params()["data"]["source"]
    if source not in SOURCES:
        raise UnknownSource(f"data.source={source!r}: choose one of {SOURCES} (`koemo profile aihub-gpu --dir PATH` "
                            "sets it with data.dir)")
    started = time.perf_counter()
    if source == "demo" and not args.data_dir.is_dir():
        raise NoAIHubData(f"data.dir {args.data_dir} does not exist: the demo stage writes it (`dvc repro demo`), "
                          "or choose your data with `koemo profile aihub-gpu --dir PATH`")
    if source in kemdy.RELEASES:
        result, summarize_result = kemdy.read_kemdy_dir(args.data_dir, source), kemdy.summarize
    else:
        result, summarize_result = read_aihub_dir(args.data_dir), summarize
    write_parquet(args.manifest, result.manifest)
    write_csv(args.dropped, result.dropped)
    manifest = result.manifest
    write_parquet(args.wavs, fingerprint_wavs(manifest["wav_id"], manifest["wav_path"]))
    summary = summarize_result(result, source)
    write_metrics(args.metrics, data_headline("corpus", summary), args.report, summary, args.runtime,
                  {"wall_seconds": time.perf_counter() - started})
    print(f"corpus: {summary['rows_read']} rows read, {summary['rows_kept']} kept, "
          f"{summary['rows_dropped']} dropped {summary['dropped_by_reason']}")


if __name__ == "__main__":
    run_stage("corpus", main)
