"""A command that fails says so in one line and what to do next; the traceback goes to the log
file under DRIFTLOOP_HOME (whose path it prints), and on stderr only with `--verbose`. Real
processes, and a real failure: a store URL naming a PostgreSQL database that does not exist."""

from pathlib import Path

from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL, run_cli


def _missing_store(home: Path) -> dict[str, str]:
    url = make_url(POSTGRES_URL).set(database="driftloop_no_such_database").render_as_string(hide_password=False)
    return {"DRIFTLOOP_HOME": str(home), "DRIFTLOOP_DATABASE_URL": url}


def test_an_unexpected_error_is_one_line_with_the_log_file_that_holds_its_traceback(tmp_path: Path) -> None:
    failed = run_cli("task", "list", env=_missing_store(tmp_path))
    assert failed.returncode == 1
    assert failed.stdout == b""
    lines = failed.stderr.decode().splitlines()
    log = tmp_path / "logs" / "driftloop.log"
    assert "Traceback" not in failed.stderr.decode() and "[SQL" not in failed.stderr.decode()
    assert len(lines) == 2, lines
    assert lines[0].startswith("error: OperationalError: ") and 'database "driftloop_no_such_database" does not exist' in lines[0]
    assert lines[1].startswith(f"the traceback is in {log}; `") and lines[1].endswith("driftloop --verbose …` prints it here")
    logged = log.read_text()
    assert "Traceback (most recent call last)" in logged and "driftloop task list" in logged
    assert 'database "driftloop_no_such_database" does not exist' in logged


def test_verbose_prints_the_traceback(tmp_path: Path) -> None:
    failed = run_cli("--verbose", "task", "list", env=_missing_store(tmp_path))
    assert failed.returncode == 1
    stderr = failed.stderr.decode()
    assert "Traceback (most recent call last)" in stderr and "sqlalchemy.exc.OperationalError" in stderr
    assert "Traceback (most recent call last)" in (tmp_path / "logs" / "driftloop.log").read_text()


def test_a_usage_error_stays_one_line_and_writes_no_log(tmp_path: Path) -> None:
    env = {"DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_DATABASE_URL": ""}
    missing = run_cli("models", "list", "no-such-task", env=env)
    assert missing.returncode == 2
    [line] = missing.stderr.decode().splitlines()
    assert line.startswith("error: no task named 'no-such-task' (see `") and line.endswith("driftloop task list`)")
    assert not (tmp_path / "logs").exists()
