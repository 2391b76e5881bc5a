"""The store a benchmark runs on: a fresh PostgreSQL database of this machine's server and a home
folder of its own, both dropped after (``from stores import fresh_store``: the benchmarks run as
scripts from this folder)."""

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import Engine

from driftloop.platform.store import schema
from driftloop.platform.store.engine import make_engine

SERVER = "postgresql://postgres@127.0.0.1:5432"


@contextmanager
def fresh_store() -> Iterator[tuple[Engine, Path]]:
    name = f"driftloop_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{SERVER}/test", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    home = Path(f"/tmp/{name}")
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        schema.upgrade(engine)
        yield engine, home
    finally:
        engine.dispose()
        with psycopg.connect(f"{SERVER}/test", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(home, ignore_errors=True)
