"""corpus stage: the AI Hub release(s) or the demo corpus → data/manifest.parquet (+ the drop report)."""

import time

from koemo.aihub import read_aihub_dir, summarize
from koemo.errors import run_stage
from koemo.io import write_csv, write_parquet
from koemo.metrics import write_metrics
from koemo.params import load_params

DEMO_DIR = "data/raw/demo"


def main() -> None:
    params = load_params()["data"]
    source = params["source"]
    if source not in ("demo", "aihub"):
        raise SystemExit(f"data.source={source!r}: choose demo or aihub (e.g. dvc exp run -S data.source=aihub)")
    started = time.perf_counter()
    result = read_aihub_dir(DEMO_DIR if source == "demo" else params["aihub_dir"])
    write_parquet("data/manifest.parquet", result.manifest)
    write_csv("data/corpus_dropped.csv", result.dropped)
    summary = summarize(result, source)
    write_metrics("corpus", summary, runtime={"wall_seconds": time.perf_counter() - started})
    print(f"corpus: {summary['rows_read']} rows read, {summary['rows_kept']} kept, "
          f"{summary['rows_dropped']} dropped {summary['dropped_by_reason']}")


if __name__ == "__main__":
    run_stage("corpus", main)
