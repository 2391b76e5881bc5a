"""`driftloop ingest` as a user runs it: a real process, files and stdin, exit codes."""

import json
from pathlib import Path

from sqlalchemy import Engine

from tests.conftest import run_cli, store_env
from tests.ingestion.stored import stored_texts


def test_ten_thousand_lines_with_three_bad_ones(engine: Engine, task_name: str, tmp_path: Path) -> None:
    lines = [json.dumps({"text": f"health tweet {i}", "id": str(i)}) for i in range(10_000)]
    lines[1233] = '{"text": "unterminated'
    lines[4999] = json.dumps({"text": "", "id": "empty"})
    lines[9999] = json.dumps({"text": "x", "ts": "not a time"})
    source = tmp_path / "stream.jsonl"
    source.write_text("\n".join(lines) + "\n")

    result = run_cli("ingest", task_name, str(source), env=store_env(engine, tmp_path))

    assert result.returncode == 3, result.stderr.decode()
    assert result.stdout.decode().strip() == "ingested 9997, duplicates 0, rejected 3"
    errors = result.stderr.decode().strip().splitlines()
    assert errors == [
        "line 1234: invalid JSON: Unterminated string starting at (column 10)",
        'line 5000: "text" is empty',
        "line 10000: \"ts\" is not an ISO-8601 timestamp: 'not a time'",
    ]
    assert len(stored_texts(engine, task_name)) == 9997


def test_stdin_all_good_exits_zero_and_rerun_counts_duplicates(engine: Engine, task_name: str, tmp_path: Path) -> None:
    data = b'{"text": "a"}\n{"text": "b", "id": "b"}\n'
    env = store_env(engine, tmp_path)
    first = run_cli("ingest", task_name, "-", env=env, stdin=data)
    assert (first.returncode, first.stdout.decode().strip()) == (0, "ingested 2, duplicates 0, rejected 0")
    second = run_cli("ingest", task_name, "-", env=env, stdin=data)
    assert (second.returncode, second.stdout.decode().strip()) == (0, "ingested 0, duplicates 2, rejected 0")


def test_invalid_utf8_line_is_rejected_alone(engine: Engine, task_name: str, tmp_path: Path) -> None:
    data = b'{"text": "fine"}\n{"text": "bad \xff byte"}\n{"text": "also fine"}\n'
    result = run_cli("ingest", task_name, "-", env=store_env(engine, tmp_path), stdin=data)
    assert result.returncode == 3
    assert result.stderr.decode().strip() == "line 2: invalid UTF-8 at byte 15"
    assert [t.text for t in stored_texts(engine, task_name)] == ["fine", "also fine"]


def test_unknown_task_and_unreadable_file_are_usage_errors(engine: Engine, task_name: str, tmp_path: Path) -> None:
    env = store_env(engine, tmp_path)
    unknown = run_cli("ingest", "no-such-task", "-", env=env, stdin=b'{"text": "a"}\n')
    assert unknown.returncode == 2
    assert "no task named 'no-such-task'" in unknown.stderr.decode()

    missing = run_cli("ingest", task_name, str(tmp_path / "absent.jsonl"), env=env)
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr.decode() and "absent.jsonl" in missing.stderr.decode()

    no_args = run_cli("ingest", env=env)
    assert no_args.returncode == 2
