"""demo stage: synthesise the offline Korean demo corpus (AI Hub format) into data/raw/demo.

With data.source other than demo it only writes a README there, so the stage costs nothing.
"""

import os
import time

from koemo.demo import build_demo_corpus, write_disabled
from koemo.errors import run_stage
from koemo.metrics import write_metrics
from koemo.params import load_params

OUT_DIR = "data/raw/demo"
# Each utterance is synthesised by a fresh espeak-ng instance, so the bytes do not depend on this.
WORKERS = min(2, os.cpu_count() or 1)


def main() -> None:
    params = load_params()
    source, demo = params["data"]["source"], params["demo"]
    if source != "demo":
        write_disabled(OUT_DIR, source)
        write_metrics("demo", {"enabled": False, "source": source}, runtime={"wall_seconds": 0.0})
        print(f"demo: data.source={source}, demo corpus disabled (wrote {OUT_DIR}/README.md only)")
        return
    started = time.perf_counter()
    summary = build_demo_corpus(
        OUT_DIR, size=demo["size"], seed=demo["seed"], sample_rate=demo["sample_rate"], speakers=demo["speakers"],
        annotator_noise=demo["annotator_noise"], text_cue_strength=demo["text_cue_strength"], workers=WORKERS,
    )
    wall = time.perf_counter() - started
    write_metrics("demo", {"enabled": True, "source": source, **summary},
                  runtime={"wall_seconds": wall, "x_real_time": summary["total_audio_seconds"] / wall, "workers": WORKERS})
    print(f"demo: {summary['utterances']} utterances ({summary['distinct_sentences']} distinct sentences), "
          f"{summary['total_audio_seconds']:.0f} s of audio in {wall:.1f} s")


if __name__ == "__main__":
    run_stage("demo", main)
