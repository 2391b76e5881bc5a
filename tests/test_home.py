"""DRIFTLOOP_HOME and what driftloop writes in it are readable by their owner only."""

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from driftloop.platform import home
from driftloop.platform.ingestion.service import ingest
from driftloop.platform.store.engine import make_engine
from tests.conftest import run_cli


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most shells have: what a library caller (an API host, a worker) runs under."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_cli_creates_a_private_home_and_writes_private_files(tmp_path: Path) -> None:
    home_dir = tmp_path / "home"
    env = {"DRIFTLOOP_HOME": str(home_dir), "DRIFTLOOP_DATABASE_URL": ""}
    created = run_cli("task", "create", "news", "--labels", "a,b", env=env)
    assert created.returncode == 0, created.stderr.decode()
    engine = make_engine(f"sqlite:///{home_dir / 'driftloop.db'}")
    list(ingest(engine, "news", enumerate([{"text": "rates rise"}, {"text": "cup final"}]), max_text_chars=100, batch_size=10))
    engine.dispose()
    # files of another command, created without the home's helpers: the vectors, their lock, the FAISS index
    indexed = run_cli("index", "rebuild", "news", env=env)
    assert indexed.returncode == 0, indexed.stderr.decode()

    assert mode(home_dir) == 0o700
    assert mode(home_dir / "driftloop.db") == 0o600
    written = [p for p in home_dir.rglob("*") if p.name != "driftloop.db"]
    assert any(p.suffix == ".faiss" for p in written) and any(p.suffix == ".f32" for p in written)
    assert {p.relative_to(home_dir).as_posix(): oct(mode(p)) for p in written if mode(p) & 0o077} == {}
    assert b"open to group/others" not in created.stderr + indexed.stderr


def test_an_existing_open_home_is_reported_not_changed(tmp_path: Path) -> None:
    home_dir = tmp_path / "shared"
    home_dir.mkdir()
    home_dir.chmod(0o750)
    listed = run_cli("task", "list", env={"DRIFTLOOP_HOME": str(home_dir), "DRIFTLOOP_DATABASE_URL": ""})
    assert listed.returncode == 0, listed.stderr.decode()
    assert f"{home_dir} is open to group/others (mode 0750)" in listed.stderr.decode()
    assert mode(home_dir) == 0o750
    assert mode(home_dir / "driftloop.db") == 0o600


def test_make_engine_creates_the_sqlite_store_private(tmp_path: Path, usual_umask: None) -> None:
    database = tmp_path / "new" / "store.db"
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as connection:  # the WAL and its index exist while a connection is open
            connection.execute(text("SELECT x FROM t")).all()
            files = {p.name: mode(p) for p in database.parent.iterdir()}
    finally:
        engine.dispose()
    assert mode(database.parent) == 0o700
    assert {"store.db", "store.db-wal", "store.db-shm"} <= set(files)
    assert {name: oct(m) for name, m in files.items() if m != 0o600} == {}


def test_an_existing_open_store_file_is_reported_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = tmp_path / "old.db"
    database.touch()
    database.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger=home.__name__):
        for _ in range(2):
            make_engine(f"sqlite:///{database}").dispose()
    assert [r.getMessage() for r in caplog.records if str(database) in r.getMessage()] == [
        f"driftloop's file {database} is open to group/others (mode 0644); its data and secrets may be readable by "
        f"other users: `chmod 600 {database}` unless it is shared on purpose"
    ]
    assert mode(database) == 0o644
