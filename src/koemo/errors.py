"""Errors the user fixes (bad input, missing weights or artefacts), each message saying what to do next.

Stage scripts run `main` through `run_stage`: such an error ends the stage with its message and exit status 1
instead of a traceback (raised inside `io.atomic_dir`, it has already removed the half-written output). Any
other exception is a bug and keeps its traceback. Before `main`, `run_stage` applies the stage's CPU thread budget
(`device.configure_threads`) and clears what a killed stage left beside the paths this one reads and writes
(`io.sweep_stale_temps`).
"""

from __future__ import annotations

from typing import Any, Callable


class UserError(RuntimeError):
    """Raised for a problem in the user's data, params or artefacts; the message names the fix."""


def run_stage(stage: str, main: Callable[..., Any], *args: Any) -> None:
    import sys

    from koemo.device import configure_threads
    from koemo.io import sweep_stale_temps
    from koemo.params import load_params

    try:
        configure_threads(load_params().get("runtime"))
        sweep_stale_temps(a for a in sys.argv[1:] if "/" in a and not a.startswith("-"))  # the stage's paths
        main(*args)
    except UserError as err:
        message = str(err)
        raise SystemExit(message if message.startswith(f"{stage}:") else f"{stage}: {message}") from None
