import io

from driftloop.platform.ingestion.jsonl import read_jsonl
from driftloop.platform.ingestion.records import Rejection


def test_lines_are_numbered_and_broken_ones_reported_alone() -> None:
    data = b'\xef\xbb\xbf{"text": "first"}\n\n{"text": "caf\xe9"}\n{"text": \n{"text": "last"}\n'
    entries = list(read_jsonl(io.BytesIO(data)))
    assert [n for n, _ in entries] == [1, 3, 4, 5]
    assert entries[0][1] == {"text": "first"}
    assert isinstance(entries[1][1], Rejection) and entries[1][1].code == "invalid_utf8"
    assert "byte 14" in entries[1][1].reason
    assert isinstance(entries[2][1], Rejection) and entries[2][1].code == "invalid_json"
    assert entries[3][1] == {"text": "last"}


def test_bytes_read_are_reported_for_progress() -> None:
    data = b'{"text": "a"}\n{"text": "b"}\n'
    seen: list[int] = []
    list(read_jsonl(io.BytesIO(data), on_bytes=seen.append))
    assert sum(seen) == len(data)
