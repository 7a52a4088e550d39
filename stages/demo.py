"""demo stage: synthesise the offline Korean demo corpus (AI Hub format); a README only for data.source other than demo."""

import os
import time

from koemo.core.metrics import data_headline, write_metrics
from koemo.core.params import load_params
from koemo.core.runner import run_stage, stage_parser
from koemo.demo import build_demo_corpus, write_disabled

# Each utterance is synthesised by a fresh espeak-ng instance, so the bytes do not depend on this.
WORKERS = min(2, os.cpu_count() or 1)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, ("--out", "the demo corpus directory (CSV + wav/)"))
    args = parser.parse_args(argv)
    params = load_params()
    source, demo = params["data"]["source"], params["demo"]
    if source != "demo":
        write_disabled(args.out, source)
        report = {"enabled": False, "source": source}
        write_metrics(args.metrics, data_headline("demo", report), args.report, report, args.runtime, {"wall_seconds": 0.0})
        print(f"demo: data.source={source}, demo corpus disabled (wrote {args.out}/README.md only)")
        return
    started = time.perf_counter()
    summary = build_demo_corpus(
        args.out, size=demo["size"], seed=demo["seed"], sample_rate=demo["sample_rate"], speakers=demo["speakers"],
        annotator_noise=demo["annotator_noise"], text_cue_strength=demo["text_cue_strength"], workers=WORKERS,
    )
    wall = time.perf_counter() - started
    report = {"enabled": True, "source": source, **summary}
    write_metrics(args.metrics, data_headline("demo", report), args.report, report, args.runtime,
                  {"wall_seconds": wall, "x_real_time": summary["total_audio_seconds"] / wall, "workers": WORKERS})
    print(f"demo: {summary['utterances']} utterances ({summary['distinct_sentences']} distinct sentences), "
          f"{summary['total_audio_seconds']:.0f} s of audio in {wall:.1f} s")


if __name__ == "__main__":
    run_stage("demo", main)
