"""text_embeddings@<encoder> stage: one pooled vector per labels row, each distinct text embedded once."""

import sys

import pandas as pd

from koemo.asr.text_source import apply_texts, texts_argument
from koemo.core.io import atomic_dir
from koemo.core.metrics import data_headline, format_rate, write_metrics
from koemo.core.params import load_params
from koemo.core.runner import LABELS_HELP, run_stage, stage_parser
from koemo.core.shards import ShardWriter
from koemo.text.embed import embed_labels, resolve_device
from koemo.text.registry import load_encoder, unknown_encoder


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, ("--labels", LABELS_HELP), ("--out", "directory: float32 shards + index.parquet"))
    parser.add_argument("encoder", help="a name from params.yaml `encoders`")
    texts_argument(parser)
    args = parser.parse_args(argv)
    params = load_params()
    if args.encoder not in params["encoders"]:
        raise unknown_encoder(args.encoder, params["encoders"])
    settings = params["text_embeddings"]
    encoder = load_encoder(args.encoder, params["encoders"][args.encoder])
    labels = apply_texts(pd.read_parquet(args.labels, columns=["wav_id", "text"]), args.texts)
    embeddings, index, metrics, runtime = embed_labels(labels, encoder, int(settings["batch_size"]),
                                                       device=resolve_device(settings.get("device", "auto")),
                                                       max_unknown_share=float(settings.get("max_unknown_share", 0.05)))
    with atomic_dir(args.out) as tmp:
        writer = ShardWriter(tmp, (embeddings.shape[1],), {"wav_id": str})
        writer.add(embeddings, index[["wav_id"]].to_dict("records"))
        writer.close()
    write_metrics(args.metrics, data_headline("text_embeddings", metrics), args.report, metrics, args.runtime, runtime)
    print(f"text_embeddings@{args.encoder}: {metrics['rows']} rows ({metrics['unique_texts']} distinct texts) → "
          f"[{metrics['rows']}, {metrics['dim']}] from {metrics['source']} ({metrics['pooling']} pooling), "
          f"{format_rate(runtime['sentences_per_second'])} sentences/s on {runtime['device']}")


if __name__ == "__main__":
    run_stage(f"text_embeddings@{sys.argv[1]}" if len(sys.argv) > 1 else "text_embeddings", main)
