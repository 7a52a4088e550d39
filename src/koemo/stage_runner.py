"""How every `stages/<stage>.py` runs its `main`: one message for a user error, a thread budget, no stale temps.

A `UserError` ends the stage with its message and exit status 1 instead of a traceback (raised inside
`io.atomic_dir`, it has already removed the half-written output); any other exception is a bug and keeps its
traceback. Before `main`, the stage's CPU thread budget is applied (`device.configure_threads`) and what a killed
stage left beside the paths this one reads and writes is cleared (`io.sweep_stale_temps`).
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from koemo.device import configure_threads
from koemo.errors import UserError
from koemo.io import sweep_stale_temps
from koemo.params import load_params


def run_stage(stage: str, main: Callable[..., Any], *args: Any) -> None:
    try:
        configure_threads(load_params().get("runtime"))
        sweep_stale_temps(a for a in sys.argv[1:] if "/" in a and not a.startswith("-"))  # the stage's paths
        main(*args)
    except UserError as err:
        message = str(err)
        raise SystemExit(message if message.startswith(f"{stage}:") else f"{stage}: {message}") from None
