"""A CSV's header and records as the corpus readers and `koemo predict --csv` read them (cp949, utf-8 or utf-8-sig;
each record's line kept), and the errors that name a bad one. Standard library only, so `koemo predict` can refuse
a bad CSV before it imports pandas, torch or any model."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from koemo.core.errors import UserError


class NotAnAIHubCSV(UserError, ValueError):
    """A CSV below the data directory that lacks the AI Hub columns."""


class BadCSV(UserError, ValueError):
    """A CSV that cannot be parsed as one: empty, undecodable, an unclosed quote, or rows longer than the header."""


def decode_bytes(raw: bytes) -> tuple[str, str]:
    """Return (text, encoding): utf-8-sig if a BOM is present, else utf-8 if valid, else cp949."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8"), "utf-8-sig"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp949"), "cp949"
    except UnicodeDecodeError as err:
        raise NotAnAIHubCSV(f"cannot decode as utf-8 or cp949 (bad byte at offset {err.start})") from err


@dataclass
class CSVRows:
    header: list[str]
    records: list[tuple[int, list[str]]]  # (file line where the record starts, its fields), blank lines skipped
    encoding: str


def read_csv_rows(path: Path) -> CSVRows:
    """Parse a CSV (cp949, utf-8 or utf-8-sig) with the csv module, keeping each record's line and field count.

    Not pandas: it fills a short row with empty strings (so a truncated row looked like a bad intensity), and
    when the first data row has one field too many it silently makes the first column the index, shifting
    every column. A row longer than the header, or a quote left open, is a `BadCSV` naming its line(s); short
    rows are returned as they are for the caller to judge.
    """
    try:
        text, encoding = decode_bytes(path.read_bytes())
    except NotAnAIHubCSV as err:
        raise BadCSV(f"{path}: {err}. Re-save it as cp949 or UTF-8.") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    records, multiline, ended = [], set(), 0
    try:
        for fields in reader:
            start, ended = ended + 1, reader.line_num
            if fields:
                records.append((start, fields))
                if ended > start:
                    multiline.add(start)
    except csv.Error as err:
        raise BadCSV(f"{path}, line {reader.line_num}: {err}. Fix that line (or re-export the file) and rerun.") from None
    if not records:
        size = path.stat().st_size
        raise BadCSV(f"{path} {'is empty (0 bytes)' if size == 0 else f'has no header line ({size} bytes, all blank)'}: "
                     "re-export (or re-download) it, or remove it.")
    (_, header), body = records[0], records[1:]
    open_quote = [line for line, fields in body if line in multiline and len(fields) != len(header)]
    if open_quote:
        raise BadCSV(f"{path}, line {open_quote[0]}: a quote (\") opened on this line is not closed where the field "
                     "ends, so the lines after it were read into this row. Close or remove that quote and rerun.")
    long_rows = [(line, len(fields)) for line, fields in body if len(fields) > len(header)]
    if long_rows:
        listed = "; ".join(f"line {line} has {n} fields" for line, n in long_rows[:5])
        more = f" (and {len(long_rows) - 5} more lines)" if len(long_rows) > 5 else ""
        raise BadCSV(f"{path}, {listed}{more}, but the header has {len(header)}: most likely an unquoted comma inside "
                     "the text (발화문). Quote that field (\"…, …\") or remove the extra comma, then rerun.")
    return CSVRows(header, body, encoding)
