"""Errors the user fixes (bad input, missing weights or artefacts), each message saying what to do next.

Stage scripts run `main` through `koemo.core.runner.run_stage`, which turns such an error into one message and exit
status 1 instead of a traceback. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(RuntimeError):
    """Raised for a problem in the user's data, params or artefacts; the message names the fix."""
