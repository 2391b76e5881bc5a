"""Streaming JSON Lines reader: one line at a time, so memory stays bounded whatever the
file size, and a broken line (bad UTF-8, bad JSON) is reported by number without stopping."""

from collections.abc import Callable, Iterator
from typing import BinaryIO

from driftloop.platform.ingestion.decoding import decode
from driftloop.platform.ingestion.records import Rejection

_BOM = b"\xef\xbb\xbf"


def read_jsonl(stream: BinaryIO, on_bytes: Callable[[int], None] | None = None) -> Iterator[tuple[int, object]]:
    """Yield ``(line number, parsed value or Rejection)``; blank lines are skipped."""
    for line_no, line in enumerate(stream, start=1):
        if on_bytes is not None:
            on_bytes(len(line))
        if line_no == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if not line.strip():
            continue
        try:
            decoded = line.rstrip(b"\r\n").decode("utf-8")
        except UnicodeDecodeError as error:
            yield line_no, Rejection("invalid_utf8", f"invalid UTF-8 at byte {error.start + 1}")
            continue
        yield line_no, decode(decoded)
