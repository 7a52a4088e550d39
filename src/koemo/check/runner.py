"""`koemo check`: everything the current params.yaml will need, checked in seconds before hours of stages.

The real job fails late: a missing encoder snapshot surfaces when `text_embeddings` starts, a full disk during
`audio_features`, both after tens of minutes of data stages. `run_checks` looks at what params.yaml names without
running a stage: the data directory (`check.data`), every encoder (`check.encoders`), this machine (`check.machine`);
the rows are rendered by `check.report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from koemo.check.data import check_data
from koemo.check.encoders import check_encoders
from koemo.check.machine import check_machine
from koemo.check.report import Row


def run_checks(params: Mapping[str, Any], root: Path = Path("."), free_disk: int | None = None,
               gpu_list: list[tuple[str, int]] | None = None) -> list[Row]:
    data_rows, clips = check_data(params, root)
    return data_rows + check_encoders(params, root) + check_machine(params, root, clips, free_disk, gpu_list)
