"""The one metrics writer.

`metrics/<stage>.json` holds what the params and seed determine (byte-identical on rerun), so
`dvc metrics diff` shows only real changes. Wall-clock figures (seconds, throughput, device) go to
`metrics/runtime/<stage>.json`, declared as metrics too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from koemo.io import write_json

METRICS_DIR = Path(os.environ.get("KOEMO_METRICS_DIR", "metrics"))


def write_metrics(stage: str, metrics: Mapping[str, Any], runtime: Mapping[str, Any] | None = None) -> Path:
    path = METRICS_DIR / f"{stage}.json"
    write_json(path, dict(metrics))
    if runtime is not None:
        write_json(METRICS_DIR / "runtime" / f"{stage}.json", dict(runtime))
    return path
