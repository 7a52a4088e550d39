"""`koemo check`'s table: one `Row` per check (check | state | the fix); a `BLOCKER` row makes `koemo check` exit 1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

OK, WARN, BLOCKER = "ok", "warn", "BLOCKER"


@dataclass
class Row:
    check: str
    state: str
    detail: str
    fix: str = ""


def render(rows: Iterable[Row]) -> str:
    """check | state | detail — the fix, one line per check (wrapped fix on its own line when long)."""
    import unicodedata

    def cells(text: str) -> int:  # terminal columns: Hangul takes two
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    rows = list(rows)
    width = max(cells(r.check) for r in rows)
    lines = [f"{'check':<{width}}  {'state':<7}  detail — the fix", "-" * (width + 40)]
    for r in rows:
        pad = " " * (width - cells(r.check))
        lines.append(f"{r.check}{pad}  {r.state:<7}  {r.detail}" + (f"\n{'':<{width}}  {'':<7}  → {r.fix}" if r.fix else ""))
    blockers = sum(r.state == BLOCKER for r in rows)
    lines.append(f"{blockers} blocker(s), {sum(r.state == WARN for r in rows)} warning(s)"
                 + (": fix the BLOCKER rows before `dvc repro`" if blockers else ": ready for `dvc repro`"))
    return "\n".join(lines)
