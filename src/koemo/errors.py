"""Errors the user fixes (bad input, missing weights or artefacts), each message saying what to do next.

Stage scripts run `main` through `run_stage`: such an error ends the stage with its message and exit status 1
instead of a traceback (raised inside `io.atomic_dir`, it has already removed the half-written output). Any
other exception is a bug and keeps its traceback. `run_stage` also applies the stage's CPU thread budget first.
"""

from __future__ import annotations

from typing import Any, Callable


class UserError(RuntimeError):
    """Raised for a problem in the user's data, params or artefacts; the message names the fix."""


def run_stage(stage: str, main: Callable[..., Any], *args: Any) -> None:
    from koemo.device import configure_threads
    from koemo.params import load_params

    try:
        configure_threads(load_params().get("runtime"))
        main(*args)
    except UserError as err:
        message = str(err)
        raise SystemExit(message if message.startswith(f"{stage}:") else f"{stage}: {message}") from None
