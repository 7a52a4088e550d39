"""audio_features stage: the named feature kinds of every labels clip (+ augmented training copies), all from one
decode and one augmentation of each clip."""

from contextlib import ExitStack
from pathlib import Path

import pandas as pd

from koemo.clips.extraction import LABEL_COLUMNS, check_failures
from koemo.core.errors import UserError
from koemo.core.metrics import data_headline, format_rate, write_metrics
from koemo.core.params import load_params
from koemo.core.runner import LABELS_HELP, run_stage, stage_parser
from koemo.features.mel.augment import AugmentSpec
from koemo.features.mel.cache import extract_pass, open_outputs
from koemo.features.mel.spectral import KINDS, FeatureSpec


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, ("--labels", LABELS_HELP))
    parser.add_argument("--kinds", nargs="+", choices=KINDS, required=True, help="the kinds this pass computes")
    parser.add_argument("--outs", type=Path, nargs="+", required=True, help="one directory per kind, in --kinds order")
    args = parser.parse_args(argv)
    if len(args.outs) != len(args.kinds):
        raise UserError(f"--outs names {len(args.outs)} directories for {len(args.kinds)} kinds; give one per kind")
    audio = load_params()["audio"]
    specs = [FeatureSpec.from_params(kind, audio) for kind in args.kinds]
    augment = AugmentSpec.from_params(audio.get("augment"))
    labels = pd.read_parquet(args.labels, columns=LABEL_COLUMNS)
    stage = f"audio_features ({'+'.join(args.kinds)})"
    with ExitStack() as outputs:  # every kind's directory appears only if the whole pass succeeds
        tmps = open_outputs(outputs, args.outs)
        metrics, runtime = extract_pass(labels, specs, augment, tmps, int(audio["workers"]), float(audio["batch_seconds"]),
                                        audio.get("min_rms_dbfs"))
        check_failures(metrics, tmps[0], float(audio["max_failure_fraction"]), stage=stage)
    write_metrics(args.metrics, data_headline("audio_features", metrics), args.report, metrics, args.runtime, runtime)
    kinds = "; ".join(f"{k}: {metrics[k]['rows']} × {metrics[k]['feature_shape']} {metrics[k]['dtype']}" for k in args.kinds)
    print(f"{stage}: {metrics['clips']}/{metrics['clips_in']} clips, {sum(metrics['augmented_by_method'].values())} "
          f"augmented copies → {kinds}; {metrics['failed']} failed {metrics['failures_by_reason'] or ''}; "
          f"{metrics['audio_seconds'] / 3600:.2f} h audio at {format_rate(runtime['x_real_time'])}× real time on "
          f"{runtime['device']}")


if __name__ == "__main__":
    run_stage("audio_features", main)
