"""Progress a user can trust on a 44,000-clip stage: counted when work is *done*, rated over the last minute.

A bar that counts decoded clips (they run ahead of the batch that processes them) or whole 512-clip blocks says
"3.5 min left" for a 32-min stage; a rate averaged from the start says "700× real time" at first and 15× at the
end. `Progress` counts what is finished, and its rate and ETA come from a moving window (`WINDOW` seconds), so
both settle within a minute and follow the stage's real speed. On a terminal it is a tqdm bar; when stderr is
not a TTY (a `dvc repro` log, CI) it prints one plain line every `LOG_EVERY` seconds instead of carriage-return
redraws and escape codes.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Callable

WINDOW = 60.0     # seconds of history the rate is taken over
LOG_EVERY = 30.0  # seconds between lines when stderr is not a terminal


class MovingRate:
    """Units per second over the last `window` seconds (from the start until that much history exists)."""

    def __init__(self, window: float = WINDOW, clock: Callable[[], float] = time.monotonic):
        self.window, self.clock = window, clock
        self.points: deque[tuple[float, float]] = deque([(clock(), 0.0)])

    def add(self, total: float) -> None:
        now = self.clock()
        self.points.append((now, total))
        while len(self.points) > 2 and now - self.points[1][0] >= self.window:
            self.points.popleft()

    def rate(self) -> float | None:
        (t0, v0), (t1, v1) = self.points[0], self.points[-1]
        return (v1 - v0) / (t1 - t0) if t1 > t0 and v1 > v0 else None


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """`update(n)` as work finishes; `note(extra)` adds e.g. audio seconds for an "× real time" figure."""

    def __init__(self, total: int, desc: str, unit: str = "clip", disable: bool = False, stream=None,
                 tty: bool | None = None, clock: Callable[[], float] = time.monotonic, extra_unit: str = ""):
        self.total, self.desc, self.unit, self.disable = total, desc, unit, disable
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock, self.extra_unit = clock, extra_unit
        self.done, self.extra = 0, 0.0
        self.rate, self.extra_rate = MovingRate(clock=clock), MovingRate(clock=clock)
        self.started = self.last_line = clock()
        self.bar = None
        if not disable and self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, smoothing=0.05, mininterval=0.5)

    def update(self, n: int = 1, extra: float = 0.0) -> None:
        if self.disable or n <= 0 and not extra:
            return
        self.done += n
        self.extra += extra
        self.rate.add(self.done)
        self.extra_rate.add(self.extra)
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix_str(self.postfix(), refresh=False)
        elif self.clock() - self.last_line >= LOG_EVERY:
            self._line()

    def postfix(self) -> str:
        rate = self.extra_rate.rate()
        return f"{rate:,.0f}{self.extra_unit}" if self.extra_unit and rate else ""

    def line(self) -> str:
        rate = self.rate.rate()
        left = (self.total - self.done) / rate if rate else None
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        extra = f", {self.postfix()}" if self.postfix() else ""
        speed = f"{rate:,.1f} {self.unit}s/s" if rate else f"? {self.unit}s/s"
        return (f"{self.desc}: {self.done:,}/{self.total:,} {self.unit}s{share}, {speed}{extra}, "
                f"elapsed {_clock(self.clock() - self.started)}, ETA {_clock(left)}")

    def _line(self) -> None:
        self.last_line = self.clock()
        print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        if self.disable:
            return
        if self.bar is not None:
            self.bar.close()
        else:
            self._line()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
