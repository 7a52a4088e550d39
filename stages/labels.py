"""labels stage: five annotators → one label; one grouped, stratified test + K-fold split."""


import pandas as pd

from koemo.core.io import write_parquet
from koemo.core.metrics import data_headline, write_metrics
from koemo.core.params import load_params
from koemo.core.runner import run_stage, stage_parser
from koemo.labels.aggregate import build_label_table


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, ("--manifest", "the corpus stage's manifest (parquet)"),
                          ("--out", "the labels table every later stage reads (parquet)"))
    args = parser.parse_args(argv)
    params = load_params()
    manifest = pd.read_parquet(args.manifest)
    table, metrics = build_label_table(manifest, params["labels"]["strategy"], params["labels"]["classes"], params["split"])
    write_parquet(args.out, table)
    write_metrics(args.metrics, data_headline("labels", metrics), args.report, metrics)
    protocol = metrics["protocol"]
    kappa = "n/a" if metrics["fleiss_kappa"] is None else f"{metrics['fleiss_kappa']:.3f}"
    lacking = "" if protocol["test_has_every_class"] else f"; THE TEST SET LACKS {protocol['test_classes_missing']}"
    print(f"labels: {metrics['rows_kept']}/{metrics['rows_in']} rows kept; train {metrics['class_counts']['train']}, "
          f"test {metrics['class_counts']['test']}; Fleiss' kappa {kappa}; split by {protocol['split_group_by']}: "
          f"{protocol['groups']} groups, the largest {protocol['largest_group_share']:.1%} of rows{lacking}")


if __name__ == "__main__":
    run_stage("labels", main)
