"""egemaps_features stage: openSMILE eGeMAPSv02 functionals (88 per clip) of every labels clip, in shards."""


import pandas as pd

from koemo.clips.extraction import LABEL_COLUMNS, check_failures
from koemo.core.io import atomic_dir
from koemo.core.metrics import data_headline, format_rate, write_metrics
from koemo.core.params import load_params
from koemo.core.runner import LABELS_HELP, run_stage, stage_parser
from koemo.features.egemaps import extract_egemaps


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, ("--labels", LABELS_HELP),
                          ("--out", "directory: float32 shards + index.parquet + failures.csv"))
    args = parser.parse_args(argv)
    params = load_params()
    audio, settings = params["audio"], params["egemaps"]
    labels = pd.read_parquet(args.labels, columns=LABEL_COLUMNS)
    with atomic_dir(args.out) as tmp:
        metrics, runtime = extract_egemaps(labels, tmp, int(audio["sample_rate"]), float(settings["max_seconds"]),
                                           int(settings["workers"]), float(audio["batch_seconds"]), audio.get("min_rms_dbfs"))
        check_failures(metrics, tmp, float(audio["max_failure_fraction"]), stage="egemaps_features")
    write_metrics(args.metrics, data_headline("egemaps_features", metrics), args.report, metrics, args.runtime, runtime)
    print(f"egemaps_features: {metrics['clips']}/{metrics['clips_in']} clips → [{metrics['clips']}, 88] functionals; "
          f"{metrics['failed']} failed {metrics['failures_by_reason'] or ''}; {format_rate(runtime['x_real_time'])}× real "
          f"time with {runtime['workers']} process(es)")


if __name__ == "__main__":
    run_stage("egemaps_features", main)
