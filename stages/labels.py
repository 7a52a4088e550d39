"""labels stage: five annotators → one label; one grouped, stratified test + K-fold split."""

import pandas as pd

from koemo.errors import run_stage
from koemo.io import write_parquet
from koemo.labels import build_label_table
from koemo.metrics import write_metrics
from koemo.params import load_params


def main() -> None:
    params = load_params()
    manifest = pd.read_parquet("data/manifest.parquet")
    table, metrics = build_label_table(manifest, params["labels"]["strategy"], params["labels"]["classes"], params["split"])
    write_parquet("data/labels.parquet", table)
    write_metrics("labels", metrics)
    print(f"labels: {metrics['rows_kept']}/{metrics['rows_in']} rows kept; train {metrics['class_counts']['train']}, "
          f"test {metrics['class_counts']['test']}; Fleiss' kappa {metrics['fleiss_kappa']:.3f}")


if __name__ == "__main__":
    run_stage("labels", main)
